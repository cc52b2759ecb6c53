import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOPosix

/// Request bytes → HTTP types (llhttp through `HTTP1Parser`: each head parsed once, straight into the
/// request the gateway forwards); responses (HTTP types) → bytes (`HTTP1ResponseWriter`), with the
/// connection-level rules of RFC 9112 that the parser does not enforce, and the connection's timers.
///
/// Refused with the error envelope, then the connection is closed (nothing reaches a service):
/// - anything the parser rejects — invalid header names or values, `Content-Length` with
///   `Transfer-Encoding`, duplicate or invalid `Content-Length`, bad chunk framing, bare LF — 400
///   `malformed_request`; a header section over the parser's bound — 431;
/// - `Transfer-Encoding` whose final coding is not `chunked` (`xchunked`, `identity`), or on HTTP/1.0 —
///   400; a coding other than `chunked` (`gzip, chunked`) — 501;
/// - HTTP/1.1 without `Host`, several `Host` fields, or a `Host` that is not host[:port] — 400;
/// - `CONNECT` — 501 (the gateway is not a proxy); an absolute-form target (`GET http://h/p`) naming a
///   host outside `server_names` — 421; for an own name it is rewritten to origin form.
///
/// A bad chunk in a body already being forwarded makes the body fail; the forwarder answers 400 and
/// this codec closes the connection after that response. Any response carrying `Connection: close`
/// closes the connection once written.
final class GatewayHTTPCodec: ChannelDuplexHandler, RemovableChannelHandler, NIOScheduledCallbackHandler, HTTP1ParserDelegate {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = ByteBuffer

    let settings: ConnectionSettings
    let connections: ConnectionCount
    /// Refusals before a request exists (malformed heads, slow header sections) are logged here too.
    let accessLog: AccessLog?
    var context: ChannelHandlerContext?
    /// The connection's rules: requests in progress, when it closes, what the timer decides.
    var state: HTTP1ServerConnectionStateMachine<WrittenRefusal>
    /// A refusal's error, request ID and envelope body. A reference: every connection's state machine
    /// has room for one waiting refusal, and its actions carry one, but few connections ever make one.
    final class WrittenRefusal {
        let error: GatewayError
        let requestID: String
        let body: ByteBuffer

        init(_ error: GatewayError, requestID: String) {
            self.error = error
            self.requestID = requestID
            self.body = ErrorEnvelope.body(error, requestID: requestID)
        }
    }
    /// The response being written: its framing.
    var responseWriter = HTTP1ResponseWriter()
    /// Response bytes collected until the next flush (or a part whose writer waits for it).
    var outbound: ByteBuffer?

    /// The state machine's timer (RFC 9112 §9.8 allows closing idle connections; slowloris protection):
    /// one scheduled callback per connection (no promise or closure), rescheduled when it fires early — a
    /// request only stores deadlines.
    var timer: NIOScheduledCallback?
    /// The lingering close's last step.
    var lingerTask: Scheduled<Void>?
    /// A line feed arrived since the last request head: the next head's request line is complete.
    var requestLineEnded = false
    /// Bytes of the next head's request line seen so far.
    var requestLineBytes = 0
    /// While a chunked request body is read: bytes read from the socket, and body bytes they carried.
    var chunkedBody = false
    var chunkedRawBytes = 0
    var chunkedPayloadBytes = 0
    /// The size of the last read (it holds the head of a chunked request and perhaps its first chunks).
    var lastReadBytes = 0

    /// llhttp, bounded by `limits.max_header_bytes` / `max_header_count`.
    let parser: HTTP1Parser
    /// The head being read, field by field.
    var head = RequestHeadBuilder()
    /// A request was passed on and its end not yet: fields now are trailers.
    var inMessage = false
    var trailers: HTTPFields?
    /// The connection switched protocols and the codec is leaving: what the new protocol writes passes.
    var handingOver = false

    /// The connection's listener and TLS version (the request handler reads the HTTP version set here).
    let facts: ConnectionFacts?
    /// The request loop after this codec, when linked: request parts go to it and its response parts
    /// come back by direct calls. Unlinked (a codec tested alone), parts travel the pipeline.
    var requests: GatewayRequestHandler?

