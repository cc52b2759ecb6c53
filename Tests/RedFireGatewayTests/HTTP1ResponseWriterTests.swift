import HTTPTypes
import NIOCore
import Testing

@testable import RedFireGateway

/// The response writer as a value: the bytes of each framing decision (RFC 9112 §6, RFC 9110 §8.6).
@Suite struct HTTP1ResponseWriterTests {
    static let http11 = HTTP1ResponseWriter.Request(http10: false, head: false)

    func response(_ status: HTTPResponse.Status, _ fields: HTTPFields = [:]) -> HTTPResponse {
        HTTPResponse(status: status, headerFields: fields)
    }

    /// The whole response as text: head, the given body parts, end.
    func written(_ response: HTTPResponse, answering request: HTTP1ResponseWriter.Request = http11, close: Bool = false,
                 body: [String] = [], trailers: HTTPFields? = nil) -> (text: String, closes: Bool) {
        var writer = HTTP1ResponseWriter()
        var buffer = ByteBuffer()
        let head = writer.writeHead(response, answering: request, close: close, to: &buffer)
        for part in body {
            if writer.writeBodyPrefix(count: part.utf8.count, to: &buffer) {
                buffer.writeString(part)
                writer.writeBodySuffix(to: &buffer)
            }
        }
        writer.writeEnd(trailers: trailers, to: &buffer)
        return (String(buffer: buffer), head.closes)
    }

    @Test func aLengthFramesTheBodyAsItIs() {
        let (text, closes) = written(response(.ok, [.contentLength: "5", .contentType: "text/plain"]), body: ["he", "llo"])
        #expect(text == "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello")
        #expect(!closes)
    }

    @Test func withoutALengthHTTP11IsChunkedWithItsTrailers() {
        let (text, _) = written(response(.ok), body: ["hello", "", String(repeating: "x", count: 17)], trailers: [HTTPField.Name("Checksum")!: "abc"])
        #expect(text == "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n11\r\n\(String(repeating: "x", count: 17))\r\n0\r\nChecksum: abc\r\n\r\n")
    }

    @Test func aTransferEncodingFromTheResponderIsTheGatewaysDecision() {
        // A length wins; a coding the responder named is replaced by the gateway's own framing.
        #expect(written(response(.ok, [.contentLength: "2", .transferEncoding: "chunked"]), body: ["ok"]).text
                == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        #expect(written(response(.ok, [.transferEncoding: "gzip, chunked"]), body: ["ok"]).text
                == "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")
    }

    @Test func http10GetsNoChunksAndAKeepAliveOrAClose() {
        let unknownLength = written(response(.ok), answering: .init(http10: true, head: false), body: ["abc"])
        #expect(unknownLength.text == "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nabc")
        #expect(unknownLength.closes, "a body of unknown length ends with the connection")
        let known = written(response(.ok, [.contentLength: "3"]), answering: .init(http10: true, head: false), body: ["abc"])
        #expect(known.text == "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nabc")
        #expect(!known.closes)
    }

    @Test func responsesWithoutABodyCarryNoFramingAndNoBytes() {
        #expect(written(response(.noContent, [.contentLength: "4"]), body: ["oops"]).text == "HTTP/1.1 204 No Content\r\n\r\n")
        #expect(written(response(.notModified, [.transferEncoding: "chunked", .eTag: "\"v1\""]), body: ["oops"]).text
                == "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n")
        // HEAD: the framing the GET would have, no body.
        let head = HTTP1ResponseWriter.Request(http10: false, head: true)
        #expect(written(response(.ok, [.contentLength: "5"]), answering: head, body: ["hello"]).text == "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
        #expect(written(response(.ok), answering: head, body: ["hello"]).text == "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
    }

    /// Each line goes into memory reserved for it: values longer than the buffer's room, multi-byte
    /// UTF-8 (obs-text passes as it came), small and large strings, a custom reason phrase.
    @Test func linesOfAnyLengthAndBytesAreWrittenExactly() {
        let long = String(repeating: "v", count: 70_000)
        let fields: HTTPFields = [.contentLength: "0", HTTPField.Name("X-Long")!: long, HTTPField.Name("X-Utf8")!: "caf\u{e9} \u{1F680}",
                                  HTTPField.Name("X")!: "", HTTPField.Name("X-Small")!: "a"]
        let text = written(HTTPResponse(status: .init(code: 299, reasonPhrase: "Very Custom"), headerFields: fields)).text
        #expect(text == "HTTP/1.1 299 Very Custom\r\nContent-Length: 0\r\nX-Long: \(long)\r\nX-Utf8: caf\u{e9} \u{1F680}\r\nX: \r\nX-Small: a\r\n\r\n")
    }

    @Test func interimResponsesAreHeadsOnly() {
        var writer = HTTP1ResponseWriter()
        var buffer = ByteBuffer()
        _ = writer.writeHead(response(.continue), answering: Self.http11, close: true, to: &buffer)
        #expect(String(buffer: buffer) == "HTTP/1.1 100 Continue\r\n\r\n", "no Connection: close on an interim response")
        #expect(writer.framing == .none)
    }

    @Test func closingSaysSoOnce() {
        #expect(written(response(.ok, [.contentLength: "0"]), close: true).text == "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        let said = written(response(.ok, [.contentLength: "0", .connection: "close"]))
        #expect(said.text == "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        #expect(said.closes)
    }

    @Test func refusalsAreWholeResponses() {
        var buffer = ByteBuffer()
        HTTP1ResponseWriter.writeComplete(status: .badRequest, fields: [("X-Request-ID", "r1")], body: ByteBuffer(string: "{}"), to: &buffer)
        #expect(String(buffer: buffer) == "HTTP/1.1 400 Bad Request\r\nX-Request-ID: r1\r\nContent-Length: 2\r\n\r\n{}")
    }

    @Test func chunkSizesAreHex() {
        for (value, hex) in [(1, "1"), (15, "f"), (16, "10"), (255, "ff"), (4096, "1000"), (1_048_576, "100000")] {
            var buffer = ByteBuffer()
            HTTP1ResponseWriter.writeHex(value, to: &buffer)
            #expect(String(buffer: buffer) == hex)
        }
    }
}

