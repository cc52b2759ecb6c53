import NIOCore
import ServiceLifecycle

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

extension EventLoopTaskExecutor {
    /// Runs `body` on `loop`: directly when already there, else in a task executor preference for it.
    static func onLoop<T, Failure: Error>(_ loop: any EventLoop, _ body: () async throws(Failure) -> T) async throws(Failure) -> T {
        if loop.inEventLoop { return try await body() }
        return try await withTaskExecutorPreference(EventLoopTaskExecutor(loop), operation: body)
    }
}

/// A service whose work runs on one event loop (its tasks, and the default actors they call, prefer
/// it); `finally` runs when it has stopped.
struct ServiceOnEventLoop: Service {
    let service: any Service
    let loop: any EventLoop
    let finally: @Sendable () async -> Void

    init(_ service: any Service, loop: any EventLoop, finally: @escaping @Sendable () async -> Void = {}) {
        self.service = service
        self.loop = loop
        self.finally = finally
    }

    func run() async throws {
        do {
            try await withTaskExecutorPreference(EventLoopTaskExecutor(loop)) { try await service.run() }
        } catch {
            await finally()
            throw error
        }
        await finally()
    }
}
