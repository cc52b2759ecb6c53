import HTTPTypes
import Logging
import NIOCore
import NIOHTTP2
import NIOHTTPTypes
import NIOHTTPTypesHTTP2

/// An HTTP/2 client connection (negotiated with ALPN `h2`): swift-nio-http2 speaks the protocol, and
/// every stream is one request answered by the same request loop and responder as HTTP/1.1 — no second
/// request path:
///
/// ```
/// connection: … TLS ⇄ NIOHTTP2Handler ⇄ NIOHTTP2ServerConnectionManagementHandler ⇄ HTTP2ConnectionObserver
/// each stream: HTTP2FramePayloadToHTTPServerCodec ⇄ HTTP2StreamGuard ⇄ GatewayRequestHandler
/// ```
///
/// The connection's settings come from `listeners[].http2`; the management handler closes an idle
/// connection (`limits.idle_timeout`), asks an old one to go away (`max_age`) and, on graceful shutdown,
/// sends GOAWAY and lets open streams finish. The attack classes are swift-nio-http2's to stop (rapid
/// reset, CONTINUATION and control-frame floods, empty frames, HPACK bombs): it sends GOAWAY and closes
/// the connection; `HTTP2ConnectionObserver` counts why.
enum HTTP2Connection {
    static func configure(_ channel: any Channel, listener: ListenerRuntime, facts: ConnectionFacts, settings: ConnectionSettings,
                          connections: ConnectionCount, accessLog: AccessLog?, logger: Logger,
                          responder: @escaping GatewayHTTPServer.Responder, workers: RequestWorkers?) throws {
        let http2 = listener.config.http2
        facts.httpVersion = "HTTP/2"
        connections.opened()
        let count = listener.http2Count(facts.tlsVersion)
        count?.opened()
        channel.closeFuture.whenComplete { _ in
            connections.closed()
            count?.closed()
        }
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: http2.maxConcurrentStreams),
            HTTP2Setting(parameter: .maxHeaderListSize, value: http2.maxHeaderListSize),
            HTTP2Setting(parameter: .headerTableSize, value: http2.headerTableSize),
            HTTP2Setting(parameter: .maxFrameSize, value: http2.maxFrameSize),
            HTTP2Setting(parameter: .initialWindowSize, value: http2.initialWindowSize),
            HTTP2Setting(parameter: .enablePush, value: 0),
        ]
        connection.targetWindowSize = http2.connectionWindowSize
        var stream = NIOHTTP2Handler.StreamConfiguration()
        stream.targetWindowSize = http2.initialWindowSize
        let manager = NIOHTTP2ServerConnectionManagementHandler(
            eventLoop: channel.eventLoop,
            configuration: .init(maxIdleTime: settings.idleTimeout, maxAge: http2.maxAge.map { .nanoseconds($0.nanosecondsClamped) },
                                 maxGraceTime: settings.shutdownGrace, keepalive: nil))
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(FlushCoalescer())
        _ = try sync.configureHTTP2Pipeline(mode: .server, connectionConfiguration: connection, streamConfiguration: stream,
                                            streamDelegate: manager.http2StreamDelegate) { stream in
            stream.eventLoop.makeCompletedFuture {
                let guardian = HTTP2StreamGuard(bodyTimeout: settings.bodyTimeout, accessLog: accessLog, facts: facts)
                let sync = stream.pipeline.syncOperations
                try sync.addHandler(HTTP2FramePayloadToHTTPServerCodec())
                try sync.addHandler(guardian)
                try sync.addHandler(GatewayRequestHandler(responder: responder, logger: logger, bufferLimit: settings.bufferBytes, facts: facts,
                                                          workers: workers))
            }
        }
        try sync.addHandler(manager)
        try sync.addHandler(HTTP2ConnectionObserver(listener: listener))
    }
}

