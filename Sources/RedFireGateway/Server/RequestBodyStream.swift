#if canImport(Glibc)
import Glibc
#endif
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes

/// A request body as it arrives, for the one task reading it on the connection's event loop.
final class RequestBodyStream: AsyncSequence, @unchecked Sendable {
    typealias Element = ByteBuffer

    struct Closed: Error {}

    private let handler: GatewayRequestHandler
    private let eventLoop: any EventLoop
    private let chunks = LoopHandoff<ByteBuffer> { $0.readableBytes }
    private var discarding = false
    /// The client waits for `100 Continue` before sending the body.
    private var expectsContinue: Bool
    /// Bytes held for the reader before the client's socket stops being read.
    private let bufferLimit: Int

    /// Chunks held at most (many small ones: the byte bound covers large ones).
    static let highWatermark = 16

    init(handler: GatewayRequestHandler, eventLoop: any EventLoop, expectsContinue: Bool = false, bufferLimit: Int = 64 * 1024) {
        self.handler = handler
        self.eventLoop = eventLoop
        self.expectsContinue = expectsContinue
        self.bufferLimit = bufferLimit
    }

    var isFull: Bool { chunks.buffer.count >= Self.highWatermark || chunks.bufferedBytes >= bufferLimit }

    func deliver(_ chunk: ByteBuffer) {
        if discarding { return }
        chunks.deliver(chunk)
        if isFull { handler.pauseReading() }
    }

    func finish() { chunks.finish() }

    func fail(_ error: any Error) { chunks.fail(error) }

    /// Nobody reads the rest: drop what is buffered and what comes.
    func discard() {
        discarding = true
        chunks.removeAll()
        handler.resumeReadingIfPossible()
    }

    private func nextOnLoop() async throws -> ByteBuffer? {
        if expectsContinue {
            expectsContinue = false
            if chunks.buffer.isEmpty, !chunks.finished { handler.sendContinue() }
        }
        return try await chunks.next { [bufferLimit] left in
            if left < Self.highWatermark / 2, chunks.bufferedBytes < bufferLimit / 2 { handler.resumeReadingIfPossible() }
        }
    }

    /// Read from elsewhere (e.g. an HTTP client's own task), the read still happens on the loop.
    func next() async throws -> ByteBuffer? {
        try await EventLoopTaskExecutor.onLoop(eventLoop) { try await self.nextOnLoop() }
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        let stream: RequestBodyStream
        mutating func next() async throws -> ByteBuffer? { try await stream.next() }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(stream: self) }
}
