/// `routes[i].websocket` — the route accepts WebSocket upgrades (RFC 6455) and relays them to an
/// instance of its service. `websocket: true` takes every default; a mapping sets them. Without it a
/// route refuses an upgrade with 400 `websocket_not_allowed`.
public struct WebSocketRouteConfig: Sendable, Equatable {
    /// `max_message_size` — the largest message a client may send, in bytes (all fragments, as they
    /// cross the wire: compressed with permessage-deflate). Beyond it the client gets close 1009 and the
    /// instance 1001. Default 1 MiB.
    public var maxClientMessage = 1 << 20
    /// `max_upstream_message_size` — the same bound for messages from the instance. Default 16 MiB.
    public var maxUpstreamMessage = 16 << 20
    /// `idle_timeout` — no frame either way (pings count) for this long closes the stream with 1001.
    /// Default `5m`.
    public var idleTimeout: Duration = .seconds(300)
    /// `max_duration` — a stream older than this is closed with 1001. Default none.
    public var maxDuration: Duration?
    /// `token_grace` — how long a stream may outlive the expiry of the access token that opened it
    /// before it is closed with 1008. Default `0s`.
    public var tokenGrace: Duration = .zero
    /// `origins` — browser origins allowed to open a stream (cross-site WebSocket hijacking). Default:
    /// `cors.allowed_origins`, and the request's own host; a request without `Origin` (not a browser)
    /// is not checked.
    public var origins: [String]?

    public init() {}

    /// How long both sides get to answer the gateway's close frame before their connections are cut.
    static let closeTimeout: Duration = .seconds(5)
}