/// The upstream request writer as a value: request line, the fields the header policy passes and adds,
/// `Host`, the gateway's framing, one `Cookie`.
@Suite struct HTTP1RequestWriterTests {
    static let added = "X-Forwarded-For: 10.1.1.1\r\nX-Real-IP: 10.1.1.1\r\nX-Forwarded-Proto: http\r\nX-Request-ID: r-1\r\nX-Gateway-Service: api-gateway\r\n"

    func head(_ method: HTTPRequest.Method, _ fields: HTTPFields, framing: HTTP1RequestWriter.Framing) -> String {
        var buffer = ByteBuffer()
        let upstream = HeaderPolicy.upstreamFields(fields, clientIP: "10.1.1.1", clientHost: nil, requestID: "r-1")
        HTTP1RequestWriter.writeHead(method: method, target: "/orders?id=1", authority: "10.0.0.5:8080", fields: upstream, framing: framing, to: &buffer)
        return String(buffer: buffer)
    }

    @Test func aRequestWithoutABody() {
        #expect(head(.get, [.accept: "*/*", .contentLength: "0"], framing: .none)
                == "GET /orders?id=1 HTTP/1.1\r\nAccept: */*\r\nContent-Length: 0\r\n\(Self.added)Host: 10.0.0.5:8080\r\n\r\n")
        #expect(HTTP1RequestWriter.framing(method: .get, body: nil) == .none)
        #expect(HTTP1RequestWriter.framing(method: .post, body: nil) == .length(0), "RFC 9110 §8.6: a POST says its length")
    }

    @Test func theFramingIsTheGatewaysAndCookiesAreOneLine() {
        let fields: HTTPFields = [.contentLength: "999", .transferEncoding: "chunked", .cookie: "a=1", .userAgent: "t", .cookie: "b=2"]
        #expect(head(.post, fields, framing: .length(5))
                == "POST /orders?id=1 HTTP/1.1\r\nUser-Agent: t\r\n\(Self.added)Cookie: a=1; b=2\r\nHost: 10.0.0.5:8080\r\nContent-Length: 5\r\n\r\n")
        #expect(head(.put, fields, framing: .chunked)
                == "PUT /orders?id=1 HTTP/1.1\r\nUser-Agent: t\r\n\(Self.added)Cookie: a=1; b=2\r\nHost: 10.0.0.5:8080\r\nTransfer-Encoding: chunked\r\n\r\n")
    }

    @Test func chunksAndTheLastChunk() {
        var buffer = ByteBuffer()
        HTTP1RequestWriter.writeChunk(ByteBuffer(string: "hello world, hi"), to: &buffer)
        HTTP1RequestWriter.writeChunk(ByteBuffer(), to: &buffer)
        HTTP1RequestWriter.writeLastChunk(to: &buffer)
        #expect(String(buffer: buffer) == "f\r\nhello world, hi\r\n0\r\n\r\n")
    }
}
