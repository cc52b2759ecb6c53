import HTTPTypes
import NIOCore

/// An upstream request written as bytes (RFC 9112 §3, §6, §7): the request line, `Host`, the fields the
/// header policy chose, and the body's framing — straight from the HTTP types, without NIO's request
/// encoder or a header-list conversion.
enum HTTP1RequestWriter {
    /// How the body is delimited.
    enum Framing: Equatable {
        /// No body, and no framing field added (`GET` without one).
        case none
        /// `Content-Length` (0 for a `POST`, `PUT` or `PATCH` without a body: RFC 9110 §8.6).
        case length(Int)
        /// The chunked coding (a body of unknown length).
        case chunked
    }

    /// The framing of a request: the client body's declared length, chunked without one.
    static func framing(method: HTTPRequest.Method, body: UpstreamRequestBody?) -> Framing {
        if let body { return body.length.map { .length($0) } ?? .chunked }
        return method == .post || method == .put || method == .patch ? .length(0) : .none
    }

    /// The head. The framing fields are the gateway's: with a body (or a method that expects one) the
    /// client's `Content-Length` and `Transfer-Encoding` are replaced by `framing`; `Cookie` fields are
    /// sent as one line (RFC 6265 §5.4).
    static func writeHead(method: HTTPRequest.Method, target: String, authority: String, fields: UpstreamFields, framing: Framing,
                          traceparent: String? = nil, to buffer: inout ByteBuffer) {
        // Each line into one reservation (`HTTP1ResponseWriter.writeField`).
        let methodName = method.rawValue
        buffer.writeReserved(atMost: methodName.utf8.count + target.utf8.count + 11) { text in
            text.write(methodName)
            text.write(byte: UInt8(ascii: " "))
            text.write(target)
            text.write(" HTTP/1.1\r\n")
        }
        var cookies = false
        let framed = framing != .none
        fields.forEach { name, value in
            if name == .cookie {
                cookies = true
                return
            }
            if framed, name == .contentLength || name == .transferEncoding { return }
            HTTP1ResponseWriter.writeField(name.rawName, value, to: &buffer)
        }
        if cookies {
            buffer.writeStaticString("Cookie: ")
            var first = true
            fields.forEach { name, value in
                guard name == .cookie else { return }
                if !first { buffer.writeStaticString("; ") }
                buffer.writeString(value)
                first = false
            }
            buffer.writeStaticString("\r\n")
        }
        HTTP1ResponseWriter.writeField("Host", authority, to: &buffer)
        if let traceparent { HTTP1ResponseWriter.writeField("traceparent", traceparent, to: &buffer) }
        switch framing {
        case .none: break
        case .length(let length):
            buffer.writeStaticString("Content-Length: ")
            DecimalText.writeDecimal(length, to: &buffer)
            buffer.writeStaticString("\r\n")
        case .chunked:
            buffer.writeStaticString("Transfer-Encoding: chunked\r\n")
        }
        buffer.writeStaticString("\r\n")
    }

    /// One chunk of a chunked body (size line, bytes, CRLF); nothing for an empty one, which would end
    /// the body.
    static func writeChunk(_ chunk: ByteBuffer, to buffer: inout ByteBuffer) {
        guard chunk.readableBytes > 0 else { return }
        HTTP1ResponseWriter.writeHex(chunk.readableBytes, to: &buffer)
        buffer.writeStaticString("\r\n")
        buffer.writeImmutableBuffer(chunk)
        buffer.writeStaticString("\r\n")
    }

    /// The end of a chunked body (no trailers: the gateway does not forward request trailers).
    static func writeLastChunk(to buffer: inout ByteBuffer) {
        buffer.writeStaticString("0\r\n\r\n")
    }
}