/// Turns the flushes of one event-loop round into one, and the frames written in it into few TLS
/// records. Every stream that finishes a response flushes the connection, and each flush through TLS is
/// a record and a `write` of its own; placed in front of the HTTP/2 handler, this lets the first flush
/// of a round through at the end of the round's tasks — the frames of every stream that wrote meanwhile
/// go out in one `writev` (measured: a `write` per response was the largest single cost of the HTTP/2
/// path). The HTTP/2 handler also writes each frame (a DATA frame's 9-byte header and its payload
/// apart) as a buffer of its own, and the TLS handler seals each buffer as a record of its own: small
/// buffers are gathered into one (up to `gatherLimit` bytes), so a response's HEADERS and DATA leave
/// as one record. Larger payloads pass as they are, after what was gathered, in order.
final class FlushCoalescer: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    /// Buffers up to this size are gathered (a DATA payload of the default frame size is 16 KiB).
    static let gatherLimit = 16 * 1024 + 9
    /// Gathered bytes are passed on at this size even before the flush.
    static let passOnSize = 64 * 1024

    private var scheduled = false
    private var gathered: ByteBuffer?
    /// Completed when the gathered bytes are written (each gathered write's promise follows it).
    private var gatheredPromise: EventLoopPromise<Void>?

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .byteBuffer(let buffer) = unwrapOutboundIn(data), buffer.readableBytes <= Self.gatherLimit else {
            passOnGathered(context: context)
            context.write(data, promise: promise)
            return
        }
        if gathered == nil {
            gathered = context.channel.allocator.buffer(capacity: max(1024, buffer.readableBytes))
        }
        gathered!.writeImmutableBuffer(buffer)
        if let promise {
            if let gatheredPromise {
                gatheredPromise.futureResult.cascade(to: promise)
            } else {
                gatheredPromise = promise
            }
        }
        if gathered!.readableBytes >= Self.passOnSize { passOnGathered(context: context) }
    }

    func flush(context: ChannelHandlerContext) {
        guard !scheduled else { return }
        scheduled = true
        context.eventLoop.assumeIsolated().execute { [self] in
            guard scheduled else { return }
            scheduled = false
            passOnGathered(context: context)
            context.flush()
        }
    }

    /// What was written goes out before the connection closes (a GOAWAY, the last responses of a
    /// graceful shutdown): a close discards unflushed writes.
    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if scheduled || gathered != nil {
            scheduled = false
            passOnGathered(context: context)
            context.flush()
        }
        context.close(mode: mode, promise: promise)
    }

    /// The connection is gone without a close through here: what was gathered cannot be written.
    func handlerRemoved(context: ChannelHandlerContext) {
        gathered = nil
        let promise = gatheredPromise
        gatheredPromise = nil
        promise?.fail(ChannelError.ioOnClosedChannel)
    }

    private func passOnGathered(context: ChannelHandlerContext) {
        guard let buffer = gathered else { return }
        let promise = gatheredPromise
        gathered = nil
        gatheredPromise = nil
        context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: promise)
    }
}

/// Counts why swift-nio-http2 ended a connection — it has sent GOAWAY for abuse or a malformed frame —
/// and closes it. Other errors that reach the connection's end (a stream's own error, a client gone
/// without close_notify) are not the connection's fault and change nothing here.
final class HTTP2ConnectionObserver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame

    let listener: ListenerRuntime
    /// Counted once: what follows the first error (writes to a closing connection) is its consequence.
    private var ended = false

    init(listener: ListenerRuntime) {
        self.listener = listener
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let reason = Self.reason(error) else { return }
        if !ended {
            ended = true
            listener.http2ConnectionError(reason)
        }
        context.close(promise: nil)
    }

    /// The client closed its side (TLS close_notify or FIN): HTTP/2 has no half-open connection, so the
    /// gateway closes too (at once: a client waiting for the gateway's close_notify is not kept waiting).
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Why the connection was ended; nil for errors that do not end it.
    static func reason(_ error: any Error) -> String? {
        switch error {
        case is NIOHTTP2Errors.ExcessiveRSTFrames: "rapid_reset"
        case is NIOHTTP2Errors.ExcessiveStreamErrors: "stream_errors"
        case is NIOHTTP2Errors.ExcessiveContinuationFrames: "continuation_flood"
        case is NIOHTTP2Errors.ExcessivelyLargeHeaderBlock: "header_block_too_large"
        case is NIOHTTP2Errors.ExcessiveControlFrames: "control_frame_flood"
        case is NIOHTTP2Errors.ExcessiveEmptyDataFrames: "empty_frames"
        case is NIOHTTP2Errors.ExcessiveOutboundFrameBuffering: "peer_not_reading"
        case is NIOHTTP2Errors.ExcessiveNumberOfGlitches: "glitches"
        // A frame that cannot be parsed — HPACK decoding included: a header block over
        // max_header_list_size, a table size update beyond header_table_size, bad indices.
        case is NIOHTTP2Errors.UnableToParseFrame: "malformed_frame"
        case is NIOHTTP2Errors.BadClientMagic: "bad_preface"
        default: nil
        }
    }
}

