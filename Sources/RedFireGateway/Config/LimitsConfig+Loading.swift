import Foundation
import HTTPTypes
import Yams

extension RequestLimitsConfig {
    /// `limits:`
    mutating func load(_ limits: ConfigObject) {
        if let value = limits.int("max_uri_length", in: 256...1_048_576) { self.maxURILength = value }
        if let value = limits.int("max_header_bytes", in: 1024...1_048_576) { self.maxHeaderBytes = value }
        if let value = limits.int("max_header_count", in: 8...10_000) { self.maxHeaderCount = value }
        if let value = limits.int("max_body_size", in: 0...Int(Int32.max)) { self.maxBodySize = value }
        if let value = limits.duration("header_timeout", atLeast: .milliseconds(100)) { self.headerTimeout = value }
        if let value = limits.duration("idle_timeout", atLeast: .milliseconds(100)) { self.idleTimeout = value }
        if let value = limits.duration("body_timeout", atLeast: .milliseconds(100)) { self.bodyTimeout = value }
        if let value = limits.int("connection_buffer", in: 4096...(64 << 20)) { self.connectionBuffer = value }
        if let value = limits.int("min_body_rate", in: 0...(1 << 30)) { self.minBodyRate = value }
        limits.finish()
    }
}

extension RateLimitConfig {
    /// `rate_limits:`
    mutating func load(_ limits: ConfigObject, reader: ConfigReader) {
        if let spec = limits.object("default") { self.defaultPolicy = RateLimitPolicy.decode(spec, name: "default", reader: reader) }
        if let roles = limits.object("roles") {
            for role in roles.keys {
                guard let spec = roles.object(role) else { continue }
                if let policy = RateLimitPolicy.decode(spec, name: role, reader: reader) { self.rolePolicies[role] = policy }
            }
            roles.finish()
        }
        if let style = limits.string("headers", oneOf: RateLimitConfig.HeaderStyle.allCases.map(\.rawValue)) {
            self.headers = RateLimitConfig.HeaderStyle(rawValue: style) ?? .ietf
        }
        if let interval = limits.duration("sync_interval", atLeast: .milliseconds(20)) { self.syncInterval = interval }
        if let timeout = limits.duration("store_timeout", atLeast: .milliseconds(10)) { self.storeTimeout = timeout }
        limits.finish()
    }
}

extension RateLimitPolicy {
    /// `{rate: 100/s, burst: 50}`; burst defaults to the per-second rate (at least 1).
    static func decode(_ spec: ConfigObject, name: String, reader: ConfigReader) -> RateLimitPolicy? {
        defer { spec.finish() }
        guard let text = spec.require(spec.string("rate"), "rate") else { return nil }
        guard let (count, period) = RateLimitPolicy.parseRate(text) else {
            reader.report(spec.childPath("rate"), spec.node("rate"), "expected COUNT/UNIT with unit s, m or h (e.g. 100/s, 6000/m), found \"\(text)\"")
            return nil
        }
        let burst = spec.int("burst", in: 1...1_000_000) ?? max(1, Int((Double(count) / period.secondsDouble).rounded(.up)))
        var policy = RateLimitPolicy(name: name, count: count, period: period, burst: burst)
        if let scope = spec.string("scope") {
            if let known = RateLimitScope(rawValue: scope) { policy.scope = known }
            else { reader.report(spec.childPath("scope"), spec.node("scope"), "expected one of node, split, sync, exact, found \"\(scope)\"") }
        }
        if let action = spec.string("when_store_unavailable", oneOf: RateLimitPolicy.StoreUnavailableAction.allCases.map(\.rawValue)) {
            policy.whenStoreUnavailable = RateLimitPolicy.StoreUnavailableAction(rawValue: action) ?? .refuse
            if policy.scope != .exact {
                reader.report(spec.childPath("when_store_unavailable"), spec.node("when_store_unavailable"), "applies to scope exact only")
            }
        }
        return policy
    }
}
