import HTTPTypes
import Hummingbird

/// `cors` — which browser origins may call the API (Fetch standard, CORS protocol).
public struct CORSConfig: Sendable, Equatable {
    /// `allowed_origins` — exact origins (`https://app.redfire.example`), or patterns with one `*` for a
    /// single subdomain label (`https://*.redfire.example`). `null` only if listed.
    public var allowedOrigins: [String] = []
    public var allowedMethods: [String] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
    public var allowedHeaders: [String] = ["Authorization", "Content-Type", "X-API-Key", "X-Request-ID", "Idempotency-Key"]
    public var exposeHeaders: [String] = ["X-Request-ID", "Retry-After", "RateLimit", "RateLimit-Policy"]
    /// `allow_credentials` — let the browser send cookies / HTTP auth. Default false.
    public var allowCredentials = false
    /// `max_age` — how long a browser may cache a preflight answer. Default 10 minutes.
    public var maxAge: Duration = .seconds(600)

    public init() {}

    public var isEnabled: Bool { !allowedOrigins.isEmpty }

    /// Whether `origin` is allowed: an exact entry, or a `scheme://*.domain` pattern matching exactly
    /// one extra label (so `https://app.redfire.example.evil.com` never matches `https://*.redfire.example`).
    public func allows(_ origin: String) -> Bool {
        for entry in allowedOrigins {
            if entry == origin { return true }
            guard let star = entry.firstIndex(of: "*") else { continue }
            let prefix = entry[..<star], suffix = entry[entry.index(after: star)...]
            guard origin.count > prefix.count + suffix.count, origin.hasPrefix(prefix), origin.hasSuffix(suffix) else { continue }
            let label = origin.dropFirst(prefix.count).dropLast(suffix.count)
            if label.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }) { return true }
        }
        return false
    }
}

/// Adds CORS fields to every answer (the gateway's own errors included, so a browser app can read
/// them) and answers preflights itself, before routing and authentication.
struct CORSPolicy: Sendable {
    let config: CORSConfig
    let methods: String
    let headers: String
    let expose: String
    let maxAge: String

    init(_ config: CORSConfig) {
        self.config = config
        methods = config.allowedMethods.joined(separator: ", ")
        headers = config.allowedHeaders.joined(separator: ", ")
        expose = config.exposeHeaders.joined(separator: ", ")
        maxAge = String(config.maxAge.components.seconds)
    }

    static let requestMethod = HTTPField.Name("Access-Control-Request-Method")!
    static let allowOrigin = HTTPField.Name("Access-Control-Allow-Origin")!
    static let allowMethods = HTTPField.Name("Access-Control-Allow-Methods")!
    static let allowHeaders = HTTPField.Name("Access-Control-Allow-Headers")!
    static let allowCredentials = HTTPField.Name("Access-Control-Allow-Credentials")!
    static let exposeHeaders = HTTPField.Name("Access-Control-Expose-Headers")!
    static let maxAgeField = HTTPField.Name("Access-Control-Max-Age")!
    static let origin = HTTPField.Name("Origin")!

    /// A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`): answered here, 204,
    /// without reaching a service and without credentials. A disallowed origin gets no CORS fields.
    func preflight(_ head: HTTPRequest, requestID: String) -> Response? {
        guard head.method == .options, let origin = head.headerFields[Self.origin], head.headerFields[Self.requestMethod] != nil else { return nil }
        var fields: HTTPFields = [.requestID: requestID, .vary: "Origin"]
        if config.allows(origin) {
            fields[Self.allowOrigin] = origin
            fields[Self.allowMethods] = methods
            fields[Self.allowHeaders] = headers
            fields[Self.maxAgeField] = maxAge
            if config.allowCredentials { fields[Self.allowCredentials] = "true" }
        }
        return Response(status: .noContent, headers: fields)
    }

    /// Adds `Vary: Origin` and, for an allowed origin, the allow/expose fields to an answer.
    func decorate(_ response: inout Response, origin: String?) {
        response.headers[values: .vary].contains { $0.lowercased().contains("origin") } ? () : response.headers.append(HTTPField(name: .vary, value: "Origin"))
        guard let origin, config.allows(origin) else { return }
        response.headers[Self.allowOrigin] = origin
        response.headers[Self.exposeHeaders] = expose
        if config.allowCredentials { response.headers[Self.allowCredentials] = "true" }
    }
}
