import Atomics
import Hummingbird
import NIOCore

/// The client's request body, remembering whether anyone started reading it and how many bytes went
/// through. A retry may only resend a request whose body was never touched: a streamed body cannot be
/// replayed.
struct TrackedRequestBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let body: RequestBody
    let progress = Progress()

    final class Progress: Sendable {
        let started = ManagedAtomic<Bool>(false)
        let bytes = ManagedAtomic<Int>(0)
    }

    var wasRead: Bool { progress.started.load(ordering: .relaxed) }
    var bytesRead: Int { progress.bytes.load(ordering: .relaxed) }

    struct AsyncIterator: AsyncIteratorProtocol {
        var inner: RequestBody.AsyncIterator
        let progress: Progress

        mutating func next() async throws -> ByteBuffer? {
            let chunk = try await inner.next()
            if let chunk { progress.bytes.wrappingIncrement(by: chunk.readableBytes, ordering: .relaxed) }
            return chunk
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        progress.started.store(true, ordering: .relaxed)
        return AsyncIterator(inner: body.makeAsyncIterator(), progress: progress)
    }
}
