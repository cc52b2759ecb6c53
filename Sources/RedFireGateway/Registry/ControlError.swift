/// Why a control action was refused. `code` is stable (used by the admin API's error envelope).
public enum ControlError: Error, Sendable, Equatable, CustomStringConvertible {
    case serviceNotFound(String)
    case instanceNotFound(service: String, id: String)
    case conflict(String)
    case invalid(String)

    public var code: String {
        switch self {
        case .serviceNotFound: return "service_not_found"
        case .instanceNotFound: return "instance_not_found"
        case .conflict: return "conflict"
        case .invalid: return "invalid_request"
        }
    }

    public var description: String {
        switch self {
        case .serviceNotFound(let name): return "no service named \(name)"
        case .instanceNotFound(let service, let id): return "service \(service) has no instance \(id)"
        case .conflict(let message), .invalid(let message): return message
        }
    }
}
