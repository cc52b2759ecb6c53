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
}
