import HTTPTypes

/// The field names the gateway reads or writes beyond those HTTP types defines.
extension HTTPField.Name {
    static let requestID = Self("X-Request-ID")!
    static let forwardedFor = Self("X-Forwarded-For")!
    static let forwardedProto = Self("X-Forwarded-Proto")!
    static let forwardedHost = Self("X-Forwarded-Host")!
    static let realIP = Self("X-Real-IP")!
    static let gatewayService = Self("X-Gateway-Service")!
    static let idempotencyKey = Self("Idempotency-Key")!
    static let keepAlive = Self("Keep-Alive")!
    static let proxyConnection = Self("Proxy-Connection")!
    static let upgradeField = Self("Upgrade")!
    static let trailer = Self("Trailer")!
    static let te = Self("TE")!
    static let apiKey = Self("X-API-Key")!
    static let userID = Self("X-User-Id")!
    static let userName = Self("X-User-Name")!
    static let userRoles = Self("X-User-Roles")!
    static let gatewayToken = Self("X-Gateway-Token")!
    // Rate limits (draft-ietf-httpapi-ratelimit-headers, and the older trio).
    static let rateLimitPolicy = Self("RateLimit-Policy")!
    static let rateLimit = Self("RateLimit")!
    static let xRateLimitLimit = Self("X-RateLimit-Limit")!
    static let xRateLimitRemaining = Self("X-RateLimit-Remaining")!
    static let xRateLimitReset = Self("X-RateLimit-Reset")!
}
