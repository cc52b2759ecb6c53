import Foundation

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
