import Crypto
import Foundation
import GRDB
import ServiceLifecycle
import Synchronization

/// API keys (`X-API-Key: rf_ID_SECRET`): 256 random bits, stored as SHA-256 hashes — a key this
/// strong needs no slow hash, and the lookup must be fast. Bound to a user or a service account,
/// revocable, optionally expiring.
extension UserStore {
    static func registerAPIKeyMigration(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v3: api keys") { db in
            try db.create(table: "api_keys") { table in
                table.column("id", .text).primaryKey()
                table.column("key_hash", .text).notNull()
                table.column("name", .text).notNull()
                table.column("user_id", .integer).references("users", onDelete: .cascade)
                table.column("service_account", .text)
                table.column("permissions", .text).notNull().defaults(to: "")
                table.column("created_at", .datetime).notNull()
                table.column("expires_at", .datetime)
                table.column("revoked_at", .datetime)
            }
        }
    }

    /// Creates a key; the returned string is the only time the key exists in clear.
    package func createAPIKey(name: String, username: String? = nil, serviceAccount: String? = nil, permissions: [String] = [],
                             expiresAt: Date? = nil) async throws -> (key: String, record: APIKey) {
        try CredentialRules.checkAPIKey(username: username, serviceAccount: serviceAccount, permissions: permissions)
        let (id, key) = CredentialRules.newAPIKey()
        let now = Date()
        try await database.write { db in
            var userID: Int64?
            if let username {
                guard let found = try Int64.fetchOne(db, sql: "SELECT id FROM users WHERE username = ?", arguments: [username]) else {
                    throw UserStoreError.noSuchUser(username)
                }
                userID = found
            }
            try db.execute(sql: """
                INSERT INTO api_keys (id, key_hash, name, user_id, service_account, permissions, created_at, expires_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [id, CredentialRules.tokenHash(key), name, userID, serviceAccount, permissions.joined(separator: " "), now, expiresAt])
        }
        return (key, APIKey(id: id, name: name, username: username, serviceAccount: serviceAccount, permissions: permissions.sorted(),
                            createdAt: now, expiresAt: expiresAt, revokedAt: nil))
    }

    package func apiKeys() async throws -> [APIKey] {
        try await database.read { db in
            try Row.fetchAll(db, sql: """
                SELECT k.id, k.name, u.username, k.service_account, k.permissions, k.created_at, k.expires_at, k.revoked_at
                FROM api_keys k LEFT JOIN users u ON u.id = k.user_id ORDER BY k.created_at, k.id
                """).map { row in
                APIKey(id: row["id"], name: row["name"], username: row["username"], serviceAccount: row["service_account"],
                       permissions: (row["permissions"] as String).split(separator: " ").map(String.init).sorted(),
                       createdAt: row["created_at"], expiresAt: row["expires_at"], revokedAt: row["revoked_at"])
            }
        }
    }

    package func revokeAPIKey(_ id: String) async throws {
        try await database.write { db in
            try db.execute(sql: "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?", arguments: [Date(), id])
            if db.changesCount == 0 { throw APIKeyError.noSuchKey(id) }
        }
    }

    /// Every usable key (not revoked, not expired, user not disabled) with the roles of its user.
    package func activeAPIKeys(now: Date) async throws -> [ActiveAPIKey] {
        try await database.read { db in
            try Row.fetchAll(db, sql: """
                SELECT k.id, k.key_hash, k.service_account, k.permissions, k.expires_at, u.id AS user_id, u.username,
                       (SELECT group_concat(role, ' ') FROM user_roles r WHERE r.user_id = u.id) AS roles
                FROM api_keys k LEFT JOIN users u ON u.id = k.user_id
                WHERE k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > ?)
                  AND (k.user_id IS NULL OR u.disabled = 0)
                """, arguments: [now]).map { row in
                let roles = (row["roles"] as String?)?.split(separator: " ").map(String.init).sorted() ?? []
                let userID: Int64? = row["user_id"]
                let serviceAccount: String? = row["service_account"]
                return ActiveAPIKey(id: row["id"], hash: row["key_hash"], expiresAt: row["expires_at"],
                                    userID: userID.map(String.init) ?? "service:\(serviceAccount ?? "")",
                                    name: row["username"] ?? serviceAccount ?? "", roles: roles,
                                    ownPermissions: userID == nil ? (row["permissions"] as String).split(separator: " ").map(String.init) : nil)
            }
        }
    }
}