    /// The connection closes after what is written: no further request is to be answered.
    var isClosing: Bool { state.outboundClosed }

    /// Links the codec and the request loop that follows it in the pipeline.
    func link(_ handler: GatewayRequestHandler) {
        requests = handler
        handler.codec = self
    }

    init(settings: ConnectionSettings, connections: ConnectionCount, accessLog: AccessLog? = nil, facts: ConnectionFacts? = nil) {
        self.settings = settings
        self.facts = facts
        self.connections = connections
        self.accessLog = accessLog
        self.state = HTTP1ServerConnectionStateMachine(timeouts: .init(header: settings.headerTimeout, idle: settings.idleTimeout,
                                                                       body: settings.bodyTimeout, minBodyRate: settings.minBodyRate))
        self.parser = HTTP1Parser(kind: .request, limits: .init(fieldBytes: settings.parserHeaderBytes, headBytes: settings.parserHeaderBytes,
                                                                fieldCount: settings.parserHeaderCount))
        parser.delegate = self
    }

    /// The event loop's clock (an `EmbeddedEventLoop`'s in tests). A NIO event loop's is the monotonic
    /// clock itself, read without going through the context and the loop (both retained for each read;
    /// the connection's rules read the time several times per request).
    var now: NIODeadline { onEventLoopThread ? .now() : context?.eventLoop.now ?? .now() }
    /// Added on one of NIO's own event loops (not an `EmbeddedEventLoop`).
    private var onEventLoopThread = false

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        onEventLoopThread = MultiThreadedEventLoopGroup.currentEventLoop != nil
        connections.opened()
        if context.channel.isActive { connectionStarted(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        connectionStarted(context: context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimers()
        self.context = nil
        requests = nil
        connections.closed()
    }

    /// Graceful shutdown: an idle connection closes now, a busy one after its response.
    /// The client closed its side (FIN): see `HTTP1ServerConnectionStateMachine.peerClosedInput` — the
    /// server allows remote half-closure (so a client that shuts down its sending side after a request
    /// still reads the response), which means NIO reports a client's FIN instead of closing. With a
    /// request in progress the request loop decides whether it goes on (`GatewayRequestHandler.clientClosed`).
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // A body delimited by nothing else ends here; a message cut short is an error.
            inputEnded(context: context)
            perform(state.peerClosedInput(), context: context)
            context.fireUserInboundEventTriggered(event)
            return
        }
        guard event is ChannelShouldQuiesceEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        perform(state.quiesce(), context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        inputEnded(context: context)
        cancelTimers()
        context.fireChannelInactive()
    }

    /// The client's bytes ended (FIN, or the connection is gone).
    private func inputEnded(context: ChannelHandlerContext) {
        do {
            try parser.finish()
        } catch {
            parseFailed(error, context: context)
        }
    }

    func connectionStarted(context: ChannelHandlerContext) {
        perform(state.started(now: now), context: context)
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        bytesArrived(bytes)
        do {
            try parser.feed(bytes)
        } catch {
            parseFailed(error, context: context)
        }
    }

    /// Bytes came in: the header timeout of a keep-alive request starts with its first byte (the parser
    /// reports a head only once it is complete).
    func bytesArrived(_ bytes: ByteBuffer) {
        lastReadBytes = bytes.readableBytes
        if chunkedBody { chunkedRawBytes += bytes.readableBytes }
        // How long the request line is: a header section too large for the parser is a target too long
        // (414) when its request line passed `max_uri_length`, too many or too large fields (431) else.
        if !requestLineEnded {
            if let end = bytes.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
                requestLineBytes += end - bytes.readerIndex
                requestLineEnded = true
            } else {
                requestLineBytes += bytes.readableBytes
            }
        }
        state.bytesArrived(now: now)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        state.readCompleted(now: now)
        // Checked once the parser has taken what was read, so the body bytes are counted too.
        checkChunkFraming(context: context)
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        state.readRequested(now: now)
        context.read()
    }

    // MARK: What the parser read

