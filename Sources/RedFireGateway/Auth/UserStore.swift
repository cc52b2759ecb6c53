import Foundation
import GRDB
import HummingbirdBcrypt
import NIOPosix

package enum UserStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    case usernameTaken(String)
    case noSuchUser(String)
    /// Input that breaks a rule; each entry names the field and what is wrong.
    case invalid([FieldProblem])

    package var description: String {
        switch self {
        case .usernameTaken(let name): return "the username \(name) is taken"
        case .noSuchUser(let name): return "no user named \(name)"
        case .invalid(let problems): return problems.map { "\($0.field): \($0.message)" }.joined(separator: "; ")
        }
    }
}

/// One thing wrong with a field of a request (registration, password change).
package struct FieldProblem: Sendable, Equatable {
    package var field: String
    package var message: String

    package init(field: String, message: String) {
        self.field = field
        self.message = message
    }
}

/// Users and their roles in an embedded SQLite database (GRDB), migrated at open — the credential
/// store of a single gateway (the default; `PostgresCredentialStore` is the cluster's). Passwords are
/// stored as bcrypt hashes (`PasswordHasher`).
package final class UserStore: CredentialStore {
    package let path: String
    let database: DatabaseQueue
    let hasher: PasswordHasher

    /// Opens (creating the file and its directory if needed) and migrates the database at `path`.
    package init(path: String, bcryptCost: Int = 12) throws {
        self.path = path
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(5)
        database = try DatabaseQueue(path: path, configuration: configuration)
        try Self.migrator.migrate(database)
        hasher = PasswordHasher(cost: bcryptCost)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: users and roles") { db in
            try db.create(table: "users") { table in
                table.autoIncrementedPrimaryKey("id")
                table.column("username", .text).notNull().unique().collate(.nocase)
                table.column("email", .text)
                table.column("password_hash", .text).notNull()
                table.column("disabled", .boolean).notNull().defaults(to: false)
                table.column("created_at", .datetime).notNull()
            }
            try db.create(table: "user_roles") { table in
                table.column("user_id", .integer).notNull().references("users", onDelete: .cascade)
                table.column("role", .text).notNull()
                table.primaryKey(["user_id", "role"])
            }
        }
        registerRefreshMigration(&migrator)
        registerAPIKeyMigration(&migrator)
        migrator.registerMigration("v4: access-token cutoff") { db in
            try db.alter(table: "users") { table in table.add(column: "tokens_valid_after", .datetime) }
        }
        return migrator
    }

    // MARK: Users

    @discardableResult
    package func addUser(username: String, password: String, email: String? = nil, roles: [String] = []) async throws -> User {
        try CredentialRules.checkNewUser(username: username, password: password, email: email)
        let passwordHash = try await hasher.hash(password)
        let now = Date()
        return try await database.write { db in
            if try Row.fetchOne(db, sql: "SELECT 1 FROM users WHERE username = ?", arguments: [username]) != nil {
                throw UserStoreError.usernameTaken(username)
            }
            try db.execute(sql: "INSERT INTO users (username, email, password_hash, disabled, created_at) VALUES (?, ?, ?, 0, ?)",
                           arguments: [username, email, passwordHash, now])
            let id = db.lastInsertedRowID
            for role in Set(roles) { try db.execute(sql: "INSERT INTO user_roles (user_id, role) VALUES (?, ?)", arguments: [id, role]) }
            return User(id: id, username: username, email: email, disabled: false, createdAt: now, roles: Set(roles).sorted())
        }
    }

    package func user(named username: String) async throws -> User? {
        try await database.read { db in try Self.fetchUsers(db, where: "WHERE u.username = ?", [username]).first }
    }

    package func users() async throws -> [User] {
        try await database.read { db in try Self.fetchUsers(db, where: "", []) }
    }

    static func fetchUsers(_ db: Database, where clause: String, _ arguments: StatementArguments) throws -> [User] {
        let rows = try Row.fetchAll(db, sql: """
            SELECT u.id, u.username, u.email, u.disabled, u.created_at, u.tokens_valid_after, group_concat(r.role, ' ') AS roles
            FROM users u LEFT JOIN user_roles r ON r.user_id = u.id \(clause)
            GROUP BY u.id ORDER BY u.username
            """, arguments: arguments)
        return rows.map { row in
            let roles: String? = row["roles"]
            return User(id: row["id"], username: row["username"], email: row["email"], disabled: row["disabled"], createdAt: row["created_at"],
                        roles: (roles ?? "").split(separator: " ").map(String.init).sorted(), tokensValidAfter: row["tokens_valid_after"])
        }
    }

    /// Disabling ends every access token of the user (`tokens_valid_after`); refresh tokens of a
    /// disabled user are refused already. Enabling again revokes nothing.
    package func setDisabled(_ username: String, _ disabled: Bool) async throws {
        try await database.write { db in
            try db.execute(sql: "UPDATE users SET disabled = ? WHERE username = ?", arguments: [disabled, username])
            guard db.changesCount == 1 else { throw UserStoreError.noSuchUser(username) }
            if disabled { try Self.revokeAccessTokens(db, username: username) }
        }
    }

    /// A new password ends every session of the user: its access tokens and its refresh families.
    /// Setting the first password of a new user revokes nothing that exists.
    package func setPassword(_ username: String, _ password: String) async throws {
        try CredentialRules.checkPassword(password, username: username)
        let passwordHash = try await hasher.hash(password)
        try await database.write { db in
            try db.execute(sql: "UPDATE users SET password_hash = ? WHERE username = ?", arguments: [passwordHash, username])
            guard db.changesCount == 1 else { throw UserStoreError.noSuchUser(username) }
            try Self.revokeAccessTokens(db, username: username)
            try db.execute(sql: """
                UPDATE refresh_tokens SET revoked_at = ? WHERE revoked_at IS NULL
                AND user_id = (SELECT id FROM users WHERE username = ?)
                """, arguments: [Date(), username])
        }
    }

    /// A new role ends the user's access tokens (they carry the old permissions); refreshing issues
    /// tokens with the new ones.
    package func grant(_ username: String, role: String) async throws {
        try await database.write { db in
            guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM users WHERE username = ?", arguments: [username]) else {
                throw UserStoreError.noSuchUser(username)
            }
            try db.execute(sql: "INSERT OR IGNORE INTO user_roles (user_id, role) VALUES (?, ?)", arguments: [id, role])
            if db.changesCount == 1 { try Self.revokeAccessTokens(db, username: username) }
        }
    }

    /// A role taken away ends the user's access tokens at once (they would keep its permissions).
    package func revoke(_ username: String, role: String) async throws {
        try await database.write { db in
            guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM users WHERE username = ?", arguments: [username]) else {
                throw UserStoreError.noSuchUser(username)
            }
            try db.execute(sql: "DELETE FROM user_roles WHERE user_id = ? AND role = ?", arguments: [id, role])
            if db.changesCount == 1 { try Self.revokeAccessTokens(db, username: username) }
        }
    }

    private static func revokeAccessTokens(_ db: Database, username: String) throws {
        try db.execute(sql: "UPDATE users SET tokens_valid_after = ? WHERE username = ?", arguments: [Date(), username])
    }

    /// Users whose access tokens were cut off after `since` (nil: every cutoff on record): id → cutoff.
    package func accessTokenCutoffs(since: Date?) async throws -> [(userID: String, cutoff: Date)] {
        try await database.read { db in
            let rows = try Row.fetchAll(db, sql: "SELECT id, tokens_valid_after FROM users WHERE tokens_valid_after IS NOT NULL AND tokens_valid_after > ?",
                                        arguments: [since ?? Date.distantPast])
            return rows.map { (userID: String($0["id"] as Int64), cutoff: $0["tokens_valid_after"] as Date) }
        }
    }

    /// The user when `password` is theirs and they are not disabled; nil otherwise. An unknown
    /// username costs one bcrypt verification too, so it cannot be told apart by timing.
    package func authenticate(username: String, password: String) async throws -> User? {
        let found = try await database.read { db -> (User, String)? in
            guard let user = try Self.fetchUsers(db, where: "WHERE u.username = ?", [username]).first,
                  let hash = try String.fetchOne(db, sql: "SELECT password_hash FROM users WHERE id = ?", arguments: [user.id]) else { return nil }
            return (user, hash)
        }
        return try await hasher.authenticate(password, found: found)
    }
}
