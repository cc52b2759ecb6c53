import Crypto
import Foundation
import GRDB
import ServiceLifecycle
import Synchronization

/// An API key as stored: never the key itself, only its SHA-256 hash and its public id.
public struct APIKey: Sendable, Equatable {
    /// The public part of the key (`rf_ID_SECRET`), used to find it and shown in listings.
    public var id: String
    public var name: String
    /// Bound to a user: the key acts as the user, with the user's current roles.
    public var username: String?
    /// Or a named service account, with its own permissions.
    public var serviceAccount: String?
    public var permissions: [String]
    public var createdAt: Date
    public var expiresAt: Date?
    public var revokedAt: Date?

    public var owner: String { username.map { "user:\($0)" } ?? "service:\(serviceAccount ?? "?")" }
}

public enum APIKeyError: Error, Sendable, Equatable, CustomStringConvertible {
    case noSuchKey(String)
    case invalid(String)

    public var description: String {
        switch self {
        case .noSuchKey(let id): return "no API key with id \(id)"
        case .invalid(let reason): return reason
        }
    }
}
