import NIOCore

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
