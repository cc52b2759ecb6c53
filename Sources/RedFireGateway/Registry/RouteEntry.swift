import Atomics
import HTTPTypes

/// A route resolved against the current services.
package final class RouteEntry: Sendable {
    let config: RouteConfig
    let prefixUTF8: [UInt8]
    let allowedMethods: Set<HTTPRequest.Method>
    /// Value of the `Allow` header for 405 answers.
    let allowHeader: String
    let pool: ServicePool
    package let metrics: MetricSeries

    init(config: RouteConfig, pool: ServicePool, metrics: MetricSeries) {
        self.config = config
        self.metrics = metrics
        self.prefixUTF8 = Array(config.prefix.utf8)
        self.pool = pool
        if let methods = config.methods {
            var set = Set(methods.compactMap { HTTPRequest.Method($0) })
            // HEAD is served wherever GET is (RFC 9110 §9.3.2).
            if set.contains(.get) { set.insert(.head) }
            self.allowedMethods = set
            self.allowHeader = set.map(\.rawValue).sorted().joined(separator: ", ")
        } else {
            self.allowedMethods = Self.standardMethods
            self.allowHeader = Self.standardAllowHeader
        }
    }

    /// What a route without `methods` accepts: the methods of RFC 9110 and PATCH (RFC 5789), but not
    /// `TRACE` (it echoes the request, credentials included — cross-site tracing) nor `CONNECT`, nor
    /// extension methods; a route lists them in `methods` to accept them.
    static let standardMethods: Set<HTTPRequest.Method> = [.get, .head, .post, .put, .patch, .delete, .options]
    static let standardAllowHeader = standardMethods.map(\.rawValue).sorted().joined(separator: ", ")

    package var name: String { config.name }
    var rateLimit: RateLimitPolicy? { config.rateLimit }
}
