import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// What one client connection is held to, read from the running configuration when it opens. One
/// shared reference per configuration: connections hold it, not a copy each.
final class ConnectionSettings: Sendable {
    let headerTimeout: TimeAmount
    let idleTimeout: TimeAmount
    let bodyTimeout: TimeAmount
    /// Lower-case host names accepted in an absolute-form request target.
    let serverNames: Set<String>
    /// Bytes the HTTP/1 parser accepts for the request line and header section before it gives up
    /// (answered 431); the configured limits are checked again, exactly, by the responder.
    let parserHeaderBytes: Int
    let parserHeaderCount: Int
    /// `limits.max_uri_length`: a request line longer than this that overflows the parser is a 414.
    let maxURILength: Int
    /// `limits.min_body_rate`: bytes per second a request body must average once it has been sent for
    /// `bodyRateGrace` (time the gateway holds reads off does not count); 0 turns it off.
    let minBodyRate: Int
    static let bodyRateGrace: TimeAmount = .seconds(10)
    /// `limits.connection_buffer`: the client's write buffer bound and the request body held for a slow instance.
    let bufferBytes: Int
    /// `shutdown_grace`: how long an HTTP/2 connection's open streams may run after its GOAWAY.
    let shutdownGrace: TimeAmount

    init(config: GatewayConfig) {
        shutdownGrace = .nanoseconds(config.shutdownGrace.nanosecondsClamped)
        bufferBytes = config.limits.connectionBuffer
        maxURILength = config.limits.maxURILength
        minBodyRate = config.limits.minBodyRate
        headerTimeout = .nanoseconds(config.limits.headerTimeout.nanosecondsClamped)
        idleTimeout = .nanoseconds(config.limits.idleTimeout.nanosecondsClamped)
        bodyTimeout = .nanoseconds(config.limits.bodyTimeout.nanosecondsClamped)
        var names = Set(config.serverNames)
        if config.serverNames.isEmpty {
            names = ["localhost", "127.0.0.1", "[::1]"]
            let host = config.listen.host.lowercased()
            if host != "0.0.0.0", host != "::", host != "[::]" { names.insert(host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host) }
        }
        serverNames = names
        parserHeaderBytes = max(80 * 1024, config.limits.maxHeaderBytes + config.limits.maxURILength + 1024)
        parserHeaderCount = max(1000, config.limits.maxHeaderCount * 2)
    }
}
