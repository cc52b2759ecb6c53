import Foundation
import Logging
import PostgresNIO
import Synchronization

/// The cluster's credential store: users, roles, refresh-token families and API keys in the cluster's
/// PostgreSQL (schema version 2), with the rules of the embedded one (`CredentialRules`). Every change
/// that live credentials depend on commits with its cluster event — a logout or a reused refresh token
/// (`sessionRevoked`), a user disabled, a new password or a role change (`accessCutoff`), keys created or
/// revoked (`apiKeysChanged`) — so every node applies it within the propagation time.
///
/// Each operation is bounded: when the listener knows the store is unreachable it fails at once, and
/// otherwise it gives up after `deadline` — either way with `CredentialStoreUnavailable`, which the auth
/// endpoints answer with 503 `auth_unavailable`.
package final class PostgresCredentialStore: CredentialStore {
    let cluster: ClusterStore
    let hasher: PasswordHasher
    /// Who the events name as the actor (`auth` on a node, `cli` for `redfire-gateway users|keys`).
    let actor: String
    let deadline: Duration

    var logger: Logger { cluster.logger }

    package init(cluster: ClusterStore, bcryptCost: Int, actor: String = "auth", deadline: Duration = .seconds(5)) {
        self.cluster = cluster
        self.hasher = PasswordHasher(cost: bcryptCost)
        self.actor = actor
        self.deadline = deadline
    }

    // MARK: Bounded operations

    /// Runs `operation` against the store within `deadline`; the store's own refusals (a taken
    /// username, no such user or key) pass through, anything else is `CredentialStoreUnavailable`.
    func bounded<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        if cluster.isKnownUnreachable {
            throw CredentialStoreUnavailable(reason: "cluster store unreachable since \(cluster.unreachableSince.map { "\($0)" } ?? "?")")
        }
        do {
            return try await Deadline.run(deadline, operation)
        } catch let error as PostgresTransactionError {
            if let refusal = error.closureError.flatMap(Self.refusal) { throw refusal }
            throw CredentialStoreUnavailable(reason: String(reflecting: error))
        } catch {
            if let refusal = Self.refusal(error) { throw refusal }
            throw CredentialStoreUnavailable(reason: String(reflecting: error))
        }
    }

    private static func refusal(_ error: any Error) -> (any Error)? {
        (error is UserStoreError || error is APIKeyError) ? error : nil
    }

    /// Runs `body` in one transaction within the deadline.
    @discardableResult
    func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await bounded { [cluster, logger] in try await cluster.client.withTransaction(logger: logger) { try await body($0) } }
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await bounded { [cluster] in try await cluster.client.withConnection { try await body($0) } }
    }

    // MARK: Users

    @discardableResult
    package func addUser(username: String, password: String, email: String? = nil, roles: [String] = []) async throws -> User {
        try CredentialRules.checkNewUser(username: username, password: password, email: email)
        let passwordHash = try await hasher.hash(password)
        let roles = Set(roles).sorted()
        return try await transaction { [logger] connection in
            let rows = try await connection.query("""
                INSERT INTO redfire.users (username, email, password_hash) VALUES (\(username), \(email), \(passwordHash))
                ON CONFLICT ((lower(username))) DO NOTHING RETURNING id, created_at
                """, logger: logger)
            var inserted: (Int64, Date)?
            for try await row in rows.decode((Int64, Date).self) { inserted = row }
            guard let (id, createdAt) = inserted else { throw UserStoreError.usernameTaken(username) }
            for role in roles {
                try await connection.query("INSERT INTO redfire.user_roles (user_id, role) VALUES (\(id), \(role))", logger: logger)
            }
            return User(id: id, username: username, email: email, disabled: false, createdAt: createdAt, roles: roles)
        }
    }

    package func user(named username: String) async throws -> User? {
        try await read { [self] connection in try await fetchUsers(connection, username: username).first }
    }

    package func user(id: Int64) async throws -> User? {
        try await read { [self] connection in try await fetchUsers(connection, id: id).first }
    }

    package func users() async throws -> [User] {
        try await read { [self] connection in try await fetchUsers(connection) }
    }

    func fetchUsers(_ connection: PostgresConnection, username: String? = nil, id: Int64? = nil) async throws -> [User] {
        var sql = """
            SELECT u.id, u.username, u.email, u.disabled, u.created_at, u.tokens_valid_after,
              coalesce((SELECT string_agg(role, ' ' ORDER BY role) FROM redfire.user_roles r WHERE r.user_id = u.id), '')
            FROM redfire.users u
            """
        var bindings = PostgresBindings()
        if let username {
            sql += " WHERE lower(u.username) = lower($1)"
            bindings.append(username)
        } else if let id {
            sql += " WHERE u.id = $1"
            bindings.append(id)
        }
        sql += " ORDER BY u.username"
        var users: [User] = []
        let rows = try await connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger)
        for try await (id, name, email, disabled, created, cutoff, roles) in rows.decode((Int64, String, String?, Bool, Date, Date?, String).self) {
            users.append(User(id: id, username: name, email: email, disabled: disabled, createdAt: created,
                              roles: roles.split(separator: " ").map(String.init), tokensValidAfter: cutoff))
        }
        return users
    }

    package func setDisabled(_ username: String, _ disabled: Bool) async throws {
        try await transaction { [self] connection in
            let rows = try await connection.query("""
                UPDATE redfire.users SET disabled = \(disabled),
                  tokens_valid_after = CASE WHEN \(disabled) THEN now() ELSE tokens_valid_after END
                WHERE lower(username) = lower(\(username))
                RETURNING id, (extract(epoch FROM tokens_valid_after) * 1000)::bigint
                """, logger: logger)
            guard let (id, cutoff) = try await Self.one(rows.decode((Int64, Int64?).self)) else { throw UserStoreError.noSuchUser(username) }
            if disabled, let cutoff { try await cluster.appendEvent(.accessCutoff(userID: String(id), atMillis: cutoff), actor: actor, on: connection) }
            // A disabled user's keys stop working; enabled again, they work again.
            try await cluster.appendEvent(.apiKeysChanged, actor: actor, on: connection)
        }
    }

    package func setPassword(_ username: String, _ password: String) async throws {
        try CredentialRules.checkPassword(password, username: username)
        let passwordHash = try await hasher.hash(password)
        try await transaction { [self] connection in
            let rows = try await connection.query("""
                UPDATE redfire.users SET password_hash = \(passwordHash), tokens_valid_after = now()
                WHERE lower(username) = lower(\(username))
                RETURNING id, (extract(epoch FROM tokens_valid_after) * 1000)::bigint
                """, logger: logger)
            guard let (id, cutoff) = try await Self.one(rows.decode((Int64, Int64).self)) else { throw UserStoreError.noSuchUser(username) }
            try await connection.query("""
                UPDATE redfire.refresh_tokens SET revoked_at = now() WHERE revoked_at IS NULL AND user_id = \(id)
                """, logger: logger)
            try await cluster.appendEvent(.accessCutoff(userID: String(id), atMillis: cutoff), actor: actor, on: connection)
        }
    }

    package func grant(_ username: String, role: String) async throws {
        try await changeRole(username, role: role, granted: true)
    }

    package func revoke(_ username: String, role: String) async throws {
        try await changeRole(username, role: role, granted: false)
    }

    /// A role given or taken: the user's access tokens end, and keys acting as the user reload.
    private func changeRole(_ username: String, role: String, granted: Bool) async throws {
        try await transaction { [self] connection in
            guard let id = try await Self.one(connection.query(
                "SELECT id FROM redfire.users WHERE lower(username) = lower(\(username))", logger: logger).decode(Int64.self)) else {
                throw UserStoreError.noSuchUser(username)
            }
            let changed = granted
                ? try await connection.query("""
                    INSERT INTO redfire.user_roles (user_id, role) VALUES (\(id), \(role)) ON CONFLICT DO NOTHING RETURNING 1
                    """, logger: logger)
                : try await connection.query("DELETE FROM redfire.user_roles WHERE user_id = \(id) AND role = \(role) RETURNING 1", logger: logger)
            guard try await Self.one(changed.decode(Int.self)) != nil else { return }
            let cutoffs = try await connection.query("""
                UPDATE redfire.users SET tokens_valid_after = now() WHERE id = \(id)
                RETURNING (extract(epoch FROM tokens_valid_after) * 1000)::bigint
                """, logger: logger)
            if let cutoff = try await Self.one(cutoffs.decode(Int64.self)) {
                try await cluster.appendEvent(.accessCutoff(userID: String(id), atMillis: cutoff), actor: actor, on: connection)
            }
            try await cluster.appendEvent(.apiKeysChanged, actor: actor, on: connection)
        }
    }

    package func accessTokenCutoffs(since: Date?) async throws -> [(userID: String, cutoff: Date)] {
        let since = since ?? Date(timeIntervalSince1970: 0)
        return try await read { [logger] connection in
            var cutoffs: [(userID: String, cutoff: Date)] = []
            let rows = try await connection.query("""
                SELECT id, tokens_valid_after FROM redfire.users WHERE tokens_valid_after IS NOT NULL AND tokens_valid_after > \(since)
                """, logger: logger)
            for try await (id, cutoff) in rows.decode((Int64, Date).self) { cutoffs.append((String(id), cutoff)) }
            return cutoffs
        }
    }

    package func authenticate(username: String, password: String) async throws -> User? {
        let found = try await read { [self] connection -> (User, String)? in
            guard let user = try await fetchUsers(connection, username: username).first,
                  let hash = try await Self.one(connection.query(
                    "SELECT password_hash FROM redfire.users WHERE id = \(user.id)", logger: logger).decode(String.self)) else { return nil }
            return (user, hash)
        }
        return try await hasher.authenticate(password, found: found)
    }

    /// The first row of a result, reading the rest to the end.
    static func one<Row>(_ rows: some AsyncSequence<Row, any Error>) async throws -> Row? {
        var first: Row?
        for try await row in rows where first == nil { first = row }
        return first
    }
}

