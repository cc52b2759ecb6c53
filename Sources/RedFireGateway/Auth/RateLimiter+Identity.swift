extension RateLimiter {
    /// The limiter key of a request: never a secret (API keys by their public id).
    static func key(identity: Identity?, clientIP: String?) -> String {
        if let identity {
            if identity.tokenID.hasPrefix("key:") { return "api-key:" + identity.tokenID.dropFirst(4) }
            return "user:" + identity.userID
        }
        return "ip:" + (clientIP ?? "unknown")
    }
}
