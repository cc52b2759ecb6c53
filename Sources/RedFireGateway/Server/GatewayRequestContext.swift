import Synchronization
import Hummingbird
import Logging
import NIOCore

/// Per-request context: Hummingbird's core storage plus the TCP peer's address.
package struct GatewayRequestContext: RequestContext {
    /// Hummingbird's core storage (logger, matched endpoint, path parameters), made for the gateway's own
    /// endpoints that are Hummingbird routers (`withRouterStorage`): making it allocates a lock and copies
    /// the logger, which a request forwarded to a service never uses.
    package var coreContext: CoreRequestContextStorage {
        get { core ?? CoreRequestContextStorage(source: ApplicationRequestContextSource(channel: channel, logger: sourceLogger)) }
        set { core = newValue }
    }
    private var core: CoreRequestContextStorage?
    private let channel: any Channel
    private let sourceLogger: Logger
    package let remoteAddress: SocketAddress?
    /// The TCP peer's address as text (`remoteAddress?.ipAddress`), formatted once per connection.
    package let clientIP: String?
    /// Set by the gateway before any handler runs.
    package internal(set) var requestID: String = ""
    /// Who is acting, for the audit trail (set by the admin API once the caller is authenticated).
    package internal(set) var actor: String = "admin-api"
    /// The client address as `trusted_proxies` resolve it (set by the gateway before its own endpoints run).
    package internal(set) var clientAddress: String?
    /// Set when the client closes its side of the connection while a request is in progress.
    let hangup: ClientHangup?
    /// How the request loop gives the request's upstream exchange up when the client hangs up.
    let abandonment: ExchangeAbandonment?
    /// TLS or plain, and what the listener adds (HSTS, the redirect to HTTPS).
    package let transport: ClientTransport
    /// `HTTP/1.1` or `HTTP/1.0`, for the access log.
    let httpVersion: String
    /// An HTTP/1.1 request asking to switch protocols (`Upgrade`): how the responder takes the connection
    /// over with its 101. Nil for every other request (HTTP/2 streams never switch).
    let upgrade: ConnectionUpgrade?

    package init(source: ApplicationRequestContextSource) {
        let remoteAddress = source.channel.remoteAddress
        self.init(source: source, remoteAddress: remoteAddress, clientIP: remoteAddress?.ipAddress)
    }

    /// With the peer's address already known (the connection's request loop reads it once).
    init(source: ApplicationRequestContextSource, remoteAddress: SocketAddress?, clientIP: String?, hangup: ClientHangup? = nil,
         abandonment: ExchangeAbandonment? = nil, transport: ClientTransport = .plain, httpVersion: String = "HTTP/1.1", upgrade: ConnectionUpgrade? = nil) {
        self.channel = source.channel
        self.sourceLogger = source.logger
        self.upgrade = upgrade
        self.transport = transport
        self.httpVersion = httpVersion
        self.remoteAddress = remoteAddress
        self.clientIP = clientIP
        self.hangup = hangup
        self.abandonment = abandonment
    }

    /// With Hummingbird's core storage made, for a router: what the router records in it (the matched
    /// endpoint) stays with the context.
    func withRouterStorage() -> GatewayRequestContext {
        var context = self
        if context.core == nil { context.core = coreContext }
        return context
    }
}
