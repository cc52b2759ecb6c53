import Foundation
import Synchronization

/// Something that happened to the gateway worth showing an operator: health transitions, ejections,
/// drains, strategy changes, registrations, reloads.
public struct GatewayEvent: Sendable, Equatable {
    public enum Kind: String, Sendable, Codable {
        case health, ejection, drain, strategy, registration, lease, reload, operatorAction = "operator"
    }

    public var at: Date
    public var kind: Kind
    public var service: String?
    public var instance: String?
    public var message: String
}

/// A bounded, newest-last log of events. Appends are rare (state changes, not requests).
public final class EventLog: Sendable {
    private let entries = Mutex<[GatewayEvent]>([])
    private let capacity: Int

    public init(capacity: Int = 1000) {
        self.capacity = capacity
    }

    func append(_ event: GatewayEvent) {
        entries.withLock {
            $0.append(event)
            if $0.count > capacity { $0.removeFirst($0.count - capacity) }
        }
    }

    public func recent(_ limit: Int = 100) -> [GatewayEvent] {
        entries.withLock { Array($0.suffix(limit)) }
    }
}
