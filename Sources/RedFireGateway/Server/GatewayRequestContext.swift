import Synchronization
import Hummingbird
import NIOCore

/// Per-request context: Hummingbird's core storage plus the TCP peer's address.
package struct GatewayRequestContext: RequestContext {
    package var coreContext: CoreRequestContextStorage
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

    package init(source: ApplicationRequestContextSource) {
        let remoteAddress = source.channel.remoteAddress
        self.init(source: source, remoteAddress: remoteAddress, clientIP: remoteAddress?.ipAddress)
    }

    /// With the peer's address already known (the connection's request loop reads it once).
    init(source: ApplicationRequestContextSource, remoteAddress: SocketAddress?, clientIP: String?, hangup: ClientHangup? = nil) {
        self.coreContext = .init(source: source)
        self.remoteAddress = remoteAddress
        self.clientIP = clientIP
        self.hangup = hangup
    }
}
