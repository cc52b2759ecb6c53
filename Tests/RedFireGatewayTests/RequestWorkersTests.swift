import NIOCore
import NIOPosix
import Testing

@testable import RedFireGateway

/// The request workers on a real event loop: a worker answers one request after another, at most the
/// idle limit wait, a cancelled request's worker is not reused, and a closed set keeps none.
@Suite struct RequestWorkersTests {
    typealias Worker = RequestWorkers.Worker

    /// Runs `count` jobs at once on `workers`' loop (each waits until all have started, so none reuses
    /// another's worker); the workers that ran them (held, so that each stays a distinct object) and
    /// how many of the jobs saw their task cancelled.
    func runTogether(_ count: Int, on workers: RequestWorkers) async throws -> (workers: [Worker], cancelled: Int) {
        let loop = workers.executor.eventLoop
        let (results, sink) = AsyncStream.makeStream(of: Bool.self)
        let gate = loop.makePromise(of: Void.self)
        let started = ManagedCounter()
        let used = try await loop.submit {
            (0..<count).map { _ in
                workers.run {
                    if started.increment() == count { gate.succeed(()) }
                    try? await gate.futureResult.get()
                    sink.yield(Task.isCancelled)
                }
            }
        }.get()
        var finished = 0, cancelled = 0
        for await wasCancelled in results {
            finished += 1
            if wasCancelled { cancelled += 1 }
            if finished == count { break }
        }
        return (used, cancelled)
    }

    func shared(_ a: [Worker], _ b: [Worker]) -> Int {
        b.filter { worker in a.contains { $0 === worker } }.count
    }

    /// The number of workers waiting, read on the loop once it has done what was queued before.
    func waiting(_ workers: RequestWorkers) async throws -> Int {
        try await workers.executor.eventLoop.submit { workers.waiting }.get()
    }

    func awaitWaiting(_ workers: RequestWorkers, _ expected: Int) async throws {
        for _ in 0..<500 where try await waiting(workers) != expected { try await Task.sleep(for: .milliseconds(2)) }
        #expect(try await waiting(workers) == expected)
    }

    /// Runs `body` with a set of workers on a loop of its own, shut down afterwards.
    func withWorkers(idleLimit: Int, _ body: (RequestWorkers) async throws -> Void) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let workers = RequestWorkers(eventLoop: group.next(), idleLimit: idleLimit)
        do {
            try await body(workers)
        } catch {
            try await group.shutdownGracefully()
            throw error
        }
        try await group.shutdownGracefully()
    }

    @Test func aWorkerAnswersOneRequestAfterAnother() async throws {
        try await withWorkers(idleLimit: 4) { workers in
            let first = try await runTogether(1, on: workers)
            try await awaitWaiting(workers, 1)
            let second = try await runTogether(1, on: workers)
            #expect(first.workers[0] === second.workers[0], "the waiting worker took the next request")
            #expect(second.cancelled == 0)
            try await awaitWaiting(workers, 1)
        }
    }

    @Test func atMostTheIdleLimitWait() async throws {
        try await withWorkers(idleLimit: 2) { workers in
            let seen = try await runTogether(5, on: workers)
            #expect(Set(seen.workers.map(ObjectIdentifier.init)).count == 5, "requests at once get workers of their own")
            try await awaitWaiting(workers, 2)
            let next = try await runTogether(3, on: workers)
            #expect(shared(seen.workers, next.workers) == 2, "the two waiting ones were reused, a third was new")
        }
    }

    @Test func noWorkerWaitsWithoutAnIdleLimit() async throws {
        try await withWorkers(idleLimit: 0) { workers in
            let first = try await runTogether(1, on: workers)
            try await awaitWaiting(workers, 0)
            let second = try await runTogether(1, on: workers)
            #expect(first.workers[0] !== second.workers[0])
        }
    }

    @Test func aCancelledRequestsWorkerIsNotReused() async throws {
        try await withWorkers(idleLimit: 4) { workers in
            let loop = workers.executor.eventLoop
            let (results, sink) = AsyncStream.makeStream(of: Bool.self)
            let release = loop.makePromise(of: Void.self)
            let worker = try await loop.submit {
                workers.run {
                    try? await release.futureResult.get()
                    sink.yield(Task.isCancelled)
                }
            }.get()
            worker.cancel()
            release.succeed(())
            var iterator = results.makeAsyncIterator()
            #expect(await iterator.next() == true, "the request saw its cancellation")
            try await awaitWaiting(workers, 0)
            let next = try await runTogether(1, on: workers)
            #expect(next.cancelled == 0, "the next request starts uncancelled")
            #expect(next.workers[0] !== worker)
        }
    }

    @Test func closingEndsWaitingWorkersAndKeepsNone() async throws {
        try await withWorkers(idleLimit: 4) { workers in
            let seen = try await runTogether(3, on: workers)
            try await awaitWaiting(workers, 3)
            try await workers.executor.eventLoop.submit { workers.close() }.get()
            #expect(try await waiting(workers) == 0)
            let after = try await runTogether(1, on: workers)
            #expect(shared(seen.workers, after.workers) == 0, "a request after closing gets a task of its own")
            try await awaitWaiting(workers, 0)
        }
    }
}

/// A counter shared by jobs on one loop.
private final class ManagedCounter: @unchecked Sendable {
    private var value = 0
    func increment() -> Int {
        value += 1
        return value
    }
}

/// A job made of a closure, for these tests (the gateway's jobs are its requests).
private final class ClosureJob: RequestWorkers.Job {
    typealias Body = nonisolated(nonsending) @Sendable () async -> Void
    let body: Body
    init(_ body: @escaping Body) { self.body = body }
    nonisolated(nonsending) func run() async { await body() }
}

extension RequestWorkers {
    fileprivate func run(_ body: @escaping ClosureJob.Body) -> Worker {
        run(ClosureJob(body))
    }
}
