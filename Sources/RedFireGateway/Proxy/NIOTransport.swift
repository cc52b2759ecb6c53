import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// `UpstreamTransport` on SwiftNIO directly: HTTP/1.1 keep-alive connections pooled per event loop and
/// upstream address. A request handled on an event loop (the connection's request loop runs there, see
/// `EventLoopTaskExecutor`) takes an upstream connection of that same loop, so the exchange involves no
/// thread hop and no lock: the pool, the connection and the response stream are confined to the loop.
///
/// Timeouts: `connect` on the connection attempt; `response_headers` from the end of the request to the
/// response head; `idle` as inactivity (no byte read or written) on the connection. `https` instances
/// go through the AsyncHTTPClient transport (TLS).
final class NIOUpstreamTransport: UpstreamTransport {
    private let group: any EventLoopGroup
    /// One pool per event loop, built once; each is only touched on its loop.
    private let pools: [ObjectIdentifier: LoopConnectionPool]
    private let tls: HTTPClientTransport

    /// Idle connections kept per event loop and upstream address; beyond, released ones are closed.
    static let maxIdlePerAddress = 256

    init(eventLoopGroup: any EventLoopGroup, logger: Logger) {
        self.group = eventLoopGroup
        var pools: [ObjectIdentifier: LoopConnectionPool] = [:]
        for loop in eventLoopGroup.makeIterator() { pools[ObjectIdentifier(loop)] = LoopConnectionPool(eventLoop: loop) }
        self.pools = pools
        self.tls = HTTPClientTransport(eventLoopGroup: eventLoopGroup, logger: logger)
    }

    func execute(_ request: UpstreamRequest, timeouts: TimeoutConfig) async throws(UpstreamFailure) -> UpstreamResponse {
        guard request.upstream.scheme == "http" else { return try await tls.execute(request, timeouts: timeouts) }
        if let current = MultiThreadedEventLoopGroup.currentEventLoop, let pool = pools[ObjectIdentifier(current)] {
            return try await pool.execute(request, timeouts: timeouts)
        }
        // Called off the event loops (e.g. from the concurrency pool): run the exchange on one.
        let loop = group.next()
        guard let pool = pools[ObjectIdentifier(loop)] else { return try await tls.execute(request, timeouts: timeouts) }
        return try await withTaskExecutorPreference(EventLoopTaskExecutor(loop)) { () async throws(UpstreamFailure) -> UpstreamResponse in
            try await pool.execute(request, timeouts: timeouts)
        }
    }

    func shutdown() async {
        for pool in pools.values {
            try? await pool.eventLoop.submit { pool.closeAll() }.get()
        }
        await tls.shutdown()
    }
}

/// The idle upstream connections of one event loop. Confined to that loop (hence `@unchecked Sendable`).
final class LoopConnectionPool: @unchecked Sendable {
    struct Key: Hashable {
        var host: String
        var port: Int
        /// Connections carry their service's idle timeout in their pipeline.
        var idleNanoseconds: Int64
    }

    /// The idle connections of one key, newest last; a class so that taking and returning one mutates
    /// it in place (no copy of the list, no dictionary write per request).
    private final class IdleList {
        var connections: [UpstreamConnection] = []
    }

    let eventLoop: any EventLoop
    private var idle: [Key: IdleList] = [:]

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func execute(_ request: UpstreamRequest, timeouts: TimeoutConfig) async throws(UpstreamFailure) -> UpstreamResponse {
        eventLoop.assertInEventLoop()
        let key = Key(host: request.upstream.host, port: request.upstream.port, idleNanoseconds: timeouts.idle.nanosecondsClamped)
        if let pooled = takeIdle(key) {
            do {
                return try await pooled.cancellableExchange(request, timeouts: timeouts, pool: self, key: key)
            } catch let failure {
                // A kept-alive connection the instance closed just as it was reused: nothing of the
                // response arrived. A request without a body that is safe to repeat goes once more on a
                // fresh connection; anything else is the forwarder's decision.
                guard failure.failure == .connectionFailed, !failure.responseStarted, request.body == nil,
                      Forwarder.isIdempotent(request.method), !Task.isCancelled else { throw failure.failure }
            }
        }
        let connection = try await connect(key, timeouts: timeouts)
        do {
            return try await connection.cancellableExchange(request, timeouts: timeouts, pool: self, key: key)
        } catch let failure {
            throw failure.failure
        }
    }

