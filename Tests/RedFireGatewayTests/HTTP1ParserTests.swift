import HTTPTypes
import NIOCore
import NIOHTTP1
import Testing

@testable import RedFireGateway

/// llhttp driven by the gateway's own parser: what a delegate receives must not depend on how the bytes
/// were split into reads (a field cut in the middle is carried over), the bounds hold, and what follows
/// an upgrade is kept unparsed.
@Suite struct HTTP1ParserTests {
    /// Records what the parser hands over, as text.
    final class Recorder: HTTP1ParserDelegate {
        var events: [String] = []
        var body = ""
        var continuation: (HTTP1Parser.Head) -> HTTP1Parser.Continuation = { _ in .body }
        /// The events, one per line (compared as text: a failed comparison prints both).
        var log: String { events.joined(separator: "\n") }

        func parsedField(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
            events.append("field \(String(decoding: name, as: UTF8.self)): \(String(decoding: value, as: UTF8.self))")
        }

        func parsedHead(_ head: HTTP1Parser.Head) -> HTTP1Parser.Continuation {
            events.append("head \(head.method) \(head.target) \(head.status) 1.\(head.minorVersion) keepAlive=\(head.keepAlive) upgrade=\(head.upgrade)")
            return continuation(head)
        }

        func parsedBody(_ bytes: ByteBuffer) {
            body += String(buffer: bytes)
        }

        func parsedEnd() {
            events.append("end body=\(body)")
            body = ""
        }
    }

    func lines(_ events: String...) -> String { events.joined(separator: "\n") }

    static let limits = HTTP1Parser.Limits(fieldBytes: 1024, headBytes: 4096, fieldCount: 20)

    /// Feeds `text` in reads of `size` bytes.
    func parse(_ kind: HTTP1Parser.Kind, _ text: String, readsOf size: Int, recorder: Recorder = Recorder()) throws -> (Recorder, HTTP1Parser) {
        let parser = HTTP1Parser(kind: kind, limits: Self.limits)
        parser.delegate = recorder
        let bytes = Array(text.utf8)
        var start = 0
        while start < bytes.count {
            let end = size >= bytes.count - start ? bytes.count : start + size
            try parser.feed(ByteBuffer(bytes: bytes[start..<end]))
            start = end
        }
        return (recorder, parser)
    }

    static let requests = "POST /orders?x=1 HTTP/1.1\r\nHost: gw.example\r\nX-Long-Name-Of-A-Field: a value, with spaces\r\nEmpty:\r\n"
        + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nTrailer-One: t\r\n\r\n"
        + "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"

