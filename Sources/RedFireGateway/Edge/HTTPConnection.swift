import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// What one client connection is held to, read from the running configuration when it opens.
struct ConnectionSettings: Sendable {
    var headerTimeout: TimeAmount
    var idleTimeout: TimeAmount
    var bodyTimeout: TimeAmount
    /// Lower-case host names accepted in an absolute-form request target.
    var serverNames: Set<String>
    /// Bytes the HTTP/1 parser accepts for the request line and header section before it gives up
    /// (answered 431); the configured limits are checked again, exactly, by the responder.
    var parserHeaderBytes: Int
    var parserHeaderCount: Int
    /// `limits.max_uri_length`: a request line longer than this that overflows the parser is a 414.
    var maxURILength: Int
    /// `limits.min_body_rate`: bytes per second a request body must average once it has been sent for
    /// `bodyRateGrace` (time the gateway holds reads off does not count); 0 turns it off.
    var minBodyRate: Int
    static let bodyRateGrace: TimeAmount = .seconds(10)
    /// `limits.connection_buffer`: the client's write buffer bound and the request body held for a slow instance.
    var bufferBytes: Int

    init(config: GatewayConfig) {
        bufferBytes = config.limits.connectionBuffer
        maxURILength = config.limits.maxURILength
        minBodyRate = config.limits.minBodyRate
        headerTimeout = .nanoseconds(config.limits.headerTimeout.nanosecondsClamped)
        idleTimeout = .nanoseconds(config.limits.idleTimeout.nanosecondsClamped)
        bodyTimeout = .nanoseconds(config.limits.bodyTimeout.nanosecondsClamped)
        var names = Set(config.serverNames)
        if config.serverNames.isEmpty {
            names = ["localhost", "127.0.0.1", "[::1]"]
            let host = config.listen.host.lowercased()
            if host != "0.0.0.0", host != "::", host != "[::]" { names.insert(host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host) }
        }
        serverNames = names
        parserHeaderBytes = max(80 * 1024, config.limits.maxHeaderBytes + config.limits.maxURILength + 1024)
        parserHeaderCount = max(1000, config.limits.maxHeaderCount * 2)
    }
}

/// The gateway's HTTP/1.1 server connections, on Hummingbird's server (listener, graceful shutdown):
///
/// ```
/// socket ⇄ FirstByteObserver ⇄ HTTP/1 decoder/encoder ⇄ GatewayHTTPCodec ⇄ GatewayRequestHandler
/// ```
///
/// `GatewayHTTPCodec` converts NIO's HTTP/1 parts to HTTP types and is where connection-level hygiene
/// lives: malformed requests are answered with the error envelope and the connection closed, slow
/// header sections with 408, idle keep-alive connections closed; it also counts open connections and
/// closes them on graceful shutdown (idle at once, busy after their response).
/// `GatewayRequestHandler` answers the requests, one at a time, on the connection's event loop.
struct GatewayHTTPServer: ServerChildChannel {
    struct Connection: ServerChildChannelValue {
        let channel: any Channel
    }
    typealias Value = Connection

    let responder: GatewayResponder
    /// Read for every new connection, so a reload applies to connections opened after it.
    let settings: @Sendable () -> ConnectionSettings
    let connections: ConnectionCount
    let logger: Logger

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let settings = self.settings()
            var limits = NIOHTTPDecoderLimitConfiguration()
            limits.maxHeaderFieldSize = settings.parserHeaderBytes
            limits.maxHeaderListSize = settings.parserHeaderBytes
            limits.maxHeaderFieldCount = settings.parserHeaderCount
            let codec = GatewayHTTPCodec(settings: settings, connections: connections, accessLog: responder.accessLog)
            let sync = channel.pipeline.syncOperations
            // A slow client holds at most half the connection buffer of a response in its write buffer
            // (the other half waits on the instance's side): past the high mark the request loop waits
            // for the socket to drain before taking more from the instance.
            try channel.syncOptions?.setOption(ChannelOptions.writeBufferWaterMark,
                                               value: .init(low: settings.bufferBytes / 4, high: settings.bufferBytes / 2))
            try sync.addHandler(FirstByteObserver(codec: codec))
            try sync.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: false, withOutboundHeaderValidation: false,
                                                 withEncoderConfiguration: .init(), withDecoderLimitConfiguration: limits)
            try sync.addHandler(codec)
            try sync.addHandler(GatewayRequestHandler(responder: responder, logger: self.logger, bufferLimit: settings.bufferBytes))
            return Connection(channel: channel)
        }
    }

    /// The handlers answer the requests; this task keeps the connection known to the server (graceful
    /// shutdown waits for it) until it closes.
    func handle(value: Value, logger: Logger) async {
        try? await value.channel.closeFuture.get()
    }
}

