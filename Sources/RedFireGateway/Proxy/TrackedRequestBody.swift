import Atomics
import Hummingbird
import NIOCore

/// The client's request body, remembering whether anyone started reading it. A retry may only resend a
/// request whose body was never touched: a streamed body cannot be replayed.
struct TrackedRequestBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let body: RequestBody
    let started = ManagedAtomic<Bool>(false)

    var wasRead: Bool { started.load(ordering: .relaxed) }

    struct AsyncIterator: AsyncIteratorProtocol {
        var inner: RequestBody.AsyncIterator
        let started: ManagedAtomic<Bool>

        mutating func next() async throws -> ByteBuffer? {
            started.store(true, ordering: .relaxed)
            return try await inner.next()
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        started.store(true, ordering: .relaxed)
        return AsyncIterator(inner: body.makeAsyncIterator(), started: started)
    }
}
