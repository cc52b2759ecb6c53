import Atomics
import NIOCore

/// The client's request body, remembering whether anyone started reading it, how many bytes went
/// through and whether the client broke it. A retry may only resend a request whose body was never
/// touched: a streamed body cannot be replayed. A body of unknown length (chunked) is cut off with
/// `ClientBodyFailure.tooLarge` at the route's limit, so an oversized upload fails while streaming.
struct TrackedRequestBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    /// Nil for a request that declared an empty body (`Content-Length: 0`): nothing to read.
    let body: RequestBodyStream?
    let progress: Progress

    init(body: RequestBodyStream?, limit: Int = .max) {
        self.body = body
        self.progress = Progress(limit: limit)
    }

    final class Progress: Sendable {
        let started = ManagedAtomic<Bool>(false)
        let bytes = ManagedAtomic<Int>(0)
        /// `ClientBodyFailure.rawValue`, 0 while the body is intact.
        let failure = ManagedAtomic<UInt8>(0)
        let limit: Int

        init(limit: Int) {
            self.limit = limit
        }
    }

    var wasRead: Bool { progress.started.load(ordering: .relaxed) }
    var bytesRead: Int { progress.bytes.load(ordering: .relaxed) }
    /// Why reading the client's body failed, if it did: the request is the client's fault, not the service's.
    var clientFailure: ClientBodyFailure? { ClientBodyFailure(rawValue: progress.failure.load(ordering: .relaxed)) }

    struct AsyncIterator: AsyncIteratorProtocol {
        let inner: RequestBodyStream?
        let progress: Progress

        mutating func next() async throws -> ByteBuffer? {
            guard let inner else { return nil }
            let chunk: ByteBuffer?
            do {
                chunk = try await inner.next()
            } catch {
                // The connection broke, the framing was invalid (a bad chunk) or the client paused too
                // long: the request is incomplete.
                let failure: ClientBodyFailure = error is RequestBodyTimeout ? .timedOut : .malformed
                progress.failure.store(failure.rawValue, ordering: .relaxed)
                throw failure
            }
            guard let chunk else { return nil }
            let total = progress.bytes.wrappingIncrementThenLoad(by: chunk.readableBytes, ordering: .relaxed)
            if total > progress.limit {
                progress.failure.store(ClientBodyFailure.tooLarge.rawValue, ordering: .relaxed)
                throw ClientBodyFailure.tooLarge
            }
            return chunk
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        progress.started.store(true, ordering: .relaxed)
        return AsyncIterator(inner: body, progress: progress)
    }
}

/// The client's body could not be forwarded whole.
enum ClientBodyFailure: UInt8, Error {
    /// Over the route's `max_body_size` (a chunked body, whose size is only known while streaming).
    case tooLarge = 1
    /// Invalid chunked framing, or the client went away mid-body.
    case malformed = 2
    /// The client paused longer than `limits.body_timeout`.
    case timedOut = 3

    var error: GatewayError {
        switch self {
        case .tooLarge: return .bodyTooLarge
        case .malformed: return .malformedRequest
        case .timedOut: return .requestTimeout.with(message: "The request body did not arrive in time.")
        }
    }
}