    private func takeIdle(_ key: Key) -> UpstreamConnection? {
        guard let list = idle[key] else { return nil }
        while let connection = list.connections.popLast() {
            if connection.channel.isActive { return connection }
        }
        return nil
    }

    func release(_ connection: UpstreamConnection, key: Key) {
        eventLoop.assertInEventLoop()
        guard connection.channel.isActive else { return }
        let list: IdleList
        if let existing = idle[key] {
            list = existing
        } else {
            list = IdleList()
            idle[key] = list
        }
        guard list.connections.count < NIOUpstreamTransport.maxIdlePerAddress else {
            connection.channel.close(promise: nil)
            return
        }
        list.connections.append(connection)
    }

    func closeAll() {
        for list in idle.values { for connection in list.connections { connection.channel.close(promise: nil) } }
        idle.removeAll()
    }

    private func connect(_ key: Key, timeouts: TimeoutConfig) async throws(UpstreamFailure) -> UpstreamConnection {
        let idleTimeout = TimeAmount.nanoseconds(key.idleNanoseconds)
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(.nanoseconds(timeouts.connect.nanosecondsClamped))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            // Reads of at most 16 KiB (HAProxy's buffer size): what a paused connection reads past the
            // buffer bound within one readable event stays small.
            .channelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: 16 * 1024))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    // No outbound header validation: every field comes from `HTTPFields` (names are
                    // tokens, values legalized on construction), `Host` from the validated instance URL.
                    try sync.addHTTPClientHandlers(enableOutboundHeaderValidation: false)
                    try sync.addHandler(UpstreamConnectionHandler(idleTimeout: idleTimeout))
                }
            }
        do {
            let channel = try await bootstrap.connect(host: key.host, port: key.port).get()
            let handler = try channel.pipeline.syncOperations.handler(type: UpstreamConnectionHandler.self)
            return UpstreamConnection(channel: channel, handler: handler)
        } catch {
            throw HTTPClientTransport.classify(error)
        }
    }
}

/// One keep-alive connection to an instance; confined to its channel's event loop.
final class UpstreamConnection: @unchecked Sendable {
    let channel: any Channel
    let handler: UpstreamConnectionHandler

    init(channel: any Channel, handler: UpstreamConnectionHandler) {
        self.channel = channel
        self.handler = handler
    }

    struct ExchangeFailure: Error {
        var failure: UpstreamFailure
        /// Part of the response had arrived (then the request is never repeated on another connection).
        var responseStarted: Bool
    }

    /// `exchange`, abandoned when the task is cancelled (the client went away): the connection is closed,
    /// so the instance sees the request aborted and the wait ends at once.
    func cancellableExchange(_ request: UpstreamRequest, timeouts: TimeoutConfig, pool: LoopConnectionPool,
                             key: LoopConnectionPool.Key) async throws(ExchangeFailure) -> UpstreamResponse {
        let result: Result<UpstreamResponse, ExchangeFailure> = await withTaskCancellationHandler {
            do throws(ExchangeFailure) {
                return .success(try await exchange(request, timeouts: timeouts, pool: pool, key: key))
            } catch {
                return .failure(error)
            }
        } onCancel: { [channel] in
            channel.close(promise: nil)
        }
        return try result.get()
    }

