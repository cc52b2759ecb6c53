import Crypto
import Foundation
import GRDB
import ServiceLifecycle
import Synchronization

/// An API key as stored: never the key itself, only its SHA-256 hash and its package id.
package struct APIKey: Sendable, Equatable {
    /// The package part of the key (`rf_ID_SECRET`), used to find it and shown in listings.
    package var id: String
    package var name: String
    /// Bound to a user: the key acts as the user, with the user's current roles.
    package var username: String?
    /// Or a named service account, with its own permissions.
    package var serviceAccount: String?
    package var permissions: [String]
    package var createdAt: Date
    package var expiresAt: Date?
    package var revokedAt: Date?

    package var owner: String { username.map { "user:\($0)" } ?? "service:\(serviceAccount ?? "?")" }
}

package enum APIKeyError: Error, Sendable, Equatable, CustomStringConvertible {
    case noSuchKey(String)
    case invalid(String)

    package var description: String {
        switch self {
        case .noSuchKey(let id): return "no API key with id \(id)"
        case .invalid(let reason): return reason
        }
    }
}