/// Sits before the HTTP/1 parser and tells the codec when bytes arrive: the header timeout of a
/// keep-alive request starts with its first byte, which the parser does not report.
final class FirstByteObserver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    let codec: GatewayHTTPCodec

    init(codec: GatewayHTTPCodec) {
        self.codec = codec
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        codec.bytesArrived(unwrapInboundIn(data))
        context.fireChannelRead(data)
    }
}

/// A task executor that runs jobs on one NIO event loop.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// A client paused its request body longer than `limits.body_timeout`.
struct RequestBodyTimeout: Error {}

/// NIO HTTP/1 parts ⇄ HTTP types, with the connection-level rules of RFC 9112 that the parser does not
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
    typealias OutboundOut = HTTPServerResponsePart

    private let settings: ConnectionSettings
    private let connections: ConnectionCount
    /// Refusals before a request exists (malformed heads, slow header sections) are logged here too.
    private let accessLog: AccessLog?
    private var context: ChannelHandlerContext?
    /// Requests passed on whose final response has not been written yet.
    private var pending = 0
    /// For each pending request, in order: whether it came as HTTP/1.0 (its response must not be
    /// chunked nor preceded by a 1xx, RFC 9112 §6.1, RFC 9110 §15.2).
    private var http10Pending = CircularBuffer<Bool>(initialCapacity: 2)
    /// Between a passed-on head and its `.end`.
    private var readingBody = false
    /// Inbound is over: a request was refused (or a timeout hit); everything after it is dropped.
    private var inboundClosed = false
    /// The connection closes once the current final response is written.
    private var closeAfterResponse = false
    /// Outbound is over: the connection is closing; later writes are dropped.
    private var outboundClosed = false
    /// A refusal waiting for earlier responses (pipelined requests) to finish.
    private var deferredRefusal: WrittenRefusal?
    /// A refusal's error, request ID and envelope body.
    private typealias WrittenRefusal = (error: GatewayErrorCode, requestID: String, body: ByteBuffer)

    // Timers (RFC 9112 §9.8 allows closing idle connections; slowloris protection). One scheduled task
    // per connection, rescheduled when it fires early: a request only stores deadlines.
    private var timer: Scheduled<Void>?
    private var timerAt = NIODeadline.distantFuture
    /// When the connection last had no request in progress (nil while one is).
    private var idleSince: NIODeadline?
    /// When the current request's header section started: the connection's start for the first request,
    /// the first byte for later ones.
    private var headSince: NIODeadline?
    private var headBytesSeen = false
    /// A line feed arrived since the last request head: the next head's request line is complete.
    private var requestLineEnded = false
    /// Bytes of the next head's request line seen so far.
    private var requestLineBytes = 0
    /// While a chunked request body is read: bytes read from the socket, and body bytes they carried.
    private var chunkedBody = false
    private var chunkedRawBytes = 0
    private var chunkedPayloadBytes = 0
    /// The size of the last read (it holds the head of a chunked request and perhaps its first chunks).
    private var lastReadBytes = 0
    /// While a request body is being read: the last time a part of it arrived (or the head, the
    /// `100 Continue` the client waited for, or the gateway asking for more after holding reads off).
    private var bodySince: NIODeadline?
    /// A socket read was asked for and has not completed. Only then is the gateway waiting for the
    /// client: while back-pressure holds reads off (the instance takes the body slowly), the client's
    /// bytes wait in the socket and no body time counts.
    private var readOutstanding = true
    /// The current request body's start, its bytes so far, and the time reads were held off meanwhile
    /// (for `min_body_rate`).
    private var bodyStart: NIODeadline?
    private var bodyBytes = 0
    private var bodyHeld: TimeAmount = .zero
    private var heldSince: NIODeadline?

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
    private func peerClosedInput(context: ChannelHandlerContext) {
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

    private func connectionStarted(context: ChannelHandlerContext) {
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
                http10Pending.append(head.version.major == 1 && head.version.minor == 0)
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
        let error: GatewayErrorCode = parseError != .headerOverflow ? .malformedRequest
            : (requestLineBytes > settings.maxURILength ? .uriTooLong : .headersTooLarge)
        refuse(error, requestID: nil, context: context)
    }

    /// The body of a request already passed on is broken (bad chunk framing, too much framing). Whoever
    /// reads it sees the error (the forwarder answers 400); the connection closes after the response —
    /// or now, if it was written.
    private func breakBody(_ error: any Error, context: ChannelHandlerContext) {
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

    private func checkChunkFraming(context: ChannelHandlerContext) {
        guard chunkedBody, readingBody, !inboundClosed else { return }
        let framing = chunkedRawBytes - chunkedPayloadBytes
        if framing > Self.chunkFramingAllowance + settings.parserHeaderBytes + Self.chunkFramingPerByte * chunkedPayloadBytes {
            breakBody(HTTPParserError.invalidChunkSize, context: context)
        }
    }

    /// `head`: the refused request's head when it was parsed (its method and target are logged).
    private func refuse(_ error: GatewayErrorCode, requestID: String?, head: HTTPRequestHead? = nil, context: ChannelHandlerContext) {
        inboundClosed = true
        let id = requestID ?? GatewayRequestID.generate()
        let refusal: WrittenRefusal = (error, id, ErrorEnvelope.body(error, requestID: id))
        if let accessLog {
            let since = headSince ?? .now()
            accessLog.record(AccessLogEntry(requestID: id, clientIP: context.channel.remoteAddress?.ipAddress,
                                            method: head.map { $0.method.rawValue } ?? "-",
                                            path: head.map { Self.loggedPath($0.uri) } ?? "-"),
                             status: error.status.code, instance: nil, attempts: 0, upstream: .zero,
                             total: .nanoseconds(max(0, (NIODeadline.now() - since).nanoseconds)), bytesIn: 0,
                             bytesOut: refusal.body.readableBytes, errorCode: error.code)
        }
        if pending == 0 { writeRefusal(refusal, context: context) } else { deferredRefusal = refusal }
    }

    /// A refused target as the access log shows it: without the query (which may carry secrets), at
    /// most 256 bytes.
    static func loggedPath(_ uri: String) -> String {
        let utf8 = uri.utf8
        let end = utf8.firstIndex(of: UInt8(ascii: "?")) ?? utf8.endIndex
        return String(Substring(utf8[..<end].prefix(256)))
    }

    private func writeRefusal(_ refusal: WrittenRefusal, context: ChannelHandlerContext) {
        guard !outboundClosed else { return }
        let (error, requestID, body) = refusal
        var headers = HTTPHeaders()
        headers.reserveCapacity(5)
        headers.add(name: "Content-Type", value: ErrorEnvelope.contentType)
        headers.add(name: "X-Request-ID", value: requestID)
        headers.add(name: "Cache-Control", value: "no-store")
        headers.add(name: "Connection", value: "close")
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        let status = HTTPResponseStatus(statusCode: error.status.code, reasonPhrase: error.status.reasonPhrase)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        outboundClosed = true
        closeWhenWritten(context: context, promise: nil, last: .end(nil))
    }

    private func closeWhenWritten(context: ChannelHandlerContext, promise: EventLoopPromise<Void>?, last: HTTPServerResponsePart) {
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(last), promise: written)
        written.futureResult.assumeIsolated().whenComplete { [self] result in
            promise?.completeWith(result)
            lingerThenClose(context: context)
        }
    }

    /// Lingering close: send FIN after the response, keep reading (and dropping) what the client is still
    /// sending for a moment, then close. Closing at once with unread bytes makes the kernel reset the
    /// connection, and a client still uploading would lose the 413 or 400 it was sent.
    private func lingerThenClose(context: ChannelHandlerContext) {
        timer?.cancel()
        context.close(mode: .output, promise: nil)
        timerAt = .now() + Self.linger
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: Self.linger) {
            context.close(promise: nil)
        }
    }

    static let linger: TimeAmount = .seconds(2)

    private func close(context: ChannelHandlerContext) {
        inboundClosed = true
        outboundClosed = true
        context.close(promise: nil)
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !outboundClosed else {
            // A response after the connection decided to close (e.g. the server's own answer to a parse
            // error it saw after ours): dropped.
            promise?.succeed(())
            return
        }
        switch unwrapOutboundIn(data) {
        case .head(let response):
            let final = response.status.kind != .informational
            let http10 = http10Pending.first ?? false
            if !final, http10 {
                // An HTTP/1.0 client gets no interim response (`100 Continue` included).
                promise?.succeed(())
                return
            }
            // The client starts sending its body now: its pause so far was the gateway's.
            if response.status == .continue, bodySince != nil { bodySince = .now() }
            var headers = HTTPHeaders()
            headers.reserveCapacity(response.headerFields.count + 1)
            var saysClose = false
            var hasLength = false
            for field in response.headerFields {
                if field.name == .connection, field.value.utf8.count == 5, field.value.lowercased() == "close" { saysClose = true }
                if field.name == .contentLength { hasLength = true }
                headers.add(name: field.name.rawName, value: field.value)
            }
            var version = HTTPVersion.http1_1
            if final {
                if http10, !hasLength, response.status.code != 204, response.status.code != 304 {
                    // HTTP/1.0 knows no chunked coding: a body of unknown length is delimited by closing
                    // the connection, and NIO's encoder frames by the head's version.
                    version = .http1_0
                    closeAfterResponse = true
                }
                if saysClose {
                    closeAfterResponse = true
                } else if closeAfterResponse {
                    headers.add(name: "Connection", value: "close")
                } else if http10 {
                    // The client asked to keep the connection (HTTP/1.0 closes unless told otherwise).
                    headers.add(name: "Connection", value: "keep-alive")
                }
            }
            let status = HTTPResponseStatus(statusCode: response.status.code, reasonPhrase: response.status.reasonPhrase)
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: status, headers: headers))), promise: promise)
        case .body(let body):
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: promise)
        case .end(let trailers):
            pending -= 1
            if !http10Pending.isEmpty { http10Pending.removeFirst() }
            let last = HTTPServerResponsePart.end(trailers.map { HTTPHeaders(fields: $0) })
            if pending == 0, let refusal = deferredRefusal {
                deferredRefusal = nil
                context.write(wrapOutboundOut(last), promise: promise)
                writeRefusal(refusal, context: context)
            } else if pending == 0, closeAfterResponse {
                outboundClosed = true
                inboundClosed = true
                closeWhenWritten(context: context, promise: promise, last: last)
            } else {
                context.write(wrapOutboundOut(last), promise: promise)
                if pending == 0 { becameIdle(context: context) }
            }
        }
    }

    // MARK: Timers

    private func becameIdle(context: ChannelHandlerContext) {
        let now = NIODeadline.now()
        idleSince = now
        headSince = nil
        headBytesSeen = false
        if timer == nil { schedule(context: context, at: now + min(settings.headerTimeout, settings.idleTimeout)) }
    }

    private func schedule(context: ChannelHandlerContext, at deadline: NIODeadline) {
        timerAt = deadline
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            timer = nil
            timerFired()
        }
    }

    /// How soon the body timer looks again: at the pause deadline, or sooner while the rate is checked.
    private var nextBodyCheck: TimeAmount {
        settings.minBodyRate > 0 ? min(settings.bodyTimeout, .nanoseconds(ConnectionSettings.bodyRateGrace.nanoseconds / 2)) : settings.bodyTimeout
    }

    /// A body that keeps moving too slowly to matter (slowloris on the body: a byte every few seconds
    /// never trips `body_timeout`): under `min_body_rate` on average, counted after the grace period and
    /// without the time the gateway held reads off.
    private func bodyTooSlow(now: NIODeadline) -> Bool {
        guard settings.minBodyRate > 0, let bodyStart else { return false }
        let active = (now - bodyStart) - bodyHeld
        guard active >= ConnectionSettings.bodyRateGrace else { return false }
        return Double(bodyBytes) / (Double(active.nanoseconds) / 1e9) < Double(settings.minBodyRate)
    }

    private func timerFired() {
        guard let context, !outboundClosed else { return }
        if pending > 0 {
            // A request in progress: only a body the client has paused is timed.
            guard readingBody, let bodySince else { return }
            let now = NIODeadline.now()
            guard readOutstanding else {
                // Reads are held off: not the client's pause. Asking for more restarts the count.
                schedule(context: context, at: now + settings.bodyTimeout)
                return
            }
            let deadline = bodySince + settings.bodyTimeout
            if now < deadline, !bodyTooSlow(now: now) {
                schedule(context: context, at: min(deadline, now + nextBodyCheck))
                return
            }
            // Whoever reads the body fails with the timeout (the forwarder answers 408, the instance is
            // not blamed); the connection closes after that response — the rest cannot be read.
            self.bodySince = nil
            bodyStart = nil
            readingBody = false
            inboundClosed = true
            closeAfterResponse = true
            context.fireErrorCaught(RequestBodyTimeout())
            return
        }
        guard let idleSince else { return }
        let now = NIODeadline.now()
        if let headSince {
            let deadline = headSince + settings.headerTimeout
            if now >= deadline {
                if headBytesSeen {
                    refuse(.requestTimeout, requestID: nil, context: context)
                } else {
                    close(context: context)
                }
                return
            }
            schedule(context: context, at: deadline)
        } else {
            let deadline = idleSince + settings.idleTimeout
            if now >= deadline {
                close(context: context)
                return
            }
            // Bytes may start a header section before the idle deadline: never sleep past its timeout.
            schedule(context: context, at: min(deadline, now + settings.headerTimeout))
        }
    }

    // MARK: Conversion

    private struct Refusal: Error {
        let error: GatewayErrorCode
    }

    private func convert(_ head: HTTPRequestHead) -> Result<HTTPRequest, Refusal> {
        let http11 = head.version.major == 1 && head.version.minor >= 1
        guard head.method != .CONNECT else { return .failure(Refusal(error: .notImplemented)) }
        guard let method = HTTPRequest.Method(head.method.rawValue) else { return .failure(Refusal(error: .malformedRequest)) }
        var fields = HTTPFields()
        fields.reserveCapacity(head.headers.count)
        var host: String?
        var hostCount = 0
        var transferCodings: [Substring] = []
        for (name, value) in head.headers {
            // The parser decodes field values as UTF-8, replacing invalid bytes with U+FFFD: such a value
            // is refused rather than forwarded altered (a literal U+FFFD is refused too).
            if Self.containsReplacementCharacter(value) { return .failure(Refusal(error: .malformedRequest)) }
            if Self.equalsIgnoringCase(name, "host") {
                hostCount += 1
                host = value
                continue
            }
            if Self.equalsIgnoringCase(name, "transfer-encoding") {
                for coding in value.split(separator: ",") { transferCodings.append(coding.trimmingASCIISpaces()) }
            }
            // The parser has validated names (RFC 9110 tokens); HTTP types agree.
            guard let fieldName = HTTPField.Name(name) else { return .failure(Refusal(error: .malformedRequest)) }
            fields.append(HTTPField(name: fieldName, value: value))
        }
        if !transferCodings.isEmpty {
            // RFC 9112 §6.1, §6.3: the final coding must be chunked, or the length cannot be known.
            guard http11, let last = transferCodings.last, last.lowercased() == "chunked" else { return .failure(Refusal(error: .malformedRequest)) }
            if transferCodings.count > 1 { return .failure(Refusal(error: .notImplemented)) }
        }
        // RFC 9112 §3.2: exactly one Host in HTTP/1.1, at most one before; a valid host[:port].
        guard hostCount <= 1, hostCount == 1 || !http11 else { return .failure(Refusal(error: .malformedRequest)) }
        if let host, !Self.isValidAuthority(host) { return .failure(Refusal(error: .malformedRequest)) }

        var path = head.uri
        // RFC 9112 §3.2.4: the asterisk form is for OPTIONS only (answered by the gateway).
        if path == "*", method != .options { return .failure(Refusal(error: .malformedRequest)) }
        if let first = path.utf8.first, first != UInt8(ascii: "/"), path != "*" {
            // Absolute form (RFC 9112 §3.2.2): the target's authority replaces Host.
            guard let absolute = Self.splitAbsoluteForm(path) else { return .success(HTTPRequest(method: method, scheme: "http", authority: host, path: path, headerFields: fields)) }
            guard Self.isValidAuthority(absolute.authority), !absolute.authority.isEmpty else { return .failure(Refusal(error: .malformedRequest)) }
            guard settings.serverNames.contains(Self.hostName(absolute.authority)) else { return .failure(Refusal(error: .misdirectedRequest)) }
            host = absolute.authority
            path = absolute.pathAndQuery
        }
        return .success(HTTPRequest(method: method, scheme: "http", authority: host, path: path, headerFields: fields))
    }

    /// `http://authority/path?query` → (authority, "/path?query"); nil when the target has no `scheme://`.
    static func splitAbsoluteForm(_ target: String) -> (authority: String, pathAndQuery: String)? {
        guard let separator = target.range(of: "://") else { return nil }
        let scheme = target[..<separator.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else { return nil }
        let rest = target[separator.upperBound...]
        let end = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = String(rest[..<end])
        let tail = rest[end...]
        let pathAndQuery = tail.isEmpty ? "/" : (tail.first == "?" ? "/" + tail : String(tail))
        return (authority, pathAndQuery)
    }

    /// The host of `host[:port]` or `[v6]:port`, lower-cased.
    static func hostName(_ authority: String) -> String {
        let lower = authority.lowercased()
        if lower.hasPrefix("["), let close = lower.firstIndex(of: "]") { return String(lower[...close]) }
        if let colon = lower.lastIndex(of: ":") { return String(lower[..<colon]) }
        return lower
    }

    /// RFC 9112 §3.2 / RFC 3986 §3.2.2–3.2.3 `host [ ":" port ]` without userinfo: a reg-name (unreserved,
    /// sub-delims, `%`-escapes) or IPv4 address, or an IP-literal in brackets (hex digits, `:` and `.`
    /// only), then at most one `:` and a port of at most five digits, up to 65535. Several colons outside
    /// brackets, unbalanced brackets, a bad port or a bad escape are refused.
    static func isValidAuthority(_ value: String) -> Bool {
        // Checked on every request's Host: read in place, no copy of the bytes.
        value.utf8.withContiguousStorageIfAvailable(isValidAuthority) ?? isValidAuthority(Array(value.utf8))
    }

    private static func isValidAuthority(_ bytes: some RandomAccessCollection<UInt8>) -> Bool {
        guard !bytes.isEmpty, bytes.count <= 255 else { return false }
        let start = bytes.startIndex
        var index = start
        if bytes[start] == UInt8(ascii: "[") {
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")), bytes.distance(from: start, to: close) > 2 else { return false }
            for byte in bytes[bytes.index(after: start)..<close] {
                guard byte == UInt8(ascii: ":") || byte == UInt8(ascii: ".") || RequestTarget.hexValue(byte) != nil else { return false }
            }
            index = bytes.index(after: close)
        } else {
            while index < bytes.endIndex, bytes[index] != UInt8(ascii: ":") {
                let byte = bytes[index]
                if byte == UInt8(ascii: "%") {
                    guard bytes.distance(from: index, to: bytes.endIndex) > 2, RequestTarget.hexValue(bytes[bytes.index(index, offsetBy: 1)]) != nil,
                          RequestTarget.hexValue(bytes[bytes.index(index, offsetBy: 2)]) != nil else { return false }
                    index = bytes.index(index, offsetBy: 3)
                    continue
                }
                guard isRegNameByte(byte) else { return false }
                index = bytes.index(after: index)
            }
            guard index > start else { return false }
        }
        guard index < bytes.endIndex else { return true }
        // A port: ":" and 1–5 digits, at most 65535 (an empty port after ":" is refused).
        guard bytes[index] == UInt8(ascii: ":") else { return false }
        let port = bytes[bytes.index(after: index)...]
        guard !port.isEmpty, port.count <= 5 else { return false }
        var number = 0
        for digit in port {
            guard digit >= UInt8(ascii: "0") && digit <= UInt8(ascii: "9") else { return false }
            number = number * 10 + Int(digit - UInt8(ascii: "0"))
        }
        return number <= 65535
    }

    private static func isRegNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"),
             UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "="):
            return true
        default:
            return false
        }
    }

    /// Whether a value holds U+FFFD (UTF-8 `EF BF BD`): one pass looking for its lead byte, which no
    /// ASCII value has.
    static func containsReplacementCharacter(_ value: String) -> Bool {
        let utf8 = value.utf8
        var index = utf8.startIndex
        while let lead = utf8[index...].firstIndex(of: 0xEF) {
            let rest = utf8[utf8.index(after: lead)...]
            if rest.starts(with: [0xBF, 0xBD]) { return true }
            index = utf8.index(after: lead)
        }
        return false
    }

    /// ASCII case-insensitive comparison with a lower-case literal, without allocating.
    static func equalsIgnoringCase(_ name: String, _ lowercase: StaticString) -> Bool {
        equalsIgnoringCase(bytes: name.utf8, lowercase)
    }

    static func equalsIgnoringCase(bytes: some Collection<UInt8>, _ lowercase: StaticString) -> Bool {
        let count = lowercase.utf8CodeUnitCount
        guard bytes.count == count else { return false }
        return lowercase.withUTF8Buffer { expected in
            var index = 0
            for byte in bytes {
                let folded = (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) ? byte | 0x20 : byte
                if folded != expected[index] { return false }
                index += 1
            }
            return true
        }
    }
}