/// What an HTTP/2 stream's request must be before the request loop takes it, and what its response must
/// not carry (RFC 9113 §8):
/// - `:authority` (or a lone `Host`) is the request's authority, a valid `host[:port]`; a `Host` that
///   differs from `:authority`, or several, is 400; `Host` itself never goes further;
/// - `CONNECT` is 501 (the gateway is not a tunnel);
/// - several `Cookie` fields are joined with `; ` (§8.2.3) for the HTTP/1.1 instance;
/// - a body without `Content-Length` is marked `Transfer-Encoding: chunked`, as an HTTP/1.1 request of
///   unknown length would be — forwarded chunked;
/// - a body that stalls longer than `limits.body_timeout` fails with the timeout (408);
/// - connection-specific response fields (`Connection`, `Keep-Alive`, `Proxy-Connection`,
///   `Transfer-Encoding`, `Upgrade`) are removed.
final class HTTP2StreamGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// The request head, held until it is known whether a body follows: the converter passes a HEADERS
    /// frame with END_STREAM on as the head and the end in one go, so an end right after the head means
    /// none; anything else (a body part, the end of the read) means one. The request loop keys on
    /// `Content-Length` or `Transfer-Encoding`, which an HTTP/2 request with a body need not carry.
    private var heldHead: HTTPRequest?
    private let bodyTimeout: TimeAmount
    private let accessLog: AccessLog?
    private let facts: ConnectionFacts
    private var refused = false
    private var receiving = false
    private var lastRead = NIODeadline.now()
    private var timer: Scheduled<Void>?

    static let host = HTTPField.Name("Host")!
    static let connectionSpecific: [HTTPField.Name] = [.connection, HTTPField.Name("Keep-Alive")!, HTTPField.Name("Proxy-Connection")!,
                                                        .transferEncoding, HTTPField.Name("Upgrade")!]

    init(bodyTimeout: TimeAmount, accessLog: AccessLog?, facts: ConnectionFacts) {
        self.bodyTimeout = bodyTimeout
        self.accessLog = accessLog
        self.facts = facts
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            heldHead = head
        case .body(let buffer):
            guard passHeldHead(bodyFollows: true, context: context) else { return }
            lastRead = context.eventLoop.now
            context.fireChannelRead(wrapInboundOut(.body(buffer)))
        case .end(let trailers):
            guard passHeldHead(bodyFollows: false, context: context) else { return }
            receiving = false
            timer?.cancel()
            timer = nil
            context.fireChannelRead(wrapInboundOut(.end(trailers)))
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // A head with nothing after it in this read: its body is still to come.
        if passHeldHead(bodyFollows: true, context: context) { context.fireChannelReadComplete() }
    }

    /// Checks and passes on the held head, if any; false when the request was refused.
    private func passHeldHead(bodyFollows: Bool, context: ChannelHandlerContext) -> Bool {
        guard var head = heldHead else { return !refused }
        heldHead = nil
        if let error = Self.normalize(&head, bodyFollows: bodyFollows) {
            refuse(error, head: head, context: context)
            return false
        }
        context.fireChannelRead(wrapInboundOut(.head(head)))
        if bodyFollows {
            receiving = true
            lastRead = context.eventLoop.now
            arm(context, at: lastRead + bodyTimeout)
        }
        return true
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .head(var response) = unwrapOutboundIn(data) else {
            context.write(data, promise: promise)
            return
        }
        for name in Self.connectionSpecific where response.headerFields.contains(name) { response.headerFields[name] = nil }
        Self.setIndexing(&response.headerFields)
        context.write(wrapOutboundOut(.head(response)), promise: promise)
    }

    /// HPACK (RFC 7541 §7.1): a value that changes with every response — the request ID, the rate-limit
    /// fields — would only push the connection's useful table entries out (and every later field's lookup
    /// scans the table), so it is sent literally; a `Set-Cookie` is never indexed, by any hop (§7.1.3).
    /// The header policy and the rate limiter make their fields so already; a field is changed here only
    /// when it is not (changing one copies the response's whole list).
    static func setIndexing(_ fields: inout HTTPFields) {
        for index in fields.indices {
            let field = fields[index]
            let wanted: HTTPField.DynamicTableIndexingStrategy
            if field.name == .setCookie {
                wanted = .disallow
            } else if field.name == .requestID || field.name == .rateLimit || field.name == .xRateLimitRemaining || field.name == .xRateLimitReset {
                wanted = .avoid
            } else {
                continue
            }
            if field.indexingStrategy != wanted { fields[index].indexingStrategy = wanted }
        }
    }

    /// The checks and rewrites above; the refusal, if any.
    static func normalize(_ head: inout HTTPRequest, bodyFollows: Bool) -> GatewayError? {
        if head.method == .connect { return .notImplemented }
        let hosts = head.headerFields[values: host]
        if !hosts.isEmpty {
            guard hosts.count == 1 else { return .malformedRequest }
            if let authority = head.authority {
                guard authority.lowercased() == hosts[0].lowercased() else { return .malformedRequest }
            } else {
                head.authority = hosts[0]
            }
            head.headerFields[host] = nil
        }
        guard let authority = head.authority, !authority.isEmpty, GatewayHTTPCodec.isValidAuthority(authority) else { return .malformedRequest }
        let cookies = head.headerFields[values: .cookie]
        if cookies.count > 1 { head.headerFields[.cookie] = cookies.joined(separator: "; ") }
        if bodyFollows, !head.headerFields.contains(.contentLength) { head.headerFields[.transferEncoding] = "chunked" }
        return nil
    }

    private func arm(_ context: ChannelHandlerContext, at deadline: NIODeadline) {
        timer?.cancel()
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            timer = nil
            guard receiving else { return }
            let due = lastRead + bodyTimeout
            if context.eventLoop.now < due { return arm(context, at: due) }
            receiving = false
            // Whoever reads the body fails with the timeout (the forwarder answers 408).
            context.fireErrorCaught(RequestBodyTimeout())
        }
    }

    /// Answers the stream with the error envelope; the request goes no further.
    private func refuse(_ error: GatewayError, head: HTTPRequest, context: ChannelHandlerContext) {
        refused = true
        let requestID = GatewayRequestID.generate()
        let body = ErrorEnvelope.body(error, requestID: requestID)
        if let accessLog {
            var entry = AccessLogEntry(requestID: requestID, clientIP: context.channel.remoteAddress?.ipAddress, method: head.method.rawValue,
                                       path: head.path.map(GatewayHTTPCodec.loggedPath) ?? "-")
            entry.protocolName = "HTTP/2"
            entry.tls = facts.tlsVersion.map(ClientTransport.name(of:))
            accessLog.record(entry, status: error.status.code, instance: nil, attempts: 0, upstream: .zero, total: .zero,
                             bytesIn: 0, bytesOut: body.readableBytes, errorCode: error.code)
        }
        let response = HTTPResponse(status: error.status, headerFields: [
            .contentType: "\(ErrorEnvelope.contentType)", .requestID: requestID, .cacheControl: "no-store", .contentLength: String(body.readableBytes),
        ])
        context.write(wrapOutboundOut(.head(response)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
