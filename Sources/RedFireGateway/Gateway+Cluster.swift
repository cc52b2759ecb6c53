import Foundation

extension Gateway {
    /// Hands a cluster change that live credentials depend on to the auth service (operator decisions
    /// go to `GatewayControl.apply`). Each is idempotent: a node applies its own changes again when
    /// they come back from the log, and every change of a snapshot on reconnect.
    static func apply(_ change: ClusterChange, to auth: AuthService) {
        switch change {
        case .sessionRevoked(let session):
            auth.revokeSession(session)
        case .accessCutoff(let userID, let atMillis):
            auth.applyCutoff(userID: userID, at: Date(timeIntervalSince1970: Double(atMillis) / 1000))
        case .apiKeysChanged:
            auth.apiKeys.reloadSoon()
        case .drain, .strategy, .registered, .deregistered, .registrationSet:
            break
        }
    }
}
