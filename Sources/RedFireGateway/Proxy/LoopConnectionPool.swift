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
        /// TLS settings of an `https://` instance (nil: plain HTTP).
        var tls: UpstreamTLSConfig?
    }

    /// The idle connections of one key, newest last; a class so that taking and returning one mutates
    /// it in place (no copy of the list, no dictionary write per request).
    private final class IdleList {
        var connections: [UpstreamConnection] = []
    }

    let eventLoop: any EventLoop
    private let tlsContexts: UpstreamTLSContexts
    private var idle: [Key: IdleList] = [:]

    init(eventLoop: any EventLoop, tlsContexts: UpstreamTLSContexts = UpstreamTLSContexts()) {
        self.eventLoop = eventLoop
        self.tlsContexts = tlsContexts
    }

    nonisolated(nonsending) func execute(_ request: UpstreamRequest, timeouts: TimeoutConfig) async throws(UpstreamFailure) -> UpstreamResponse {
        eventLoop.assertInEventLoop()
        let key = Key(host: request.upstream.host, port: request.upstream.port, idleNanoseconds: timeouts.idle.nanosecondsClamped, tls: request.tls)
        if let pooled = takeIdle(key) {
            do {
                var response = try await pooled.abandonableExchange(request, timeouts: timeouts, pool: self, key: key)
                response.connection = .pooled
                return response
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
            var response = try await connection.abandonableExchange(request, timeouts: timeouts, pool: self, key: key)
            response.connection = .new
            return response
        } catch let failure {
            throw failure.failure
        }
    }

    /// An upgrade request, always on a new connection (one that answers 101 is the stream's from then on).
    nonisolated(nonsending) func upgrade(_ request: UpstreamRequest, timeouts: TimeoutConfig) async throws(UpstreamFailure) -> UpstreamResponse {
        eventLoop.assertInEventLoop()
        let key = Key(host: request.upstream.host, port: request.upstream.port, idleNanoseconds: timeouts.idle.nanosecondsClamped, tls: request.tls)
        let connection = try await connect(key, timeouts: timeouts)
        do {
            return try await connection.abandonableExchange(request, timeouts: timeouts, pool: self, key: key)
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

    nonisolated(nonsending) private func connect(_ key: Key, timeouts: TimeoutConfig) async throws(UpstreamFailure) -> UpstreamConnection {
        let idleTimeout = TimeAmount.nanoseconds(key.idleNanoseconds)
        let tlsContext = try key.tls.map { config throws(UpstreamFailure) in try tlsContexts.context(for: config) }
        let handshake = tlsContext == nil ? nil : eventLoop.makePromise(of: Void.self)
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(.nanoseconds(timeouts.connect.nanosecondsClamped))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            // Reads of at most 16 KiB (HAProxy's buffer size): what a paused connection reads past the
            // buffer bound within one readable event stays small.
            .channelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: 16 * 1024))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    // `https://`: TLS first, verified (`services.NAME.tls`, or the system's trust store).
                    if let tlsContext, let config = key.tls {
                        try sync.addHandler(try UpstreamTLSContexts.handler(context: tlsContext, config: config, host: key.host))
                        try sync.addHandler(UpstreamTLSHandshake(done: handshake!, timeout: .nanoseconds(timeouts.connect.nanosecondsClamped)))
                    }
                    // Requests are written as bytes (`HTTP1RequestWriter`; every field comes from
                    // `HTTPFields`: names are tokens, values legalized on construction; `Host` from the
                    // validated instance URL); the handler parses the responses (llhttp, `HTTP1Parser`).
                    try sync.addHandler(UpstreamConnectionHandler(idleTimeout: idleTimeout))
                }
            }
        do {
            let channel = try await bootstrap.connect(host: key.host, port: key.port).get()
            if let handshake {
                // The handshake is part of connecting: bounded by the connect timeout, and a failure
                // (a certificate not verified) means nothing was sent.
                do {
                    try await handshake.futureResult.get()
                } catch let error as ChannelError {
                    channel.close(promise: nil)
                    if case .connectTimeout = error { throw UpstreamFailure.connectTimeout }
                    throw UpstreamFailure.tlsFailed
                } catch {
                    channel.close(promise: nil)
                    throw UpstreamFailure.tlsFailed
                }
            }
            let handler = try channel.pipeline.syncOperations.handler(type: UpstreamConnectionHandler.self)
            return UpstreamConnection(channel: channel, handler: handler)
        } catch let failure as UpstreamFailure {
            handshake?.fail(failure)
            throw failure
        } catch {
            handshake?.fail(error)
            throw UpstreamFailure(classifying: error)
        }
    }
}
