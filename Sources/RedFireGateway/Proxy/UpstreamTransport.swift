import HTTPTypes
import NIOHTTP1
import NIOCore

/// A request ready to go to one instance.
struct UpstreamRequest: Sendable {
    var method: HTTPRequest.Method
    /// The instance's address.
    var upstream: UpstreamURL
    /// `host:port` of the instance, for `Host`.
    var authority: String
    /// `/path?query` as the instance receives it.
    var target: String
    var headers: UpstreamFields
    var body: UpstreamRequestBody?
    /// Response bytes held for a slow client before the instance's connection stops being read
    /// (`limits.connection_buffer`).
    var bufferLimit = 64 * 1024
    /// How to speak TLS to an `https://` instance (the service's `tls`, or the defaults); nil for `http://`.
    var tls: UpstreamTLSConfig?
    /// A WebSocket upgrade: sent on a connection of its own, and a `101` answer hands that connection
    /// over (`UpstreamBody.switched`) instead of failing.
    var upgrade = false
    /// The attempt's W3C `traceparent` when tracing is on, written after the other fields (the header
    /// policy left the client's out): no field list is copied or searched to set it.
    var traceparent: String?
    /// Set when the exchange may be abandoned by whoever waits for it (`ExchangeAbandonment`): the
    /// request's client, when it hangs up; a health check's task, when it is cancelled.
    var abandonment: ExchangeAbandonment?

    /// `scheme://host:port/path?query`.
    var url: String { upstream.description + target }
}

/// The client's body, streamed through. `length` is the declared `Content-Length`, if any.
struct UpstreamRequestBody: Sendable {
    var stream: TrackedRequestBody
    var length: Int?
}

/// An instance's response; `body` streams and must be consumed or dropped (dropping aborts it).
/// `headers` are as the instance's connection read them: the header policy filters them once.
struct UpstreamResponse: Sendable {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    /// Set when `headers` are already without the fields that never reach a client (the NIO transport
    /// leaves them out while reading the head): what the header policy needs to know of the rest.
    var sifted: HeaderPolicy.SiftedResponseHead? = nil
    var body: UpstreamBody
    /// Whether the exchange went over a kept-alive connection or a new one (the NIO transport's; the
    /// AsyncHTTPClient transport does not say). A trace's client span records it.
    var connection: ConnectionUse = .unknown

    enum ConnectionUse: String, Sendable {
        case pooled
        case new
        case unknown
    }
}

enum UpstreamBody: Sendable {
    /// The whole body arrived with the head (typical of small responses); the exchange is over.
    case complete(ByteBuffer)
    /// The body streams; consume or drop it (dropping aborts the exchange).
    case stream(any AsyncSequence<ByteBuffer, any Error> & Sendable)
    /// The instance switched protocols (101) on an upgrade request: its connection, to take over.
    case switched(SwitchedUpstream)
}

/// The upstream side of the gateway, kept behind one small protocol so that the HTTP client can be
/// replaced (e.g. by a NIO-native forwarder) without touching routing, balancing or telemetry.
protocol UpstreamTransport: Sendable {
    /// Sends `request` with the service's timeouts; throws `UpstreamFailure` on failure.
    nonisolated(nonsending) func execute(_ request: UpstreamRequest, timeouts: TimeoutConfig) async throws(UpstreamFailure) -> UpstreamResponse
    /// Sends an upgrade request (`request.upgrade`) on a new connection of the gateway's own NIO
    /// transport, on the calling task's event loop (the client connection's: the stream's two connections
    /// share it).
    nonisolated(nonsending) func upgrade(_ request: UpstreamRequest, timeouts: TimeoutConfig) async throws(UpstreamFailure) -> UpstreamResponse
    func shutdown() async
}
