import HTTPTypes
import NIOCore

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
    func preflight(_ head: HTTPRequest, requestID: String) -> GatewayResponse? {
        guard head.method == .options, let origin = head.headerFields[Self.origin], head.headerFields[Self.requestMethod] != nil else { return nil }
        var fields: HTTPFields = [.requestID: requestID, .vary: "Origin"]
        if config.allows(origin) {
            fields[Self.allowOrigin] = origin
            fields[Self.allowMethods] = methods
            fields[Self.allowHeaders] = headers
            fields[Self.maxAgeField] = maxAge
            if config.allowCredentials { fields[Self.allowCredentials] = "true" }
        }
        return GatewayResponse(status: .noContent, headers: fields, buffer: ByteBuffer())
    }

    /// Adds `Vary: Origin` and, for an allowed origin, the allow/expose fields to an answer.
    func decorate(_ headers: inout HTTPFields, origin: String?) {
        headers[values: .vary].contains { $0.lowercased().contains("origin") } ? () : headers.append(HTTPField(name: .vary, value: "Origin"))
        guard let origin, config.allows(origin) else { return }
        headers[Self.allowOrigin] = origin
        headers[Self.exposeHeaders] = expose
        if config.allowCredentials { headers[Self.allowCredentials] = "true" }
    }
}