/// Runs an operation with a time limit without waiting for it to notice: a query on a connection whose
/// server stopped answering (SIGSTOP, a network partition) may not end on cancellation, and the caller
/// must get its answer anyway. The operation is cancelled and left to finish on its own.
enum Deadline {
    struct Exceeded: Error, CustomStringConvertible {
        let limit: Duration
        var description: String { "no answer within \(limit)" }
    }

    /// The operation's result, or `Exceeded` once `limit` has passed, or `CancellationError` as soon as
    /// the caller is cancelled (a graceful shutdown must not wait on a store that does not answer); the
    /// operation is cancelled when it lost.
    @discardableResult
    static func run<T: Sendable>(_ limit: Duration, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        let state = State<T>()
        let work = Task {
            do { state.finish(.success(try await operation())) } catch { state.finish(.failure(error)) }
        }
        let timer = Task {
            try? await Task.sleep(for: limit)
            if !Task.isCancelled { state.finish(.failure(Exceeded(limit: limit))) }
        }
        state.onFinish { timer.cancel(); work.cancel() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in state.begin(continuation) }
        } onCancel: {
            state.finish(.failure(CancellationError()))
        }
    }

    /// One result, whichever comes first, handed to the caller whether it is waiting yet or not.
    private final class State<T: Sendable>: Sendable {
        private struct Slot {
            var continuation: CheckedContinuation<T, any Error>?
            var result: Result<T, any Error>?
            var cleanup: (@Sendable () -> Void)?
        }
        private let slot = Mutex(Slot())

        func begin(_ continuation: CheckedContinuation<T, any Error>) {
            let ready = slot.withLock { slot -> Result<T, any Error>? in
                if slot.result == nil { slot.continuation = continuation }
                return slot.result
            }
            if let ready { continuation.resume(with: ready) }
        }

        func finish(_ result: Result<T, any Error>) {
            let (continuation, cleanup) = slot.withLock { slot -> (CheckedContinuation<T, any Error>?, (@Sendable () -> Void)?) in
                guard slot.result == nil else { return (nil, nil) }
                slot.result = result
                defer { slot.continuation = nil; slot.cleanup = nil }
                return (slot.continuation, slot.cleanup)
            }
            continuation?.resume(with: result)
            cleanup?()
        }

        func onFinish(_ cleanup: @escaping @Sendable () -> Void) {
            let runNow = slot.withLock { slot -> Bool in
                if slot.result != nil { return true }
                slot.cleanup = cleanup
                return false
            }
            if runNow { cleanup() }
        }
    }
}

extension PostgresCredentialStore {
    /// A store for a short-lived process (`redfire-gateway users|keys`): its own connection pool,
    /// running for the rest of the process, the schema migrated; events name the actor `cli`.
    package static func open(url: PostgresURL, bcryptCost: Int) async throws -> PostgresCredentialStore {
        var logger = Logger(label: "redfire.cli")
        logger.logLevel = .critical
        let cluster = try ClusterStore(url: url, nodeName: "cli@\(ProcessInfo.processInfo.hostName)", logger: logger)
        Task { await cluster.client.run() }
        try await Deadline.run(.seconds(10)) { try await cluster.migrate() }
        return PostgresCredentialStore(cluster: cluster, bcryptCost: bcryptCost, actor: "cli")
    }
}
