import HTTPTypes
import Hummingbird
import NIOCore

/// A response as the gateway's request loop writes it. A body already in hand — an instance's response
/// that arrived whole, an error envelope — is written by the loop itself: Hummingbird's `ResponseBody`
/// is a `@concurrent` closure called through a `@concurrent` writer protocol, five executor hops per
/// response even for a single buffer. A body that streams (or comes from Hummingbird's router) keeps its
/// `ResponseBody`.
struct GatewayResponse: Sendable {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var body: Body

    enum Body: Sendable {
        /// The whole body.
        case buffer(ByteBuffer)
        /// A body written by its closure.
        case stream(ResponseBody)
    }

    /// A whole body; `Content-Length` is set from it unless the fields have one.
    init(status: HTTPResponse.Status, headers: HTTPFields, buffer: ByteBuffer) {
        self.status = status
        self.headers = headers
        self.body = .buffer(buffer)
        if !self.headers.contains(.contentLength) { self.headers[.contentLength] = String(buffer.readableBytes) }
    }

    /// A streamed body (its `Content-Length`, when known, is in the fields).
    init(status: HTTPResponse.Status, headers: HTTPFields, stream: ResponseBody) {
        self.status = status
        self.headers = headers
        self.body = .stream(stream)
    }

    /// The error envelope (`ErrorEnvelope`), written by the request loop itself.
    static func error(_ error: GatewayError, requestID: String, headers extra: HTTPFields = [:]) -> GatewayResponse {
        GatewayResponse(status: error.status, headers: ErrorEnvelope.fields(requestID: requestID, extra), buffer: ErrorEnvelope.body(error, requestID: requestID))
    }

    /// A Hummingbird response (the gateway's own endpoints and refusals).
    init(_ response: Response) {
        self.init(status: response.status, headers: response.headers, stream: response.body)
    }

    var head: HTTPResponse {
        HTTPResponse(status: status, headerFields: headers)
    }

    /// The body's length when known.
    var contentLength: Int? {
        switch body {
        case .buffer(let buffer): buffer.readableBytes
        case .stream(let body): body.contentLength
        }
    }
}
