import HTTPTypes
import Hummingbird
import NIOCore

/// The one JSON error body: `{"error":{"code":"...","message":"...","request_id":"...","details":…}}`
/// (`details` only where an error has more to say), built by
/// hand (no JSONEncoder per request); request IDs are validated to JSON-safe characters before use.
enum ErrorEnvelope {
    static let contentType = "application/json"

    /// - Parameter details: a JSON value placed inside `error` as `"details"` (e.g. a refused reload's problems).
    static func response(_ error: GatewayError, requestID: String, headers extra: HTTPFields = [:], details: ByteBuffer? = nil) -> Response {
        Response(status: error.status, headers: fields(requestID: requestID, extra), body: .init(byteBuffer: body(error, requestID: requestID, details: details)))
    }

    /// An envelope's fields: `extra` and the envelope's own.
    static func fields(requestID: String, _ extra: HTTPFields) -> HTTPFields {
        var headers = extra
        headers[.contentType] = contentType
        headers[.requestID] = requestID
        headers[.cacheControl] = "no-store"
        return headers
    }

    /// The envelope's bytes (the connection layer writes them without a `Response`).
    static func body(_ error: GatewayError, requestID: String, details: ByteBuffer? = nil) -> ByteBuffer {
        var body = ByteBuffer()
        body.reserveCapacity(80 + error.code.utf8.count + error.message.utf8.count + requestID.utf8.count)
        body.writeStaticString("{\"error\":{\"code\":\"")
        body.writeString(error.code)
        body.writeStaticString("\",\"message\":")
        JSONString.write(error.message, to: &body)
        body.writeStaticString(",\"request_id\":")
        JSONString.write(requestID, to: &body)
        if var details {
            body.writeStaticString(",\"details\":")
            body.writeBuffer(&details)
        }
        body.writeStaticString("}}")
        return body
    }

}
