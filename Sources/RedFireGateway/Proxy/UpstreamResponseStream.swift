import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// The response body of one exchange. Ends by returning the connection to its pool (when the exchange
/// left it reusable) or closing it; abandoned early (the client went away), it closes the connection.
struct UpstreamResponseStream: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let state: State

    init(connection: UpstreamConnection, pool: LoopConnectionPool, key: LoopConnectionPool.Key, reusable: Bool) {
        state = State(connection: connection, pool: pool, key: key, reusable: reusable)
    }

    final class State: @unchecked Sendable {
        let connection: UpstreamConnection
        let pool: LoopConnectionPool
        let key: LoopConnectionPool.Key
        let reusable: Bool
        var finished = false

        init(connection: UpstreamConnection, pool: LoopConnectionPool, key: LoopConnectionPool.Key, reusable: Bool) {
            self.connection = connection
            self.pool = pool
            self.key = key
            self.reusable = reusable
        }

        deinit {
            if !finished { connection.channel.close(promise: nil) }
        }

        /// A cancelled task (its client went away) closes the connection: the wait ends at once.
        func next() async throws -> ByteBuffer? {
            guard !finished else { return nil }
            return try await withTaskCancellationHandler {
                try await EventLoopTaskExecutor.onLoop(connection.channel.eventLoop) { try await self.nextOnLoop() }
            } onCancel: { [channel = connection.channel] in
                channel.close(promise: nil)
            }
        }

        private func nextOnLoop() async throws -> ByteBuffer? {
            let part: UpstreamResponsePart?
            do {
                part = try await connection.handler.next()
            } catch {
                finished = true
                connection.channel.close(promise: nil)
                throw error
            }
            switch part {
            case .body(let chunk):
                return chunk
            case .end:
                finished = true
                connection.handler.endExchange()
                if reusable { pool.release(connection, key: key) } else { connection.channel.close(promise: nil) }
                return nil
            case .head, .none:
                // The connection closed mid-body (or sent garbage): the response is incomplete.
                finished = true
                connection.channel.close(promise: nil)
                throw UpstreamFailure.connectionFailed
            }
        }
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        let state: State
        mutating func next() async throws -> ByteBuffer? { try await state.next() }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(state: state) }

    /// Ends the exchange from outside (the gateway ends an event stream): the connection closes, and a
    /// read waiting on it ends at once. From any thread.
    var stop: @Sendable () -> Void {
        { [channel = state.connection.channel] in channel.close(promise: nil) }
    }
}
