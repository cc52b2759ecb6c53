import Foundation
import GRDB
import HummingbirdBcrypt
import NIOPosix

/// A user of the gateway: who may log in, and with which roles.
public struct User: Sendable, Equatable {
    public var id: Int64
    public var username: String
    public var email: String?
    public var disabled: Bool
    public var createdAt: Date
    public var roles: [String]
    /// Access tokens issued before this were revoked (disabled, new password, roles changed).
    var tokensValidAfter: Date?
}
