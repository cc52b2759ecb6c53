import Foundation
import GRDB
import HummingbirdBcrypt
import NIOPosix

/// A user of the gateway: who may log in, and with which roles.
package struct User: Sendable, Equatable {
    package var id: Int64
    package var username: String
    package var email: String?
    package var disabled: Bool
    package var createdAt: Date
    package var roles: [String]
    /// Access tokens issued before this were revoked (disabled, new password, roles changed).
    var tokensValidAfter: Date?
}
