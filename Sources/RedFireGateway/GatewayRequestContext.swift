import Hummingbird
import NIOCore

/// Per-request context: Hummingbird's core storage plus the TCP peer's address.
public struct GatewayRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    /// Set by the gateway before any handler runs.
    public internal(set) var requestID: String = ""
    /// Who is acting, for the audit trail (set by the admin API once the caller is authenticated).
    public internal(set) var actor: String = "admin-api"

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }
}