    /// Sends the request and waits for the response head; the body streams from the returned response.
    func exchange(_ request: UpstreamRequest, timeouts: TimeoutConfig, pool: LoopConnectionPool,
                  key: LoopConnectionPool.Key) async throws(ExchangeFailure) -> UpstreamResponse {
        var headers = HTTPClientTransport.headers(request.headers, spare: 2)
        headers.add(name: "Host", value: request.authority)
        let method = HTTPMethod(rawValue: request.method.rawValue)
        if let body = request.body {
            if let length = body.length { headers.replaceOrAdd(name: "Content-Length", value: String(length)) }
            else { headers.replaceOrAdd(name: "Transfer-Encoding", value: "chunked") }
        } else if method == .POST || method == .PUT || method == .PATCH {
            headers.replaceOrAdd(name: "Content-Length", value: "0")
        }
        handler.beginExchange(bufferLimit: request.bufferLimit)
        channel.write(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: method, uri: request.target, headers: headers)), promise: nil)
        handler.touch()
        var requestComplete = true
        if let body = request.body {
            channel.flush()
            do {
                for try await chunk in body.stream {
                    if channel.isWritable {
                        channel.writeAndFlush(HTTPClientRequestPart.body(.byteBuffer(chunk)), promise: nil)
                    } else {
                        try await channel.writeAndFlush(HTTPClientRequestPart.body(.byteBuffer(chunk))).get()
                    }
                    handler.touch()
                }
            } catch {
                // The client's body broke (the forwarder reads why from the body), or the instance
                // stopped reading: unless it already answered (an early response), the exchange failed.
                requestComplete = false
                if body.stream.clientFailure != nil || !handler.hasBufferedHead {
                    channel.close(promise: nil)
                    throw ExchangeFailure(failure: .connectionFailed, responseStarted: handler.hasBufferedHead)
                }
            }
        }
        if requestComplete { channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil) }

        // `response_headers` counts from the end of the request.
        handler.expectResponse(within: .nanoseconds(timeouts.responseHeaders.nanosecondsClamped))
        defer { handler.responseArrived() }
        var head: HTTPResponseHead
        repeat {
            let part: HTTPClientResponsePart?
            do {
                part = try await handler.next()
            } catch {
                channel.close(promise: nil)
                throw ExchangeFailure(failure: handler.timedOut ? .responseTimeout : .connectionFailed, responseStarted: false)
            }
            guard case .head(let received) = part else {
                channel.close(promise: nil)
                throw ExchangeFailure(failure: handler.timedOut ? .responseTimeout : .connectionFailed, responseStarted: false)
            }
            head = received
            // 1xx interim responses (100 Continue, 103 Early Hints) are not passed on: the final one is.
        } while head.status.code >= 100 && head.status.code < 200 && head.status.code != 101
        if !Self.isForwardable(head) {
            channel.close(promise: nil)
            throw ExchangeFailure(failure: .connectionFailed, responseStarted: true)
        }
        let fields = HTTPFields(nioHeaders: head.headers)
        let reusable = requestComplete && head.isKeepAlive
        let status = HTTPResponse.Status(code: Int(head.status.code))
        if let complete = handler.takeCompleteBody() {
            handler.endExchange()
            if reusable { pool.release(self, key: key) } else { channel.close(promise: nil) }
            return UpstreamResponse(status: status, headers: fields, body: .complete(complete))
        }
        let body = UpstreamResponseStream(connection: self, pool: pool, key: key, reusable: reusable)
        return UpstreamResponse(status: status, headers: fields, body: .stream(body))
    }
}

extension UpstreamConnection {
    /// Whether a response head can be passed on: not `101 Switching Protocols` (the gateway never asks
    /// an instance to upgrade, so a 101 is a broken instance), and a `Transfer-Encoding` only when it is
    /// `chunked` alone (any other coding would reach the client undone: RFC 9112 §6.1). A
    /// response refused here is a 502 for the client and an upstream failure.
    static func isForwardable(_ head: HTTPResponseHead) -> Bool {
        if head.status.code == 101 { return false }
        let codings = head.headers[canonicalForm: "transfer-encoding"]
        return codings.isEmpty || (codings.count == 1 && codings[0].lowercased() == "chunked")
    }
}

