import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// NIO's HTTP/1 request parts → HTTP types; responses (HTTP types) → bytes (`HTTP1ResponseWriter`),
/// with the connection-level rules of RFC 9112 that the parser does not
/// enforce, and the connection's timers.
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
final class GatewayHTTPCodec: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = ByteBuffer

    let settings: ConnectionSettings
    let connections: ConnectionCount
    /// Refusals before a request exists (malformed heads, slow header sections) are logged here too.
    let accessLog: AccessLog?
    var context: ChannelHandlerContext?
    /// Requests passed on whose final response has not been written yet.
    var pending = 0
    /// For each pending request, in order: whether it came as HTTP/1.0 (its response must not be
    /// chunked nor preceded by a 1xx, RFC 9112 §6.1, RFC 9110 §15.2) and whether it was HEAD.
    var pendingRequests = CircularBuffer<HTTP1ResponseWriter.Request>(initialCapacity: 2)
    /// The response being written: its framing.
    var responseWriter = HTTP1ResponseWriter()
    /// Response bytes collected until the next flush (or a part whose writer waits for it).
    var outbound: ByteBuffer?
    /// Between a passed-on head and its `.end`.
    var readingBody = false
    /// Inbound is over: a request was refused (or a timeout hit); everything after it is dropped.
    var inboundClosed = false
    /// The connection closes once the current final response is written.
    var closeAfterResponse = false
    /// Outbound is over: the connection is closing; later writes are dropped.
    var outboundClosed = false
    /// A refusal waiting for earlier responses (pipelined requests) to finish.
    var deferredRefusal: WrittenRefusal?
    /// A refusal's error, request ID and envelope body.
    typealias WrittenRefusal = (error: GatewayError, requestID: String, body: ByteBuffer)

    // Timers (RFC 9112 §9.8 allows closing idle connections; slowloris protection). One scheduled task
    // per connection, rescheduled when it fires early: a request only stores deadlines.
    var timer: Scheduled<Void>?
    var timerAt = NIODeadline.distantFuture
    /// When the connection last had no request in progress (nil while one is).
    var idleSince: NIODeadline?
    /// When the current request's header section started: the connection's start for the first request,
    /// the first byte for later ones.
    var headSince: NIODeadline?
    var headBytesSeen = false
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
    /// While a request body is being read: the last time a part of it arrived (or the head, the
    /// `100 Continue` the client waited for, or the gateway asking for more after holding reads off).
    var bodySince: NIODeadline?
    /// A socket read was asked for and has not completed. Only then is the gateway waiting for the
    /// client: while back-pressure holds reads off (the instance takes the body slowly), the client's
    /// bytes wait in the socket and no body time counts.
    var readOutstanding = true
    /// The current request body's start, its bytes so far, and the time reads were held off meanwhile
    /// (for `min_body_rate`).
    var bodyStart: NIODeadline?
    var bodyBytes = 0
    var bodyHeld: TimeAmount = .zero
    var heldSince: NIODeadline?

    init(settings: ConnectionSettings, connections: ConnectionCount, accessLog: AccessLog? = nil) {
        self.settings = settings
        self.connections = connections
        self.accessLog = accessLog
    }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        connections.opened()
        if context.channel.isActive { connectionStarted(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        connectionStarted(context: context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        self.context = nil
        connections.closed()
    }

    /// Graceful shutdown: an idle connection closes now, a busy one after its response.
    /// The client closed its side (FIN): see `peerClosedInput`.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            peerClosedInput(context: context)
            context.fireUserInboundEventTriggered(event)
            return
        }
        guard event is ChannelShouldQuiesceEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        if pending == 0 {
            close(context: context)
        } else {
            closeAfterResponse = true
        }
    }

    /// The server allows remote half-closure (so a client that shuts down its sending side after a
    /// request still reads the response), which means NIO reports a client's FIN instead of closing.
    /// Nothing more can arrive: a connection with no request in progress — idle keep-alive, connected
    /// and closed without a byte, a partial head, a lingering close, a body drained after its
    /// response — closes now, releasing its descriptor. With a request in progress the connection
    /// closes once its response is written; the request loop decides whether that request goes on
    /// (`GatewayRequestHandler.clientClosed`). An incomplete body has already failed (the parser
    /// reports the early end as an error).
    func peerClosedInput(context: ChannelHandlerContext) {
        if pending == 0 || outboundClosed {
            close(context: context)
            return
        }
        inboundClosed = true
        closeAfterResponse = true
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    func connectionStarted(context: ChannelHandlerContext) {
        guard idleSince == nil, pending == 0 else { return }
        let now = NIODeadline.now()
        idleSince = now
        headSince = now
        schedule(context: context, at: now + min(settings.headerTimeout, settings.idleTimeout))
    }

    // MARK: Inbound

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
        // Bytes of a body still being drained after its response do not start a header section.
        guard pending == 0, !readingBody, !inboundClosed else { return }
        if headSince == nil { headSince = .now() }
        headBytesSeen = true
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        readOutstanding = false
        // Checked once the parser has taken what was read, so the body bytes are counted too.
        checkChunkFraming(context: context)
        if bodyStart != nil { heldSince = .now() }
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        // Reading again after holding off: the client's pause, if any, starts now.
        if !readOutstanding, bodySince != nil { bodySince = .now() }
        if let heldSince {
            bodyHeld = bodyHeld + (NIODeadline.now() - heldSince)
            self.heldSince = nil
        }
        readOutstanding = true
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !inboundClosed else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            switch convert(head) {
            case .success(let request):
                pending += 1
                pendingRequests.append(.init(http10: head.version.major == 1 && head.version.minor == 0, head: head.method == .HEAD))
                readingBody = true
                idleSince = nil
                headSince = nil
                headBytesSeen = false
                requestLineEnded = false
                requestLineBytes = 0
                if !head.isKeepAlive { closeAfterResponse = true }
                // A request asking for a protocol upgrade (h2c, WebSocket, TLS) is answered as a plain
                // request (RFC 9110 §7.8 lets a server ignore `Upgrade`), but NIO's parser stops reading
                // the connection after it — waiting for the upgraded protocol — so the next request would
                // hang until the header timeout. The connection closes after this response instead.
                if head.headers.contains(name: "upgrade") { closeAfterResponse = true }
                chunkedBody = request.headerFields.contains(.transferEncoding)
                // The read that carried this head may carry chunks too: it counts whole (the head's own
                // bytes are covered by the allowance).
                chunkedRawBytes = lastReadBytes
                chunkedPayloadBytes = 0
                if request.headerFields.declaresBody {
                    // A body is coming: its pauses are timed (requests without one schedule nothing).
                    let now = NIODeadline.now()
                    bodySince = now
                    if settings.minBodyRate > 0 {
                        bodyStart = now
                        bodyBytes = 0
                        bodyHeld = .zero
                    }
                    let check = now + nextBodyCheck
                    if timer == nil || timerAt > check {
                        timer?.cancel()
                        schedule(context: context, at: check)
                    }
                }
                context.fireChannelRead(wrapInboundOut(.head(request)))
            case .failure(let refusal):
                let supplied = head.headers.first(name: "X-Request-ID")
                refuse(refusal.error, requestID: supplied.flatMap { GatewayRequestID.isWellFormed($0) ? $0 : nil }, head: head, context: context)
            }
        case .body(let body):
            if bodySince != nil { bodySince = .now() }
            if bodyStart != nil { bodyBytes += body.readableBytes }
            if chunkedBody { chunkedPayloadBytes += body.readableBytes }
            context.fireChannelRead(wrapInboundOut(.body(body)))
        case .end(let trailers):
            readingBody = false
            chunkedBody = false
            bodySince = nil
            bodyStart = nil
            heldSince = nil
            context.fireChannelRead(wrapInboundOut(.end(trailers.map { HTTPFields(nioHeaders: $0) })))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parseError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        // After a refusal the parser may still trip over what follows; nobody is listening any more.
        guard !inboundClosed else { return }
        if readingBody {
            breakBody(parseError, context: context)
            return
        }
        let error: GatewayError = parseError != .headerOverflow ? .malformedRequest
            : (requestLineBytes > settings.maxURILength ? .uriTooLong : .headersTooLarge)
        refuse(error, requestID: nil, context: context)
    }

    /// The body of a request already passed on is broken (bad chunk framing, too much framing). Whoever
    /// reads it sees the error (the forwarder answers 400); the connection closes after the response —
    /// or now, if it was written.
    func breakBody(_ error: any Error, context: ChannelHandlerContext) {
        readingBody = false
        chunkedBody = false
        inboundClosed = true
        closeAfterResponse = true
        if pending == 0 { close(context: context) } else { context.fireErrorCaught(error) }
    }

    /// Chunk framing — size lines, extensions (which the parser reads and drops), the last chunk and
    /// trailers — may not exceed this (plus the head's bound, since the read with the head counts
    /// whole) plus `chunkFramingPerByte` times the body's bytes: an extension
    /// of megabytes, or chunks of one byte each with long extensions, cost the gateway parsing for
    /// nothing. Beyond it the body is broken: 400, connection closed.
    static let chunkFramingAllowance = 64 * 1024
    static let chunkFramingPerByte = 8

    func checkChunkFraming(context: ChannelHandlerContext) {
        guard chunkedBody, readingBody, !inboundClosed else { return }
        let framing = chunkedRawBytes - chunkedPayloadBytes
        if framing > Self.chunkFramingAllowance + settings.parserHeaderBytes + Self.chunkFramingPerByte * chunkedPayloadBytes {
            breakBody(HTTPParserError.invalidChunkSize, context: context)
        }
    }
}
