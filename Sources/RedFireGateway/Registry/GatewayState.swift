import Atomics
import HTTPTypes

/// One immutable picture of routes, services and their eligible instances. Requests load the current
/// state once (an atomic load, no lock) and use it to the end; changes build a new state and swap it in.
package final class GatewayState: AtomicReference, Sendable {
    /// Increases with every rebuild (config reload, health change, drain, registration).
    package let generation: Int
    package let config: GatewayConfig
    /// Routes ordered longest prefix first.
    package let routes: [RouteEntry]
    /// Every service's pool without any version filter, in file order.
    package let services: [ServicePool]
    /// The CORS fields, joined once per configuration; nil without `cors`.
    let cors: CORSPolicy?
    /// Client-supplied request fields removed before forwarding (`client_headers`).
    let clientHeaders: ClientHeaderFilter
    /// Some route leaves CORS to its service (`cors: service`).
    let hasServiceCORS: Bool
    /// Timeouts and names every new client connection is held to.
    let connectionSettings: ConnectionSettings

    init(generation: Int, config: GatewayConfig, routes: [RouteEntry], services: [ServicePool]) {
        self.generation = generation
        self.config = config
        self.routes = routes
        self.services = services
        self.cors = config.cors.isEnabled ? CORSPolicy(config.cors) : nil
        self.hasServiceCORS = config.routes.contains { $0.corsByService }
        self.clientHeaders = config.clientHeaders == ClientHeadersConfig() ? .standard : ClientHeaderFilter(config.clientHeaders)
        self.connectionSettings = ConnectionSettings(config: config)
    }

    package func service(named name: String) -> ServicePool? {
        services.first { $0.name == name }
    }

    /// The route serving `path` (no query), matching whole segments: `/api/v1/trading` serves
    /// `/api/v1/trading` and `/api/v1/trading/...`, never `/api/v1/tradingX`. Longest prefix wins.
    func route(for path: Substring) -> RouteEntry? {
        let utf8 = path.utf8
        for route in routes {
            let prefix = route.prefixUTF8
            if prefix.count == 1 { return route }  // "/" serves everything
            guard utf8.count >= prefix.count else { continue }
            var index = utf8.startIndex
            var matched = true
            for byte in prefix {
                if utf8[index] != byte { matched = false; break }
                index = utf8.index(after: index)
            }
            if matched && (index == utf8.endIndex || utf8[index] == UInt8(ascii: "/")) { return route }
        }
        return nil
    }

    /// True when at least one route has a verified-healthy instance (what `/ready` reports).
    package var isReady: Bool {
        routes.contains { route in route.pool.eligible.contains { $0.runtime.health == .healthy || !route.pool.service.healthCheck.enabled } }
    }
}
