import HTTPTypes
import Hummingbird
import NIOCore

/// A request as the gateway's request loop hands it to the responder: its head, and its body as it
/// arrives (nil when the request declares none).
///
/// Not Hummingbird's `Request`: that one parses its target into a `URI` when it is made and wraps the
/// body in a type-erased sequence (an allocation and a closure per request), and its layout is only
/// known at run time (its body holds a standard-library stream whose layout is not frozen), so every
/// copy goes through runtime metadata and every async function holding one allocates room for it from
/// the task. The gateway's own endpoints that are Hummingbird routers get one made when they are reached
/// (`hummingbird`).
struct GatewayRequest: Sendable {
    var head: HTTPRequest
    let body: RequestBodyStream?

    /// Hummingbird's `Request` of the same head and body, for the admin and auth routers.
    var hummingbird: Request {
        Request(head: head, body: body.map { RequestBody(asyncSequence: $0) } ?? RequestBody(buffer: ByteBuffer()))
    }
}
