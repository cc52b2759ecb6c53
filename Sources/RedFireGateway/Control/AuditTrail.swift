import Foundation

/// One operator action: who did what to which target, when, and how it ended.
public struct AuditEntry: Sendable, Equatable {
    public var at: Date
    /// Who acted: `console`, `admin-api:USER`, `api` for Swift callers.
    public var actor: String
    public var action: String
    public var target: String
    /// `ok`, or the refusal's error code.
    public var result: String
}

/// Every `GatewayControl` call: who, what, when, result.
public typealias AuditTrail = BoundedLog<AuditEntry>
