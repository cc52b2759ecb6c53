import NIOCore

/// The tasks that answer requests on one event loop, reused from one request to the next.
///
/// A task per request costs its creation, its executor preference and, above all, memory for its
/// async frames: the request path's frames outgrow a new task's first slab, so each request allocated
/// several more slabs and freed them again. A worker keeps its slabs, so once warm, a request's frames
/// allocate nothing. A connection still holds no task between requests: the workers belong to the loop,
/// and at most `idleLimit` wait for the next request; one more than that ends after its request.
///
/// Confined to its event loop: requests are handed out there, and a worker waits for the next one there
/// (its task prefers the loop's executor).
///
/// The request path's async functions — the job, the responder, the forwarder, the transport, the pool,
/// the exchange and the handoffs between handlers and tasks — are `nonisolated(nonsending)` (SE-0461): they
/// run where their caller runs, the worker on its loop. A plain `nonisolated` async function hops to the
/// generic executor on entry and again after each call returns; with a task executor preference every such
/// hop looks the preference up under the task's status lock. That was 33 hops per proxied request; now 5:
/// after the instance's answer arrives (a real suspension), after a worker's job and its wait for the next
/// one, and after the responder's and the transport's calls, which the compiler does not see stay put.
/// A streamed response body adds Hummingbird's writer's hops (`GatewayResponse`). Where the path is
/// entered off the loops (a health check of an `https://` instance), the transport moves it onto a loop
/// with a closure that hops (`withTaskExecutorPreference`), as before.
final class RequestWorkers: @unchecked Sendable {
    /// What a worker runs: an object, not a closure (a closure's captures are allocated for every request).
    protocol Job: AnyObject, Sendable {
        nonisolated(nonsending) func run() async
    }

    let executor: EventLoopTaskExecutor
    private let idleLimit: Int
    private var idle: [Worker] = []
    private var closed = false

    /// One task answering one request at a time.
    final class Worker: @unchecked Sendable {
        fileprivate var job: (any Job)?
        fileprivate var next: UnsafeContinuation<Bool, Never>?
        fileprivate var task: Task<Void, Never>?

        /// Cancels the request being answered. A task's cancellation cannot be undone, so the worker
        /// ends with that request.
        func cancel() {
            task?.cancel()
        }

        /// Ends its wait: with a request to answer (`true`), or for good.
        fileprivate func resume(_ more: Bool) {
            let next = self.next
            self.next = nil
            next?.resume(returning: more)
        }

        nonisolated(nonsending) fileprivate func runJob() async {
            guard let job else { return }
            self.job = nil
            await job.run()
        }
    }

    /// Workers waiting for a request.
    var waiting: Int { idle.count }

    /// `idleLimit` 0: every request gets a task of its own, which ends with it.
    init(eventLoop: any EventLoop, idleLimit: Int) {
        self.executor = EventLoopTaskExecutor(eventLoop)
        self.idleLimit = idleLimit
    }

    /// Runs `job` on a waiting worker, or a new one. It starts in the loop's next round of tasks, not
    /// synchronously: requests read in one round are answered together.
    func run(_ job: any Job) -> Worker {
        if let worker = idle.popLast() {
            worker.job = job
            worker.resume(true)
            return worker
        }
        let worker = Worker()
        worker.job = job
        worker.task = Task(executorPreference: executor) { [self] in
            await serve(worker)
        }
        return worker
    }

    /// A worker's life: its jobs, one after the other. Not in the task's closure: a closure given to
    /// `Task` runs on the generic executor, so each of its awaits hops back to it (through the task's
    /// executor preference, under its status lock) — three hops per request; this function runs where
    /// its caller does and hops only when its jobs do.
    nonisolated(nonsending) private func serve(_ worker: Worker) async {
        while true {
            await worker.runJob()
            guard !Task.isCancelled, await wait(worker) else { return }
        }
    }

    /// Whether a next request came; false when the worker is not needed (enough are waiting, or the
    /// server stopped).
    nonisolated(nonsending) private func wait(_ worker: Worker) async -> Bool {
        guard !closed, idle.count < idleLimit else { return false }
        return await withUnsafeContinuation { continuation in
            worker.next = continuation
            idle.append(worker)
        }
    }

    /// The server stopped: waiting workers end, busy ones end after their request.
    func close() {
        closed = true
        let waiting = idle
        idle = []
        for worker in waiting { worker.resume(false) }
    }
}

/// A server's request workers, one set per event loop of its group; closed when the server stops.
struct RequestWorkerPools: Sendable {
    private let byLoop: PerEventLoop<RequestWorkers>

    /// `idleLimit`: workers kept waiting per loop — the requests a loop answers at once under steady load
    /// need no new task.
    init(group: any EventLoopGroup, idleLimit: Int = 128) {
        byLoop = PerEventLoop(group) { RequestWorkers(eventLoop: $0, idleLimit: idleLimit) }
    }

    /// The workers of `loop`; nil for a loop of another group.
    func workers(for loop: any EventLoop) -> RequestWorkers? {
        byLoop[loop]
    }

    func close() async {
        for workers in byLoop.values {
            try? await workers.executor.eventLoop.submit { workers.close() }.get()
        }
    }
}
