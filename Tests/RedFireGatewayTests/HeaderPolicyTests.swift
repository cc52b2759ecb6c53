import HTTPTypes
import Testing

@testable import RedFireGateway

@Suite("Header policy")
struct HeaderPolicyTests {
    /// The hop-by-hop test decides by length first: every listed name (in any case) is caught, and
    /// names of the same lengths are not.
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