    @Test func whatIsReadDoesNotDependOnHowTheBytesWereSplit() throws {
        let (whole, _) = try parse(.request, Self.requests, readsOf: .max)
        #expect(whole.log == lines(
            "field Host: gw.example", "field X-Long-Name-Of-A-Field: a value, with spaces", "field Empty: ",
            "field Transfer-Encoding: chunked", "head POST /orders?x=1 0 1.1 keepAlive=true upgrade=false",
            "field Trailer-One: t", "end body=hello world",
            "field Connection: keep-alive", "head GET / 0 1.0 keepAlive=true upgrade=false", "end body="))
        for size in [1, 2, 3, 7, 16] {
            let (split, _) = try parse(.request, Self.requests, readsOf: size)
            #expect(split.log == whole.log, "reads of \(size) bytes")
        }
    }

    @Test func responsesToHeadAndBodilessStatusesCarryNoBody() throws {
        let text = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        let recorder = Recorder()
        var heads = 0
        recorder.continuation = { head in
            heads += 1
            return heads == 1 || head.status == 204 ? .noBody : .body
        }
        let (parsed, _) = try parse(.response, text, readsOf: 4, recorder: recorder)
        #expect(parsed.log == lines(
            "field Content-Length: 5", "head   200 1.1 keepAlive=true upgrade=false", "end body=",
            "field Content-Length: 7", "head   204 1.1 keepAlive=true upgrade=false", "end body=",
            "field Content-Length: 2", "head   200 1.1 keepAlive=true upgrade=false", "end body=ok"))
    }

    @Test func theBoundsRefuseWithHeaderOverflow() throws {
        let longValue = "GET / HTTP/1.1\r\nHost: h\r\nX: " + String(repeating: "v", count: 1025) + "\r\n\r\n"
        let manyFields = "GET / HTTP/1.1\r\n" + (0..<21).map { "F\($0): v\r\n" }.joined() + "\r\n"
        let longTarget = "GET /" + String(repeating: "p", count: 1024) + " HTTP/1.1\r\n\r\n"
        for text in [longValue, manyFields, longTarget] {
            for size in [Int.max, 5] {
                #expect(throws: HTTPParserError.headerOverflow) { try parse(.request, text, readsOf: size) }
            }
        }
        #expect(throws: HTTPParserError.invalidHeaderToken) { try parse(.request, "GET / HTTP/1.1\r\n: v\r\n\r\n", readsOf: .max) }
        #expect(throws: HTTPParserError.invalidVersion) { try parse(.request, "GET / HTTP/2.0\r\n\r\n", readsOf: .max) }
        // Smuggling classes stay llhttp's: both framings, and a bare LF.
        #expect(throws: HTTPParserError.self) {
            try parse(.request, "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", readsOf: .max)
        }
        #expect(throws: HTTPParserError.self) { try parse(.request, "GET / HTTP/1.1\nHost: h\n\n", readsOf: .max) }
    }

    @Test func aDelegatesStopEndsParsingWithoutAnError() throws {
        let recorder = Recorder()
        recorder.continuation = { _ in .stop }
        let (parsed, parser) = try parse(.request, "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n", readsOf: .max, recorder: recorder)
        #expect(parsed.log == lines("field Host: h", "head GET /a 0 1.1 keepAlive=true upgrade=false"))
        #expect(parser.stopped && parser.takeRemainder() == nil)
    }

    @Test func whatFollowsAnUpgradeIsKeptForTheNextProtocolOrParsedAfterARestart() throws {
        let text = "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nframes"
        let (parsed, parser) = try parse(.request, text, readsOf: 5)
        #expect(parsed.events.last == "end body=")
        #expect(parsed.events.contains("head GET /ws 0 1.1 keepAlive=true upgrade=true"))
        try parser.feed(ByteBuffer(string: "+more"))
        #expect(parser.upgraded && parser.takeRemainder().map { String(buffer: $0) } == "frames+more")

        // Answered as a plain request: what followed is HTTP/1 after all.
        let (again, restarted) = try parse(.request, text.replacingOccurrences(of: "frames", with: "GET /next HTTP/1.1\r\nHost: h\r\n\r\n"), readsOf: .max)
        try restarted.restart()
        #expect(again.events.suffix(3).joined(separator: "\n") == lines("field Host: h", "head GET /next 0 1.1 keepAlive=true upgrade=false", "end body="))
    }

    @Test func aBodyDelimitedByTheCloseEndsAtTheEndOfInput() throws {
        let (parsed, parser) = try parse(.response, "HTTP/1.0 200 OK\r\n\r\npartial body", readsOf: 6)
        #expect(!parsed.events.contains { $0.hasPrefix("end") })
        try parser.finish()
        #expect(parsed.events.last == "end body=partial body")

        let (_, cut) = try parse(.response, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", readsOf: .max)
        #expect(throws: HTTPParserError.self) { try cut.finish() }
    }
}

/// The names made once (`KnownFieldNames`) are the names the bytes would make, spelled as they came.
@Suite struct KnownFieldNamesTests {
    func lookUp(_ text: String) -> HTTPField.Name? {
        Array(text.utf8).withUnsafeBytes { KnownFieldNames.name($0) }
    }

    @Test func aKnownSpellingIsTheNameItsBytesMake() {
        for name in KnownFieldNames.names {
            let found = lookUp(name.rawName)
            #expect(found == HTTPField.Name(name.rawName), "\(name.rawName)")
            #expect(found?.rawName == name.rawName, "the spelling is kept: \(name.rawName)")
        }
    }

    @Test func anyOtherSpellingIsMadeAsItCame() {
        for other in ["HOST", "Content-type", "X-Custom", "", "Hos", "Hostt", String(repeating: "x", count: 40), "content-length "] {
            #expect(lookUp(other) == nil, "\(other)")
        }
    }
}
