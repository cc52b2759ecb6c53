import Foundation

/// Something that happened to the gateway worth showing an operator: health transitions, ejections,
/// drains, strategy changes, registrations, reloads.
public struct GatewayEvent: Sendable, Equatable {
    public enum Kind: String, Sendable, Codable {
        case health, ejection, drain, strategy, registration, lease, reload, operatorAction = "operator"
        /// A warning or error from the gateway's log (shown by the console while it owns the terminal).
        case log
    }

    public var at: Date
    public var kind: Kind
    public var service: String?
    public var instance: String?
    public var message: String

    public init(at: Date, kind: Kind, service: String? = nil, instance: String? = nil, message: String) {
        self.at = at
        self.kind = kind
        self.service = service
        self.instance = instance
        self.message = message
    }
}

/// Health transitions, ejections, drains, strategy changes, registrations, reloads.
public typealias EventLog = BoundedLog<GatewayEvent>
