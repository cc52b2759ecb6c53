import Crypto
import Foundation
import GRDB

/// Refresh tokens: opaque random strings, stored only as SHA-256 hashes, in families. A login starts a
/// family; each refresh rotates the presented token out and issues its successor in the same family.
/// Presenting a token that was already rotated (a copy in someone else's hands) revokes the family.
extension UserStore {
    static func registerRefreshMigration(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v2: refresh tokens") { db in
            try db.create(table: "refresh_tokens") { table in
                table.autoIncrementedPrimaryKey("id")
                table.column("token_hash", .text).notNull().unique()
                table.column("user_id", .integer).notNull().references("users", onDelete: .cascade)
                table.column("family", .text).notNull().indexed()
                table.column("created_at", .datetime).notNull()
                table.column("expires_at", .datetime).notNull()
                table.column("rotated_at", .datetime)
                table.column("revoked_at", .datetime)
            }
        }
    }

    /// Starts a family for `userID`; returns the first token and the family id.
    package func issueRefreshToken(userID: Int64, ttl: Duration) async throws -> (token: String, family: String) {
        let token = CredentialRules.randomToken()
        let family = UUID().uuidString
        let now = Date()
        try await database.write { db in
            try db.execute(sql: "INSERT INTO refresh_tokens (token_hash, user_id, family, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                           arguments: [CredentialRules.tokenHash(token), userID, family, now, now.addingTimeInterval(Double(ttl.components.seconds))])
        }
        return (token, family)
    }

    /// Rotates `token` in one write transaction, so of two concurrent refreshes exactly one wins.
    package func rotateRefreshToken(_ token: String, ttl: Duration) async throws -> RefreshRotation {
        let next = CredentialRules.randomToken()
        let now = Date()
        return try await database.write { db in
            guard let row = try Row.fetchOne(db, sql: """
                SELECT t.id, t.user_id, t.family, t.expires_at, t.rotated_at, t.revoked_at, u.disabled
                FROM refresh_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?
                """, arguments: [CredentialRules.tokenHash(token)]) else { return .invalid }
            let family: String = row["family"]
            let rotated: Date? = row["rotated_at"]
            let revoked: Date? = row["revoked_at"]
            if rotated != nil || revoked != nil {
                try db.execute(sql: "UPDATE refresh_tokens SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL", arguments: [now, family])
                return .reused(family: family)
            }
            let expires: Date = row["expires_at"]
            let disabled: Bool = row["disabled"]
            guard expires > now, !disabled else { return .invalid }
            let userID: Int64 = row["user_id"]
            try db.execute(sql: "UPDATE refresh_tokens SET rotated_at = ? WHERE id = ?", arguments: [now, row["id"] as Int64])
            try db.execute(sql: "INSERT INTO refresh_tokens (token_hash, user_id, family, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                           arguments: [CredentialRules.tokenHash(next), userID, family, now, now.addingTimeInterval(Double(ttl.components.seconds))])
            return .rotated(userID: userID, family: family, token: next)
        }
    }

    /// Revokes every token of a family (logout, reuse).
    package func revokeFamily(_ family: String) async throws {
        let now = Date()
        try await database.write { db in
            try db.execute(sql: "UPDATE refresh_tokens SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL", arguments: [now, family])
        }
    }

    package func user(id: Int64) async throws -> User? {
        try await database.read { db in try Self.fetchUsers(db, where: "WHERE u.id = ?", [id]).first }
    }
}
