import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

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
                      request.method.isIdempotent, !Task.isCancelled else { throw failure.failure }
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
                    // Requests are written as bytes (`HTTP1RequestWriter`; every field comes from
                    // `HTTPFields`: names are tokens, values legalized on construction; `Host` from the
                    // validated instance URL); llhttp (NIO's response decoder) parses the responses.
                    try sync.addHandler(UpstreamRequestBytes())
                    try sync.addHandler(ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes)))
                    try sync.addHandler(UpstreamConnectionHandler(idleTimeout: idleTimeout))
                }
            }
        do {
            let channel = try await bootstrap.connect(host: key.host, port: key.port).get()
            let handler = try channel.pipeline.syncOperations.handler(type: UpstreamConnectionHandler.self)
            return UpstreamConnection(channel: channel, handler: handler)
        } catch {
            throw UpstreamFailure(classifying: error)
        }
    }
}