/// The response body of one exchange. Ends by returning the connection to its pool (when the exchange
/// left it reusable) or closing it; abandoned early (the client went away), it closes the connection.
struct UpstreamResponseStream: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let state: State

    init(connection: UpstreamConnection, pool: LoopConnectionPool, key: LoopConnectionPool.Key, reusable: Bool) {
        state = State(connection: connection, pool: pool, key: key, reusable: reusable)
    }

    final class State: @unchecked Sendable {
        let connection: UpstreamConnection
        let pool: LoopConnectionPool
        let key: LoopConnectionPool.Key
        let reusable: Bool
        var finished = false

        init(connection: UpstreamConnection, pool: LoopConnectionPool, key: LoopConnectionPool.Key, reusable: Bool) {
            self.connection = connection
            self.pool = pool
            self.key = key
            self.reusable = reusable
        }

        deinit {
            if !finished { connection.channel.close(promise: nil) }
        }

        /// A cancelled task (its client went away) closes the connection: the wait ends at once.
        func next() async throws -> ByteBuffer? {
            guard !finished else { return nil }
            return try await withTaskCancellationHandler {
                try await EventLoopTaskExecutor.onLoop(connection.channel.eventLoop) { try await self.nextOnLoop() }
            } onCancel: { [channel = connection.channel] in
                channel.close(promise: nil)
            }
        }

        private func nextOnLoop() async throws -> ByteBuffer? {
            let part: HTTPClientResponsePart?
            do {
                part = try await connection.handler.next()
            } catch {
                finished = true
                connection.channel.close(promise: nil)
                throw error
            }
            switch part {
            case .body(let chunk):
                return chunk
            case .end:
                finished = true
                connection.handler.endExchange()
                if reusable { pool.release(connection, key: key) } else { connection.channel.close(promise: nil) }
                return nil
            case .head, .none:
                // The connection closed mid-body (or sent garbage): the response is incomplete.
                finished = true
                connection.channel.close(promise: nil)
                throw UpstreamFailure.connectionFailed
            }
        }
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        let state: State
        mutating func next() async throws -> ByteBuffer? { try await state.next() }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(state: state) }
}

