import HTTPTypes
import NIOCore

/// An HTTP/1.1 response written straight into bytes (RFC 9112): the status line and fields from the
/// HTTP types the responder produced, the body framed by `Content-Length`, the chunked coding or the
/// connection's close — no NIO encoder handler, no header-list conversion. A value: the codec owns one
/// per connection; its framing holds from a final head to its end.
struct HTTP1ResponseWriter {
    /// What the response being written may carry.
    enum BodyFraming: Equatable {
        /// No body bytes (HEAD, 1xx, 204, 304): parts that come anyway are dropped.
        case none
        /// As they come: a `Content-Length` says where it ends, or the connection's close (HTTP/1.0).
        case raw
        /// The chunked coding: each part a chunk, the end `0` and the trailers.
        case chunked
    }

    /// The request a response answers: its version and whether it was `HEAD`.
    struct Request: Equatable {
        var http10: Bool
        var head: Bool
    }

    private(set) var framing = BodyFraming.none

    /// What `writeHead` decided beyond the bytes.
    struct Head {
        /// The response says `Connection: close`, or its body can only end with the connection.
        var closes: Bool
    }

    /// The status line and fields. `close`: the connection closes after this response (the head says
    /// so unless it does already). The framing headers are the gateway's: a `Content-Length` wins over a
    /// `Transfer-Encoding`; without either a final response to HTTP/1.1 is chunked, to HTTP/1.0 ends with
    /// the connection; a response that has no body (1xx, 204, 304) carries neither (RFC 9110 §8.6, RFC
    /// 9112 §6.1–6.3); a response to HEAD keeps its framing headers and no body.
    mutating func writeHead(_ response: HTTPResponse, answering request: Request, close: Bool, to buffer: inout ByteBuffer) -> Head {
        let code = response.status.code
        let final = code >= 200
        buffer.writeStaticString("HTTP/1.1 ")
        Self.writeStatus(code, response.status.reasonPhrase, to: &buffer)
        var saysClose = false
        var hasLength = false
        let bodyAllowed = final && code != 204 && code != 304
        let fields = response.headerFields
        // By index, each part read where it is (iterating would copy every field out first).
        for index in fields.indices {
            if fields[index].name == .contentLength {
                guard bodyAllowed else { continue }
                hasLength = true
            } else if fields[index].name == .transferEncoding {
                // Set below from the framing chosen; never passed through.
                continue
            } else if fields[index].name == .connection, ASCII.equalsIgnoringCase(fields[index].value, "close") {
                saysClose = true
            }
            Self.writeField(fields[index].name.rawName, fields[index].value, to: &buffer)
        }
        var closes = saysClose
        if !final {
            framing = .none
        } else {
            if !bodyAllowed {
                framing = .none
            } else if hasLength {
                framing = .raw
            } else if request.http10 {
                // HTTP/1.0 knows no chunked coding: a body of unknown length ends with the connection.
                framing = .raw
                closes = true
            } else {
                framing = .chunked
                buffer.writeStaticString("transfer-encoding: chunked\r\n")
            }
            if request.head { framing = .none }
            if !saysClose, close || closes {
                buffer.writeStaticString("Connection: close\r\n")
                closes = true
            } else if !saysClose, request.http10 {
                // The client asked to keep the connection (HTTP/1.0 closes unless told otherwise).
                buffer.writeStaticString("Connection: keep-alive\r\n")
            }
        }
        buffer.writeStaticString("\r\n")
        return Head(closes: closes)
    }

    /// Writes what precedes a body part of `count` bytes (a chunk's size line); false when the part is
    /// to be dropped (a response without a body, an empty chunk that would end the body).
    func writeBodyPrefix(count: Int, to buffer: inout ByteBuffer) -> Bool {
        switch framing {
        case .none: return false
        case .raw: return count > 0
        case .chunked:
            guard count > 0 else { return false }
            Self.writeHex(count, to: &buffer)
            buffer.writeStaticString("\r\n")
            return true
        }
    }

    /// Writes what follows a body part (a chunk's CRLF).
    func writeBodySuffix(to buffer: inout ByteBuffer) {
        if framing == .chunked { buffer.writeStaticString("\r\n") }
    }

    /// Writes the end of the body: the last chunk and the trailers when chunked, nothing otherwise
    /// (trailers without the chunked coding have nowhere to go and are dropped).
    mutating func writeEnd(trailers: HTTPFields?, to buffer: inout ByteBuffer) {
        if framing == .chunked {
            buffer.writeStaticString("0\r\n")
            for field in trailers ?? [:] { Self.writeField(field.name.rawName, field.value, to: &buffer) }
            buffer.writeStaticString("\r\n")
        }
        framing = .none
    }

    /// A complete response of the gateway's own with its body (a refusal), closing the connection.
    static func writeComplete(status: HTTPResponse.Status, fields: [(String, String)], body: ByteBuffer, to buffer: inout ByteBuffer) {
        buffer.writeStaticString("HTTP/1.1 ")
        writeStatus(status.code, status.reasonPhrase, to: &buffer)
        for (name, value) in fields { writeField(name, value, to: &buffer) }
        buffer.writeStaticString("Content-Length: ")
        DecimalText.writeDecimal(body.readableBytes, to: &buffer)
        buffer.writeStaticString("\r\n\r\n")
        buffer.writeImmutableBuffer(body)
    }

    /// `200 OK\r\n`. Each line of a head is written into one reservation (`ReservedText`): a
    /// `ByteBuffer` write checks uniqueness, capacity and exclusive access, and a field was four writes.
    static func writeStatus(_ code: Int, _ reason: String, to buffer: inout ByteBuffer) {
        buffer.writeReserved(atMost: ReservedText.decimalBound + reason.utf8.count + 3) { text in
            text.writeDigits(UInt(clamping: code))
            text.write(byte: UInt8(ascii: " "))
            text.write(reason)
            text.write("\r\n")
        }
    }

    static func writeField(_ name: String, _ value: String, to buffer: inout ByteBuffer) {
        buffer.writeReserved(atMost: name.utf8.count + value.utf8.count + 4) { text in
            text.write(name)
            text.write(": ")
            text.write(value)
            text.write("\r\n")
        }
    }

    static func writeHex(_ value: Int, to buffer: inout ByteBuffer) {
        let digits: StaticString = "0123456789abcdef"
        var shift = (Int.bitWidth - value.leadingZeroBitCount + 3) / 4 * 4 - 4
        if shift < 0 { shift = 0 }
        while shift >= 0 {
            let nibble = (value >> shift) & 0xF
            buffer.writeInteger(digits.utf8Start[nibble])
            shift -= 4
        }
    }
}
