import Atomics
import Logging
import NIOCore
import NIOExtras
import NIOPosix
import ServiceLifecycle

/// One listener's server: binds its address, sets every accepted connection up with
/// `GatewayHTTPServer.setup` on the loop that accepted it, and on graceful shutdown stops accepting,
/// asks every open connection to finish (`ChannelShouldQuiesceEvent`: idle ones close at once, busy
/// ones after their response, HTTP/2 ones with GOAWAY) and returns once the last has closed.
///
/// A connection costs no task: the handlers answer its requests, and NIO's quiescing helper keeps
/// the open connections known (a task awaiting each connection's close, as a generic server keeps,
/// held ~1.7 KB per idle keep-alive connection). Cancelled (the service group's grace is over), it
/// stops accepting and returns; what is still open closes with the event loops.
struct GatewayListener: Service {
    let http: GatewayHTTPServer
    let host: String
    let port: Int
    let backlog: Int32
    let eventLoopGroup: any EventLoopGroup
    let logger: Logger
    /// Once bound, with the listening channel (its port when 0 was asked for).
    let onRunning: @Sendable (any Channel) async -> Void

    func run() async throws {
        let quiescing = ServerQuiescingHelper(group: eventLoopGroup)
        let http = self.http
        let logger = self.logger
        let channel = try await ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(ChannelOptions.backlog, value: backlog)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiescing.makeServerChannelHandler(channel: channel))
                }
            }
            // A client that shuts down its sending side after a request still reads the response.
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                http.setup(channel: channel, logger: logger)
            }
            .bind(host: host, port: port).get()
        logger.info("Server started and listening on \(host):\(channel.localAddress?.port ?? port)")
        await onRunning(channel)
        // Completed once every connection open at the shutdown has closed — or at once when cancelled.
        let drained = channel.eventLoop.makePromise(of: Void.self)
        let shuttingDown = ManagedAtomic(false)
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                // The listening socket closes when the quiescing starts (or if it fails).
                try? await channel.closeFuture.get()
            } onGracefulShutdown: {
                shuttingDown.store(true, ordering: .relaxed)
                quiescing.initiateShutdown(promise: drained)
            }
            if shuttingDown.load(ordering: .relaxed) { try? await drained.futureResult.get() }
        } onCancel: {
            channel.close(promise: nil)
            drained.succeed(())
        }
        await http.workers.close()
    }
}
