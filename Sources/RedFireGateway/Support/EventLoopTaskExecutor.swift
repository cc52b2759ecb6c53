import NIOCore

/// A task executor that runs jobs on one NIO event loop.
///
/// Jobs enqueued on the loop itself (a continuation resumed by a channel handler, a worker given its
/// next request) are gathered and run by one loop task: a loop task is a closure allocated and queued
/// under the loop's lock, and a busy loop resumes many tasks per round. Jobs from other threads are
/// queued one by one.
public final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    let eventLoop: any EventLoop
    /// Jobs waiting for the loop task that runs them; touched on the loop only.
    private var gathered: [UnownedJob] = []
    /// The jobs being run (kept to reuse its storage).
    private var running: [UnownedJob] = []

    public init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        guard eventLoop.inEventLoop else {
            eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
            return
        }
        gathered.append(job)
        // The first job since the last run schedules the run; later ones join it. Jobs enqueued while
        // it runs wait for the next one, behind what the loop queued meanwhile.
        if gathered.count == 1 { eventLoop.execute { self.runGathered() } }
    }

    private func runGathered() {
        swap(&gathered, &running)
        let executor = asUnownedTaskExecutor()
        for job in running { job.runSynchronously(on: executor) }
        running.removeAll(keepingCapacity: true)
    }
}

extension EventLoopTaskExecutor {
    /// Runs `body` on `loop`: directly when already there, else in a task executor preference for it.
    static func onLoop<T, Failure: Error>(_ loop: any EventLoop, _ body: () async throws(Failure) -> T) async throws(Failure) -> T {
        if loop.inEventLoop { return try await body() }
        return try await withTaskExecutorPreference(EventLoopTaskExecutor(loop), operation: body)
    }
}
