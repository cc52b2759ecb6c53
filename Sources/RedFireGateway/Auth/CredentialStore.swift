import Foundation

/// Where users, their roles, refresh-token families and API keys live: an embedded SQLite file
/// (`UserStore`, the default) or, in cluster mode, PostgreSQL (`PostgresCredentialStore`), shared by
/// every node. Both keep the same rules (`CredentialRules`) and the same revocation semantics; the
/// cluster one also records each change that live tokens depend on as a cluster event.
package protocol CredentialStore: Sendable {
    // Users
    @discardableResult
    func addUser(username: String, password: String, email: String?, roles: [String]) async throws -> User
    func user(named username: String) async throws -> User?
    func user(id: Int64) async throws -> User?
    func users() async throws -> [User]
    /// Disabling ends every access token of the user; enabling again revokes nothing.
    func setDisabled(_ username: String, _ disabled: Bool) async throws
    /// A new password ends every session of the user: its access tokens and its refresh families.
    func setPassword(_ username: String, _ password: String) async throws
    /// A role given or taken away ends the user's access tokens (they carry the old permissions).
    func grant(_ username: String, role: String) async throws
    func revoke(_ username: String, role: String) async throws
    /// The user when `password` is theirs and they are not disabled; nil otherwise, after the same
    /// bcrypt work for an unknown username.
    func authenticate(username: String, password: String) async throws -> User?
    /// Users whose access tokens were cut off after `since` (nil: every cutoff on record).
    func accessTokenCutoffs(since: Date?) async throws -> [(userID: String, cutoff: Date)]

    // Refresh tokens
    /// Starts a family for `userID`; returns the first token and the family id.
    func issueRefreshToken(userID: Int64, ttl: Duration) async throws -> (token: String, family: String)
    /// Rotates `token` atomically: of two concurrent refreshes exactly one wins.
    func rotateRefreshToken(_ token: String, ttl: Duration) async throws -> RefreshRotation
    /// Revokes every token of a family (logout).
    func revokeFamily(_ family: String) async throws

    // API keys
    /// Creates a key; the returned string is the only time the key exists in clear.
    func createAPIKey(name: String, username: String?, serviceAccount: String?, permissions: [String], expiresAt: Date?) async throws
        -> (key: String, record: APIKey)
    func apiKeys() async throws -> [APIKey]
    func revokeAPIKey(_ id: String) async throws
    /// Every usable key (not revoked, not expired, user not disabled) with the roles of its user.
    func activeAPIKeys(now: Date) async throws -> [ActiveAPIKey]
}

extension CredentialStore {
    func activeAPIKeys() async throws -> [ActiveAPIKey] { try await activeAPIKeys(now: Date()) }
}

/// The outcome of presenting a refresh token.
package enum RefreshRotation: Sendable, Equatable {
    /// The token was current: it is rotated out and `token` replaces it.
    case rotated(userID: Int64, family: String, token: String)
    /// The token had already been rotated or revoked: the whole family is now revoked.
    case reused(family: String)
    /// Unknown, expired, or its user is disabled.
    case invalid
}

/// The store cannot be reached or did not answer in time: login, refresh and logout answer 503
/// `auth_unavailable` (never a token that is not stored); verifying access tokens goes on.
package struct CredentialStoreUnavailable: Error, CustomStringConvertible {
    package let reason: String

    package init(reason: String) {
        self.reason = reason
    }

    package var description: String { "the user store is unavailable: \(reason)" }
}
