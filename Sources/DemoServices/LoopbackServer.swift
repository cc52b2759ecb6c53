import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// A Hummingbird application running on loopback in a service group of its own, so that it can be
/// stopped gracefully: the listening socket closes first, connections already accepted are served to
/// the end of their current request, idle ones close.
///
/// Cancelling the task that runs a server instead can trap the whole process when a connection is
/// being accepted at that moment: the accepted channel is dropped before anyone took it, and NIO
/// asserts on its unfinished writer (swift-nio issue 2813). Every server the demo and the tests start
/// and stop goes through here.
public final class LoopbackServer: Sendable {
    /// The port the server listens on.
    public let port: Int
    private let group: ServiceGroup
    private let task: Task<Void, any Error>
    private let listener: any Channel

    private init(port: Int, group: ServiceGroup, task: Task<Void, any Error>, listener: any Channel) {
        self.port = port
        self.group = group
        self.task = task
        self.listener = listener
    }

    /// Runs the application `make` builds (it must pass `onServerRunning` to the application) and
    /// returns once it accepts connections. Throws what the server threw if it could not start (an
    /// `IOError` with `EADDRINUSE` when the port is taken).
    public static func start(
        logger: Logger,
        _ make: (_ onServerRunning: @escaping @Sendable (any Channel) async -> Void) -> some Service
    ) async throws -> LoopbackServer {
        let (stream, continuation) = AsyncStream.makeStream(of: (any Channel).self)
        let service = make { channel in
            continuation.yield(channel)
            continuation.finish()
        }
        let group = ServiceGroup(configuration: .init(services: [service], logger: logger))
        let task = Task {
            defer { continuation.finish() }
            try await group.run()
        }
        var iterator = stream.makeAsyncIterator()
        guard let listener = await iterator.next(), let port = listener.localAddress?.port else {
            try await task.value
            throw LoopbackServerError.notListening
        }
        return LoopbackServer(port: port, group: group, task: task, listener: listener)
    }

    /// Stops accepting, lets the connections already accepted finish their current request, and
    /// returns once the server has stopped and its listening socket is closed.
    public func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
        try? await listener.closeFuture.get()
    }
}

public enum LoopbackServerError: Error {
    /// The server stopped before it listened.
    case notListening
}
