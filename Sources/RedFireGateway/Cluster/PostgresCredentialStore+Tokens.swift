import Foundation
import PostgresNIO

/// Refresh-token families and API keys in the cluster store. Rotation locks the presented token's row
/// (`FOR UPDATE`): of two nodes refreshing the same token at once, one rotates it and the other then
/// sees it rotated — a reuse, which revokes the family everywhere.
extension PostgresCredentialStore {
    package func issueRefreshToken(userID: Int64, ttl: Duration) async throws -> (token: String, family: String) {
        let token = CredentialRules.randomToken()
        let family = UUID().uuidString
        let hash = CredentialRules.tokenHash(token)
        let seconds = Double(ttl.components.seconds)
        try await transaction { [logger] connection in
            try await connection.query("""
                INSERT INTO redfire.refresh_tokens (token_hash, user_id, family, expires_at)
                VALUES (\(hash), \(userID), \(family), now() + \(seconds)::float8 * interval '1 second')
                """, logger: logger)
        }
        return (token, family)
    }

    package func rotateRefreshToken(_ token: String, ttl: Duration) async throws -> RefreshRotation {
        let next = CredentialRules.randomToken()
        let hash = CredentialRules.tokenHash(token), nextHash = CredentialRules.tokenHash(next)
        let seconds = Double(ttl.components.seconds)
        return try await transaction { [self] connection in
            let rows = try await connection.query("""
                SELECT t.id, t.user_id, t.family, t.expires_at > now(), t.rotated_at IS NOT NULL OR t.revoked_at IS NOT NULL, u.disabled
                FROM redfire.refresh_tokens t JOIN redfire.users u ON u.id = t.user_id WHERE t.token_hash = \(hash)
                FOR UPDATE OF t
                """, logger: logger)
            guard let (id, userID, family, live, used, disabled) = try await Self.one(rows.decode((Int64, Int64, String, Bool, Bool, Bool).self)) else {
                return .invalid
            }
            if used {
                try await connection.query("""
                    UPDATE redfire.refresh_tokens SET revoked_at = now() WHERE family = \(family) AND revoked_at IS NULL
                    """, logger: logger)
                try await cluster.appendEvent(.sessionRevoked(session: family), actor: actor, on: connection)
                return .reused(family: family)
            }
            guard live, !disabled else { return .invalid }
            try await connection.query("UPDATE redfire.refresh_tokens SET rotated_at = now() WHERE id = \(id)", logger: logger)
            try await connection.query("""
                INSERT INTO redfire.refresh_tokens (token_hash, user_id, family, expires_at)
                VALUES (\(nextHash), \(userID), \(family), now() + \(seconds)::float8 * interval '1 second')
                """, logger: logger)
            return .rotated(userID: userID, family: family, token: next)
        }
    }

    package func revokeFamily(_ family: String) async throws {
        try await transaction { [self] connection in
            try await connection.query("""
                UPDATE redfire.refresh_tokens SET revoked_at = now() WHERE family = \(family) AND revoked_at IS NULL
                """, logger: logger)
            try await cluster.appendEvent(.sessionRevoked(session: family), actor: actor, on: connection)
        }
    }

    // MARK: API keys

    package func createAPIKey(name: String, username: String? = nil, serviceAccount: String? = nil, permissions: [String] = [],
                              expiresAt: Date? = nil) async throws -> (key: String, record: APIKey) {
        try CredentialRules.checkAPIKey(username: username, serviceAccount: serviceAccount, permissions: permissions)
        let (id, key) = CredentialRules.newAPIKey()
        let hash = CredentialRules.tokenHash(key)
        let permissionList = permissions.joined(separator: " ")
        let createdAt = try await transaction { [self] connection -> Date in
            var userID: Int64?
            if let username {
                guard let found = try await Self.one(connection.query(
                    "SELECT id FROM redfire.users WHERE lower(username) = lower(\(username))", logger: logger).decode(Int64.self)) else {
                    throw UserStoreError.noSuchUser(username)
                }
                userID = found
            }
            let rows = try await connection.query("""
                INSERT INTO redfire.api_keys (id, key_hash, name, user_id, service_account, permissions, expires_at)
                VALUES (\(id), \(hash), \(name), \(userID), \(serviceAccount), \(permissionList), \(expiresAt)) RETURNING created_at
                """, logger: logger)
            let createdAt = try await Self.one(rows.decode(Date.self)) ?? Date()
            try await cluster.appendEvent(.apiKeysChanged, actor: actor, on: connection)
            return createdAt
        }
        return (key, APIKey(id: id, name: name, username: username, serviceAccount: serviceAccount, permissions: permissions.sorted(),
                            createdAt: createdAt, expiresAt: expiresAt, revokedAt: nil))
    }

    package func apiKeys() async throws -> [APIKey] {
        try await read { [logger] connection in
            var keys: [APIKey] = []
            let rows = try await connection.query("""
                SELECT k.id, k.name, u.username, k.service_account, k.permissions, k.created_at, k.expires_at, k.revoked_at
                FROM redfire.api_keys k LEFT JOIN redfire.users u ON u.id = k.user_id ORDER BY k.created_at, k.id
                """, logger: logger)
            for try await (id, name, username, account, permissions, created, expires, revoked)
                in rows.decode((String, String, String?, String?, String, Date, Date?, Date?).self) {
                keys.append(APIKey(id: id, name: name, username: username, serviceAccount: account,
                                   permissions: permissions.split(separator: " ").map(String.init).sorted(),
                                   createdAt: created, expiresAt: expires, revokedAt: revoked))
            }
            return keys
        }
    }

    package func revokeAPIKey(_ id: String) async throws {
        try await transaction { [self] connection in
            let rows = try await connection.query("""
                UPDATE redfire.api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = \(id) RETURNING 1
                """, logger: logger)
            guard try await Self.one(rows.decode(Int.self)) != nil else { throw APIKeyError.noSuchKey(id) }
            try await cluster.appendEvent(.apiKeysChanged, actor: actor, on: connection)
        }
    }

    package func activeAPIKeys(now: Date) async throws -> [ActiveAPIKey] {
        try await read { [logger] connection in
            var keys: [ActiveAPIKey] = []
            let rows = try await connection.query("""
                SELECT k.id, k.key_hash, k.service_account, k.permissions, k.expires_at, u.id, u.username,
                  coalesce((SELECT string_agg(role, ' ' ORDER BY role) FROM redfire.user_roles r WHERE r.user_id = u.id), '')
                FROM redfire.api_keys k LEFT JOIN redfire.users u ON u.id = k.user_id
                WHERE k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > \(now))
                  AND (k.user_id IS NULL OR NOT u.disabled)
                """, logger: logger)
            for try await (id, hash, account, permissions, expires, userID, username, roles)
                in rows.decode((String, String, String?, String, Date?, Int64?, String?, String).self) {
                keys.append(ActiveAPIKey(id: id, hash: hash, expiresAt: expires, userID: userID.map(String.init) ?? "service:\(account ?? "")",
                                         name: username ?? account ?? "", roles: roles.split(separator: " ").map(String.init).sorted(),
                                         ownPermissions: userID == nil ? permissions.split(separator: " ").map(String.init) : nil))
            }
            return keys
        }
    }
}