/// Buffers response parts for the one task reading them on the same event loop; pauses reading from
/// the socket while the reader lags (back-pressure), and turns close, errors and timeouts into failures
/// of the waiting read.
///
/// Timers: one scheduled callback per connection that re-arms itself, so an exchange only stores
/// deadlines (no timer, promise or closure per request). `idle` is inactivity on the connection — in the
/// pool, or the instance's silence in an exchange (not a slow client that has not taken what was already
/// read: then reading is merely paused); `response_headers` runs from the end of the request to the head.
final class UpstreamConnectionHandler: ChannelInboundHandler, RemovableChannelHandler, NIOScheduledCallbackHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart

    private let parts = LoopHandoff<HTTPClientResponsePart> { part in
        if case .body(let chunk) = part { chunk.readableBytes } else { 0 }
    }
    private var readingPaused = false
    /// The response head was handed on: its body is relayed to the client, and while the relaying task is
    /// not waiting here it is busy with the client — the instance's silence then is not the instance's
    /// fault (with a small buffer it drains empty while the client is slow).
    private var relaying = false
    /// Response bytes buffered for a slow reader before the socket stops being read
    /// (`limits.connection_buffer` of the request being answered).
    private var bufferLimit = 64 * 1024
    /// Between sending a request and the end of its response.
    private var inExchange = false
    private var context: ChannelHandlerContext?
    /// Set when the response-headers deadline passed (then the channel is closed).
    private(set) var timedOut = false

    private let idleTimeout: TimeAmount
    /// The last byte read or request part written.
    private var lastActivity = NIODeadline.now()
    /// The response head is due by then; nil outside the wait for it.
    private var responseDeadline: NIODeadline?
    /// The longest the timer sleeps: a response deadline set after it was armed is never passed by
    /// more than this (the last exchange's `response_headers`, so the same service never re-arms it).
    private var maxSleep: TimeAmount
    private var timer: NIOScheduledCallback?
    private var timerAt = NIODeadline.distantFuture

    /// Parts beyond this many unread pause socket reads until the reader catches up (many small parts:
    /// the byte bound covers large ones).
    static let highWatermark = 16

    struct IdleTimeout: Error {}

    init(idleTimeout: TimeAmount) {
        self.idleTimeout = idleTimeout
        self.maxSleep = idleTimeout
    }

    /// Socket reads are paused until the reader catches up.
    var isReadingPaused: Bool { readingPaused }

    var hasBufferedHead: Bool {
        parts.buffer.contains { if case .head = $0 { return true } else { return false } }
    }

    /// - Parameter bufferLimit: response bytes held for the reader before reading pauses.
    func beginExchange(bufferLimit: Int) {
        timedOut = false
        inExchange = true
        relaying = false
        self.bufferLimit = bufferLimit
    }

    func endExchange() {
        inExchange = false
        relaying = false
        parts.removeAll()
    }

    /// A request part was written.
    func touch() {
        lastActivity = .now()
    }

    /// The request is sent: its response head is due within `timeout`.
    func expectResponse(within timeout: TimeAmount) {
        let deadline = lastActivity + timeout
        responseDeadline = deadline
        maxSleep = min(idleTimeout, timeout)
        if deadline < timerAt, let context { arm(context: context, at: deadline) }
    }

    func responseArrived() {
        responseDeadline = nil
        relaying = true
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        lastActivity = .now()
        arm(context: context, at: lastActivity + idleTimeout)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimer(context: context)
        self.context = nil
    }

    /// When the rest of the response (body parts, then its end) is already buffered: the body in one
    /// buffer, and the parts consumed.
    func takeCompleteBody() -> ByteBuffer? {
        guard let last = parts.buffer.last, case .end = last else { return nil }
        var body: ByteBuffer?
        for part in parts.buffer {
            switch part {
            case .body(var chunk):
                if body == nil { body = chunk } else { body!.writeBuffer(&chunk) }
            case .end:
                break
            case .head:
                return nil
            }
        }
        parts.removeAll()
        return body ?? ByteBuffer()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastActivity = .now()
        // Half the connection's buffer is for the instance's side, half for the client's write buffer.
        let count = parts.deliver(unwrapInboundIn(data))
        if count >= Self.highWatermark || parts.bufferedBytes >= bufferLimit / 2, !readingPaused {
            readingPaused = true
            _ = context.channel.setOption(ChannelOptions.autoRead, value: false)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelTimer(context: context)
        parts.finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        parts.fail(error)
        context.close(promise: nil)
    }

    // MARK: Timer

    private func arm(context: ChannelHandlerContext, at deadline: NIODeadline) {
        cancelTimer(context: context)
        timerAt = deadline
        timer = try? context.eventLoop.scheduleCallback(at: deadline, handler: self)
    }

    private func cancelTimer(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        timerAt = .distantFuture
    }

    func handleScheduledCallback(eventLoop: some EventLoop) {
        timer = nil
        timerAt = .distantFuture
        guard let context, context.channel.isActive else { return }
        let now = NIODeadline.now()
        if let responseDeadline, now >= responseDeadline {
            timedOut = true
            context.close(promise: nil)
            return
        }
        var idleDeadline = lastActivity + idleTimeout
        if now >= idleDeadline {
            if inExchange, !parts.readerWaiting, relaying || !parts.buffer.isEmpty || readingPaused {
                // A slow client, not a silent instance: nobody is waiting for the instance. Once the
                // relaying task waits here again, the instance's silence counts.
                idleDeadline = now + idleTimeout
            } else {
                parts.fail(IdleTimeout())
                context.close(promise: nil)
                return
            }
        }
        arm(context: context, at: min(idleDeadline, responseDeadline ?? .distantFuture, now + maxSleep))
    }

    /// The next response part; nil once the connection closed cleanly with nothing left to read.
    func next() async throws -> HTTPClientResponsePart? {
        try await parts.next { [self] left in
            guard readingPaused, left < Self.highWatermark / 2, parts.bufferedBytes < bufferLimit / 4, let context else { return }
            readingPaused = false
            _ = context.channel.setOption(ChannelOptions.autoRead, value: true)
            context.read()
        }
    }
}
