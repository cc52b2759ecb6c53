import HTTPTypes
import Testing

@testable import RedFireGateway

@Suite("Header policy")
struct HeaderPolicyTests {
    /// The hop-by-hop test decides by length first: every listed name (in any case) is caught, and
    /// names of the same lengths are not.
    @Test func optionalWhitespaceIsTrimmedFromBothEndsOnly() {
        #expect(Substring(" \t chunked \t").trimmingASCIISpaces() == "chunked")
        #expect(Substring("a b").trimmingASCIISpaces() == "a b")
        #expect(Substring(" caf\u{E9} ").trimmingASCIISpaces() == "caf\u{E9}")
        #expect(Substring(" \t ").trimmingASCIISpaces().isEmpty)
        #expect(Authenticator.bearerToken([.authorization: "bearer \t abc.def "]) == "abc.def")
        #expect(Authenticator.bearerToken([.authorization: "Bearer   "]) == nil)
        // A singleton field sent twice is read joined, so it never passes as one of the two tokens.
        #expect(Authenticator.bearerToken([.authorization: "Bearer a.b.c", .accept: "*/*", .authorization: "Bearer d.e.f"]) == "a.b.c, Bearer d.e.f")
        #expect(Authenticator.bearerToken([.accept: "*/*"]) == nil)
    }

    @Test func hopByHopNamesAreRecognizedAndOthersOfTheSameLengthAreNot() throws {
        let hopByHop = ["TE", "Trailer", "Upgrade", "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding",
                        "Proxy-Authenticate", "Proxy-Authorization", "connection", "TRANSFER-ENCODING"]
        for raw in hopByHop {
            #expect(HeaderPolicy.isHopByHop(try #require(HTTPField.Name(raw))), "\(raw)")
        }
        let endToEnd = ["TX", "Trailers", "Upgrades", "Connectiom", "Keep-Alivx",
                        "Content-Language", "X-Forwarded-Host", "Content-Encoding", "WWW-Authenticate-X", "Content-Disposition",
                        "Authorization", "Accept", "Host", "X-Request-ID"]
        for raw in endToEnd {
            #expect(!HeaderPolicy.isHopByHop(try #require(HTTPField.Name(raw))), "\(raw)")
            #expect(!HeaderPolicy.isHopByHop(token: Substring(raw)), "\(raw)")
        }
        for raw in hopByHop { #expect(HeaderPolicy.isHopByHop(token: Substring(raw)), "\(raw)") }
    }

    /// RFC 9110 §7.6.1: the fields a `Connection` lists do not cross, in either direction — the usual
    /// options (`keep-alive`, `close`, hop-by-hop names) list nothing more; `close` takes a field named
    /// `Close` with it (a reserved name, §16.3.2.2); any other token takes its field.
    @Test func fieldsAConnectionListsDoNotCross() {
        let usual = HeaderPolicy.connectionListedBeyondHopByHop([.connection: " keep-alive ,Upgrade,, TE "])
        #expect(usual.isEmpty && usual.names.isEmpty)
        let closing = HeaderPolicy.connectionListedBeyondHopByHop([.connection: "close"])
        #expect(!closing.isEmpty && closing.names.isEmpty)
        let custom = HeaderPolicy.connectionListedBeyondHopByHop([.connection: "Close, X-Internal", .connection: "x-debug"])
        #expect(custom.names.map(\.canonicalName).joined(separator: " ") == "x-internal x-debug")

        var response: HTTPFields = [.connection: "close, X-Internal", .contentType: "text/plain"]
        response.append(HTTPField(name: HTTPField.Name("Close")!, value: "1"))
        response.append(HTTPField(name: HTTPField.Name("X-Internal")!, value: "secret"))
        response.append(HTTPField(name: HTTPField.Name("X-Kept")!, value: "yes"))
        let downstream = HeaderPolicy.downstreamHeaders(response, requestID: "r-1")
        #expect(downstream.map(\.name.canonicalName).joined(separator: " ") == "content-type x-kept x-request-id")
        var request: HTTPFields = [.connection: "keep-alive, X-Hop", .accept: "*/*"]
        request.append(HTTPField(name: HTTPField.Name("X-Hop")!, value: "1"))
        let upstream = HeaderPolicy.upstreamFields(request, clientIP: nil, clientHost: nil, requestID: "r-2").fields
        #expect(upstream[HTTPField.Name("X-Hop")!] == nil && upstream[.accept] == "*/*" && upstream[.connection] == nil)
    }

    /// A response head sifted while it is read (what never reaches a client left out, the rest noted)
    /// gives the client exactly the fields the whole head would: typical heads keep the instance's list,
    /// the others (a listed field, CORS, `Set-Cookie`, a field the gateway replaces) take the full filter.
    @Test func aHeadSiftedWhileReadGivesTheClientTheSameFields() throws {
        func name(_ raw: String) throws -> HTTPField.Name { try #require(HTTPField.Name(raw)) }
        let typical: [(String, String)] = [("Server", "nginx"), ("Date", "Mon, 30 Nov 2026 19:00:00 GMT"), ("Content-Type", "application/json"),
                                           ("Content-Length", "24"), ("Connection", "keep-alive"), ("X-Request-ID", "instance-own")]
        let heads: [[(String, String)]] = [
            typical,
            typical + [("Keep-Alive", "timeout=5"), ("Transfer-Encoding", "chunked"), ("Proxy-Authenticate", "Basic")],
            [("Close", "1"), ("Connection", "close"), ("Content-Type", "text/plain")],
            [("X-Internal", "secret"), ("Connection", "X-Internal, keep-alive"), ("X-Kept", "yes")],
            typical + [("Access-Control-Allow-Origin", "*"), ("Vary", "Origin")],
            typical + [("Set-Cookie", "a=1"), ("set-cookie", "b=2")],
            typical + [("RateLimit-Limit", "7")],
        ]
        let extras: [HTTPFields] = [[:], [try name("RateLimit-Limit"): "100", try name("RateLimit-Remaining"): "99"]]
        for head in heads {
            var whole = HTTPFields()
            var kept = HTTPFields()
            var sifted = HeaderPolicy.SiftedResponseHead()
            for (raw, value) in head {
                let field = HTTPField(name: try name(raw), value: value)
                whole.append(field)
                if sifted.keep(field.name, value: value) { kept.append(field) }
            }
            for extra in extras {
                for keepCORS in [false, true] {
                    let expected = HeaderPolicy.downstreamHeaders(whole, requestID: "r-1", extra: extra, keepCORS: keepCORS)
                    let actual = HeaderPolicy.downstreamHeaders(kept, sifted: sifted, requestID: "r-1", extra: extra, keepCORS: keepCORS)
                    let describe = { (fields: HTTPFields) in fields.map { "\($0.name.rawName): \($0.value) \($0.indexingStrategy)" }.joined(separator: " | ") }
                    #expect(describe(actual) == describe(expected), "\(head) \(extra) \(keepCORS)")
                }
            }
        }
        var sifted = HeaderPolicy.SiftedResponseHead()
        #expect(!sifted.keep(.server, value: "nginx") && !sifted.keep(.connection, value: "keep-alive") && sifted.keep(.contentType, value: "text/plain"))
        #expect(sifted.listed.isEmpty, "keep-alive lists nothing more")
    }
}
