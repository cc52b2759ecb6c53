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
        }
    }
}
