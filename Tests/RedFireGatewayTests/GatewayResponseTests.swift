import HTTPTypes
import Hummingbird
import NIOCore
import Testing

@testable import RedFireGateway

/// The request loop's response value: a body in hand says its length, an error is the one envelope.
@Suite struct GatewayResponseTests {
    @Test("A whole body sets Content-Length, unless the fields already have one")
    func bufferSetsItsLength() {
        let body = ByteBuffer(string: #"{"ok":true}"#)
        let set = GatewayResponse(status: .ok, headers: [.contentType: "application/json"], buffer: body)
        #expect(set.headers[.contentLength] == "11")
        #expect(set.contentLength == 11)
        // An instance's own Content-Length (a HEAD's, say) is passed on as it is.
        let kept = GatewayResponse(status: .ok, headers: [.contentLength: "4096"], buffer: ByteBuffer())
        #expect(kept.headers[values: .contentLength].joined(separator: ",") == "4096")
        #expect(kept.contentLength == 0)
    }

    @Test("A streamed body adds no length of its own; a router's response keeps its fields")
    func streamsAndRouterResponses() {
        let streamed = GatewayResponse(status: .ok, headers: [:], stream: ResponseBody(asyncSequence: AsyncStream<ByteBuffer> { $0.finish() }))
        #expect(streamed.headers[.contentLength] == nil)
        #expect(streamed.contentLength == nil)
        let routed = GatewayResponse(Response(status: .created, headers: [.location: "/x"], body: .init(byteBuffer: ByteBuffer(string: "abc"))))
        #expect(routed.status == .created)
        #expect(routed.headers[.location] == "/x")
        #expect(routed.headers[.contentLength] == "3")
        #expect(routed.contentLength == 3)
    }

    @Test("The byte check in front of the gateway's own endpoints lets each of them through and turns routed paths away")
    func ownEndpointsPassTheByteCheck() {
        let own = ["/health", "/ready", "/metrics", "/gateway", "/gateway/docs", "/gateway/openapi.json", "/gateway/jwks.json",
                   "/gateway/services", AuthEndpoints.prefix + "login", AuthEndpoints.prefix + "refresh"]
        let refused = own.filter { !GatewayResponder.mayBeOwnEndpoint(Substring($0)) }
        #expect(refused.isEmpty, "\(refused)")
        for routed in ["/", "/x", "/api/v1/trading/orders", "/api/v1/authors", "/orders/health"] {
            #expect(!GatewayResponder.mayBeOwnEndpoint(Substring(routed)), "\(routed)")
        }
    }

    @Test("An error is the envelope with the request ID, its status and the caller's fields")
    func errorIsTheEnvelope() throws {
        let response = GatewayResponse.error(.rateLimited, requestID: "req-1", headers: [.retryAfter: "2"])
        #expect(response.status.code == 429)
        #expect(response.headers[.contentType] == "application/json")
        #expect(response.headers[.requestID] == "req-1")
        #expect(response.headers[.cacheControl] == "no-store")
        #expect(response.headers[.retryAfter] == "2")
        guard case .buffer(let body) = response.body else {
            Issue.record("an error envelope is a whole body")
            return
        }
        #expect(String(buffer: body) == String(buffer: ErrorEnvelope.body(.rateLimited, requestID: "req-1")))
        #expect(response.headers[.contentLength] == String(body.readableBytes))
    }
}
