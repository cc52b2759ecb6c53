import Foundation
import Synchronization

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

/// Bounded in-memory audit trail, newest last. Every `GatewayControl` call writes one entry.
public final class AuditTrail: Sendable {
    private let entries = Mutex<[AuditEntry]>([])
    private let capacity: Int

    public init(capacity: Int = 10_000) {
        self.capacity = capacity
    }

    func append(_ entry: AuditEntry) {
        entries.withLock {
            $0.append(entry)
            if $0.count > capacity { $0.removeFirst($0.count - capacity) }
        }
    }

    public func recent(_ limit: Int = 100) -> [AuditEntry] {
        entries.withLock { Array($0.suffix(limit)) }
    }
}
