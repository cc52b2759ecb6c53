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

    /// Lower-case hex SHA-256 of a token (API keys are hashed on every request: no per-byte formatting).
    static func tokenHash(_ token: String) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        hex.reserveCapacity(64)
        for byte in SHA256.hash(data: Array(token.utf8)) {
            hex.append(digits[Int(byte >> 4)])
            hex.append(digits[Int(byte & 15)])
        }
        return String(decoding: hex, as: UTF8.self)
    }

    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Starts a family for `userID`; returns the first token and the family id.
    func issueRefreshToken(userID: Int64, ttl: Duration, family: String? = nil) async throws -> (token: String, family: String) {
        let token = Self.randomToken()
        let family = family ?? UUID().uuidString
        let now = Date()
        try await database.write { db in
            try db.execute(sql: "INSERT INTO refresh_tokens (token_hash, user_id, family, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                           arguments: [Self.tokenHash(token), userID, family, now, now.addingTimeInterval(Double(ttl.components.seconds))])
        }
        return (token, family)
    }

    enum Rotation: Sendable, Equatable {
        /// The token was current: it is rotated out and `token` replaces it.
        case rotated(userID: Int64, family: String, token: String)
        /// The token had already been rotated or revoked: the whole family is now revoked.
        case reused(family: String)
        /// Unknown, expired, or its user is disabled.
        case invalid
    }

    /// Rotates `token` in one write transaction, so of two concurrent refreshes exactly one wins.
    func rotateRefreshToken(_ token: String, ttl: Duration) async throws -> Rotation {
        let next = Self.randomToken()
        let now = Date()
        return try await database.write { db in
            guard let row = try Row.fetchOne(db, sql: """
                SELECT t.id, t.user_id, t.family, t.expires_at, t.rotated_at, t.revoked_at, u.disabled
                FROM refresh_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?
                """, arguments: [Self.tokenHash(token)]) else { return .invalid }
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
                           arguments: [Self.tokenHash(next), userID, family, now, now.addingTimeInterval(Double(ttl.components.seconds))])
            return .rotated(userID: userID, family: family, token: next)
        }
    }

    /// Revokes every token of a family (logout, reuse).
    func revokeFamily(_ family: String) async throws {
        let now = Date()
        try await database.write { db in
            try db.execute(sql: "UPDATE refresh_tokens SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL", arguments: [now, family])
        }
    }

    func user(id: Int64) async throws -> User? {
        try await database.read { db in try Self.fetchUsers(db, where: "WHERE u.id = ?", [id]).first }
    }
}
