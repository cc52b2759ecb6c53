#if canImport(Glibc)
import Glibc
#endif
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes

/// Writes a response body to the connection from the responder's task (on the connection's loop).
struct ChannelResponseBodyWriter: ResponseBodyWriter {
    let handler: GatewayRequestHandler
    /// Bytes of a body of known length still to come: a chunk that completes it is not flushed on its
    /// own (the end of the response flushes it), so a whole response leaves in one flush.
    var remaining: Int?

    mutating func write(_ buffer: ByteBuffer) async throws {
        var last = false
        if let remaining {
            self.remaining = remaining - buffer.readableBytes
            last = buffer.readableBytes >= remaining
        }
        try await handler.writeBody(buffer, last: last)
    }

    mutating func write(contentsOf buffers: some Sequence<ByteBuffer>) async throws {
        for buffer in buffers { try await write(buffer) }
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        handler.writeEnd(trailingHeaders)
    }
}