    func parsedField(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        if inMessage {
            // Trailers (after a chunked body).
            guard let name = HTTPField.Name(String(decoding: name, as: UTF8.self)) else { return }
            if trailers == nil { trailers = HTTPFields() }
            trailers!.append(HTTPField(name: name, value: String(decoding: value, as: UTF8.self)))
            return
        }
        head.add(name: name, value: value)
    }

    func parsedHead(_ parsed: HTTP1Parser.Head) -> HTTP1Parser.Continuation {
        guard let context, !state.inboundClosed else { return .stop }
        var fields = head
        head = RequestHeadBuilder()
        switch convert(parsed, fields: &fields) {
        case .success(let request):
            requestLineEnded = false
            requestLineBytes = 0
            chunkedBody = request.headerFields.contains(.transferEncoding)
            // The read that carried this head may carry chunks too: it counts whole (the head's own
            // bytes are covered by the allowance).
            chunkedRawBytes = lastReadBytes
            chunkedPayloadBytes = 0
            inMessage = true
            let http10 = parsed.minorVersion == 0
            let answering = HTTP1ResponseWriter.Request(http10: http10, head: request.method == .head)
            perform(state.requestHead(answering, keepAlive: parsed.keepAlive, upgrade: parsed.upgrade,
                                      declaresBody: request.headerFields.declaresBody, now: now), context: context)
            pass(.head(request), context: context)
            return .body
        case .failure(let refusal):
            refuse(refusal.error, requestID: fields.requestID.flatMap { GatewayRequestID.isWellFormed($0) ? $0 : nil }, head: parsed, context: context)
            return .stop
        }
    }

    func parsedBody(_ bytes: ByteBuffer) {
        guard let context, !state.inboundClosed else { return }
        state.bodyPart(bytes: bytes.readableBytes, now: now)
        if chunkedBody { chunkedPayloadBytes += bytes.readableBytes }
        pass(.body(bytes), context: context)
    }

    func parsedEnd() {
        inMessage = false
        let trailers = self.trailers
        self.trailers = nil
        guard let context, !state.inboundClosed else { return }
        state.requestEnd()
        chunkedBody = false
        pass(.end(trailers), context: context)
    }

    private func pass(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        if let requests {
            requests.process(part)
        } else {
            context.fireChannelRead(wrapInboundOut(part))
        }
    }

    /// What the parser refused: a broken body fails (the forwarder answers 400), anything else is
    /// refused here — 431 or 414 for a head over the parser's bounds, 400 otherwise.
    func parseFailed(_ error: HTTPParserError, context: ChannelHandlerContext) {
        // After a refusal the parser may still trip over what follows; nobody is listening any more.
        guard !state.inboundClosed else { return }
        if state.readingBody {
            breakBody(error, context: context)
            return
        }
        let refusal: GatewayError = error != .headerOverflow ? .malformedRequest
            : (requestLineBytes > settings.maxURILength ? .uriTooLong : .headersTooLarge)
        refuse(refusal, requestID: nil, context: context)
    }

    /// The body of a request already passed on is broken (bad chunk framing, too much framing). Whoever
    /// reads it sees the error (the forwarder answers 400); the connection closes after the response —
    /// or now, if it was written.
    func breakBody(_ error: any Error, context: ChannelHandlerContext) {
        chunkedBody = false
        if case .failBody = perform(state.bodyBroken(), context: context) { context.fireErrorCaught(error) }
    }

    /// Chunk framing — size lines, extensions (which the parser reads and drops), the last chunk and
    /// trailers — may not exceed this (plus the head's bound, since the read with the head counts
    /// whole) plus `chunkFramingPerByte` times the body's bytes: an extension
    /// of megabytes, or chunks of one byte each with long extensions, cost the gateway parsing for
    /// nothing. Beyond it the body is broken: 400, connection closed.
    static let chunkFramingAllowance = 64 * 1024
    static let chunkFramingPerByte = 8

    func checkChunkFraming(context: ChannelHandlerContext) {
        guard chunkedBody, state.readingBody, !state.inboundClosed else { return }
        let framing = chunkedRawBytes - chunkedPayloadBytes
        if framing > Self.chunkFramingAllowance + settings.parserHeaderBytes + Self.chunkFramingPerByte * chunkedPayloadBytes {
            breakBody(HTTPParserError.invalidChunkSize, context: context)
        }
    }
}
