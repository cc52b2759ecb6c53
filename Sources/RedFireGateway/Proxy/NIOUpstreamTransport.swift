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
/// get TLS on the same connections (verified; `UpstreamTLSContexts`), the handshake counted as connecting.
final class NIOUpstreamTransport: UpstreamTransport {
    private let group: any EventLoopGroup
    /// One pool per event loop, built once; each is only touched on its loop.
    private let pools: PerEventLoop<LoopConnectionPool>

    /// Idle connections kept per event loop and upstream address; beyond, released ones are closed.
    static let maxIdlePerAddress = 256

    init(eventLoopGroup: any EventLoopGroup, logger: Logger) {
        self.group = eventLoopGroup
        let contexts = UpstreamTLSContexts()
        self.pools = PerEventLoop(eventLoopGroup) { LoopConnectionPool(eventLoop: $0, tlsContexts: contexts) }
    }

    nonisolated(nonsending) func execute(_ request: UpstreamRequest, timeouts: TimeoutConfig) async throws(UpstreamFailure) -> UpstreamResponse {
        if let current = MultiThreadedEventLoopGroup.currentEventLoop, let pool = pools[current] {
            return try await pool.execute(request, timeouts: timeouts)
        }
        // Called off the event loops (e.g. from the concurrency pool): run the exchange on one.
        let loop = group.next()
        guard let pool = pools[loop] else { throw .connectFailed }
        return try await withTaskExecutorPreference(EventLoopTaskExecutor(loop)) { () async throws(UpstreamFailure) -> UpstreamResponse in
            try await pool.execute(request, timeouts: timeouts)
        }
    }

    nonisolated(nonsending) func upgrade(_ request: UpstreamRequest, timeouts: TimeoutConfig) async throws(UpstreamFailure) -> UpstreamResponse {
        // The stream's two connections share one event loop: the client's, where this task runs.
        guard let current = MultiThreadedEventLoopGroup.currentEventLoop, let pool = pools[current] else { throw .connectFailed }
        return try await pool.upgrade(request, timeouts: timeouts)
    }

    func shutdown() async {
        for pool in pools.values {
            try? await pool.eventLoop.submit { pool.closeAll() }.get()
        }
    }
}
