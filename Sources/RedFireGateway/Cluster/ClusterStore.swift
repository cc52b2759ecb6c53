import Foundation
import Logging
import NIOSSL
import NIOSSL
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// The cluster's shared state in PostgreSQL (`cluster.store`): operator decisions and the change log
/// every node follows. A change and its event row commit in one transaction, and a trigger turns the
/// event into a `NOTIFY` that wakes the other nodes (`ClusterListener`), which read the events after the
/// last one they applied — so a missed notification, a reconnect or a restart loses nothing.
///
/// Writers take a transaction-scoped advisory lock before inserting an event, so events commit in
/// `seq` order and a reader that has applied `seq` N never sees N-1 appear later.
package final class ClusterStore: Service, Sendable {
    package let nodeName: String
    let client: PostgresClient
    let url: PostgresURL
    let logger: Logger
    private let status = Mutex(Status())
    private let queue = Mutex(PublishQueue())

    /// Changes made on this node and its audit entries, written in order by one task at a time.
    struct PublishQueue {
        var pending: [Item] = []
        var writing: Task<Void, Never>?
    }

    enum Item {
        case change(ClusterChange, actor: String)
        case audit(at: Date, actor: String, action: String, target: String, result: String)
    }

    struct Status {
        /// Since when the store cannot be reached; nil while it can.
        var unreachableSince: Date? = Date()
        var lastError: String?
        /// Whether the listener has tried to reach it yet (before that, `unreachableSince` is a guess).
        var known = false
        /// Since when it has answered without a break (nil while unreachable).
        var reachableSince: ContinuousClock.Instant?
    }

    /// Advisory lock keys (any constants unique to this schema).
    static let migrationLock: Int64 = 0x5265_6446_6972_6501
    static let eventLock: Int64 = 0x5265_6446_6972_6502
    static let houseKeepingLock: Int64 = 0x5265_6446_6972_6503
    /// The channel the event trigger notifies.
    static let channel = "redfire_events"

    /// How far back a (re)connecting node reads session revocations and user cutoffs: as long as an
    /// access token lives (its TTL and leeway).
    let revocationWindow: Duration

    /// Throws when the URL's TLS files cannot be used (`PostgresTLS.clientConfiguration`).
    package init(url: PostgresURL, nodeName: String, revocationWindow: Duration = .seconds(3600), logger: Logger) throws(PostgresURL.Invalid) {
        self.url = url
        self.revocationWindow = revocationWindow
        self.nodeName = nodeName
        self.logger = logger
        let tls = try url.tls.clientConfiguration()
        let context: NIOSSLContext?
        do { context = try tls.map { try NIOSSLContext(configuration: $0) } }
        catch { throw PostgresURL.Invalid(description: "the store's TLS settings cannot be used: \(error)") }
        self.connectionTLS = switch (url.tls.mode, context) {
        case (.prefer, let context?): .prefer(context)
        case (_, let context?): .require(context)
        case (_, nil): .disable
        }
        let poolTLS: PostgresClient.Configuration.TLS = switch (url.tls.mode, tls) {
        case (.prefer, let tls?): .prefer(tls)
        case (_, let tls?): .require(tls)
        case (_, nil): .disable
        }
        var configuration = PostgresClient.Configuration(host: url.host, port: url.port, username: url.user, password: url.password,
                                                         database: url.database, tls: poolTLS)
        configuration.options.connectTimeout = .seconds(2)
        configuration.options.maximumConnections = 4
        configuration.options.additionalStartupParameters = Self.sessionLimits
        self.client = PostgresClient(configuration: configuration, backgroundLogger: logger)
    }

    /// No statement waits on a lock or runs for long: an operator change that cannot be written within
    /// seconds fails (and says so) instead of holding this node's queue — or its shutdown — forever.
    static let sessionLimits = [("lock_timeout", "5s"), ("statement_timeout", "15s"), ("idle_in_transaction_session_timeout", "30s")]

    /// TLS of the listener's own connection (the pool's is in its configuration).
    private let connectionTLS: PostgresConnection.Configuration.TLS

    var connectionConfiguration: PostgresConnection.Configuration {
        var configuration = PostgresConnection.Configuration(host: url.host, port: url.port, username: url.user, password: url.password,
                                                             database: url.database, tls: connectionTLS)
        configuration.options.connectTimeout = .seconds(2)
        configuration.options.additionalStartupParameters = Self.sessionLimits
        return configuration
    }

    // MARK: Running

    /// Runs the connection pool until graceful shutdown, then writes what this node still has to
    /// publish. Put it first in a service group: services stop in reverse order, so nothing else
    /// publishes after it has flushed.
    package func run() async throws {
        let pool = Task { await self.client.run() }
        try? await gracefulShutdown()
        // Bounded: a store that hangs must not hold the gateway's shutdown (the statements themselves
        // time out after `sessionLimits`; this is the last word).
        let flushed = Atomic<Bool>(false)
        let flushing = Task {
            await self.flush()
            flushed.store(true, ordering: .releasing)
        }
        let deadline = ContinuousClock.now + .seconds(20)
        while !flushed.load(ordering: .acquiring), ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        if !flushed.load(ordering: .acquiring) { logger.error("the cluster store did not take this node's last changes before shutdown") }
        flushing.cancel()
        pool.cancel()
    }

    /// Queues a change made on this node; it is written (with its event) in the order queued, off the
    /// caller's thread. A write that fails is logged: the change stays on this node only.
    package func enqueue(_ change: ClusterChange, actor: String) {
        enqueue(.change(change, actor: actor))
    }

    /// Queues an operator action for the cluster's audit trail (`redfire.audit`), written in order with
    /// the changes, off the caller's thread.
    package func enqueueAudit(at: Date, actor: String, action: String, target: String, result: String) {
        enqueue(.audit(at: at, actor: actor, action: action, target: target, result: result))
    }

    private func enqueue(_ item: Item) {
        queue.withLock { queue in
            queue.pending.append(item)
            guard queue.writing == nil else { return }
            queue.writing = Task { await self.writeQueued() }
        }
    }

    private func writeQueued() async {
        while let next = queue.withLock({ queue -> Item? in
            guard !queue.pending.isEmpty else {
                queue.writing = nil
                return nil
            }
            return queue.pending.removeFirst()
        }) {
            switch next {
            case .change(let change, let actor):
                do {
                    try await publish(change, actor: actor)
                } catch {
                    markUnreachable(error)
                    logger.error("an operator change reached this node only: the cluster store did not take it",
                                 metadata: ["change": .string("\(change)"), "actor": .string(actor), "error": .string(String(reflecting: error))])
                }
            case .audit(let at, let actor, let action, let target, let result):
                do {
                    try await client.query("""
                        INSERT INTO redfire.audit (at, node, actor, action, target, result)
                        VALUES (\(at), \(nodeName), \(actor), \(action), \(target), \(result))
                        """, logger: logger)
                } catch {
                    logger.warning("an audit entry is kept on this node only: the cluster store did not take it",
                                   metadata: ["actor": .string(actor), "action": .string(action), "target": .string(target)])
                }
            }
        }
    }

    /// The cluster's audit trail, newest first: every node's operator actions.
    package func auditTrail(limit: Int = 1000) async throws -> [(at: Date, node: String, actor: String, action: String, target: String, result: String)] {
        try await Deadline.run(.seconds(3)) { [client, logger] in
            var entries: [(at: Date, node: String, actor: String, action: String, target: String, result: String)] = []
            let rows = try await client.query("""
                SELECT at, node, actor, action, target, result FROM redfire.audit ORDER BY at DESC, id DESC LIMIT \(limit)
                """, logger: logger)
            for try await row in rows.decode((Date, String, String, String, String, String).self) { entries.append(row) }
            return entries
        }
    }

    /// Waits until every queued change is written (or has failed).
    package func flush() async {
        while let writing = queue.withLock({ $0.writing }) { await writing.value }
    }

    // MARK: Reachability (set by the listener, which holds a connection open)

    /// Whether the store answered last time it was asked.
    package var isReachable: Bool { status.withLock { $0.unreachableSince == nil } }
    /// How long the store has answered without a break (nil while it does not).
    package var reachableFor: Duration? { status.withLock { $0.reachableSince.map { .now - $0 } } }
    /// Known to be unreachable: the listener tried and failed (not merely not connected yet).
    package var isKnownUnreachable: Bool { status.withLock { $0.known && $0.unreachableSince != nil } }
    package var unreachableSince: Date? { status.withLock { $0.unreachableSince } }
    /// "cluster store unreachable since …" once the listener knows it is (for `/ready` and the console).
    package var unreachableNote: String? {
        guard isKnownUnreachable, let since = unreachableSince else { return nil }
        let reason = lastError.map { " (\($0))" } ?? ""
        return "cluster store unreachable since \(ISO8601DateFormatter().string(from: since))\(reason): serving with the last state applied"
    }
    /// What the last failure said (nil while reachable).
    package var lastError: String? { status.withLock { $0.lastError } }

    func markReachable() {
        let was = status.withLock { status -> Date? in
            defer {
                if status.unreachableSince != nil || status.reachableSince == nil { status.reachableSince = .now }
                status.unreachableSince = nil; status.lastError = nil; status.known = true
            }
            return status.unreachableSince
        }
        if let was { logger.info("cluster store reachable", metadata: ["store": .string(url.description), "down_since": .string("\(was)")]) }
    }

    func markUnreachable(_ error: any Error) {
        let first = status.withLock { status -> Bool in
            defer { status.lastError = self.reason(error); status.known = true; status.reachableSince = nil }
            guard status.unreachableSince == nil else { return false }
            status.unreachableSince = Date()
            return true
        }
        if first { logger.error("cluster store unreachable", metadata: ["store": .string(url.description), "error": .string(String(reflecting: error))]) }
    }

    /// What an operator can act on: the server's message (a refused login, no `pg_hba.conf` entry), or the
    /// connection's cause (refused, timed out, a certificate that failed verification) — never the
    /// query or its values. PostgresNIO's own description says nothing (by design).
    func reason(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return "\(error)" }
        if let message = error.serverInfo?[.message] { return "the server said: \(message)" }
        if error.code == .sslUnsupported { return "the server does not offer TLS (sslmode=\(url.tls.mode.rawValue) asks for it)" }
        guard let underlying = error.underlying else { return "\(error.code)" }
        if let extra = underlying as? NIOSSLExtraError, extra == .failedToValidateHostname {
            return "the server's certificate does not name \(url.host) (sslmode=verify-full checks the name, verify-ca does not)"
        }
        if case NIOSSLError.handshakeFailed(let failure) = underlying {
            // BoringSSL's reason, e.g. "…:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED at …".
            let text = "\(failure)"
            let name = text.range(of: "OPENSSL_internal:").map { String(text[$0.upperBound...].prefix { $0.isLetter || $0.isNumber || $0 == "_" }) } ?? text
            if name == "CERTIFICATE_VERIFY_FAILED" {
                return "TLS handshake failed: the server's certificate is not signed by sslrootcert, or has expired (CERTIFICATE_VERIFY_FAILED)"
            }
            return "TLS handshake failed: \(name)"
        }
        return "\(error.code): \(underlying)"
    }

    // MARK: Schema (the migrations are in ClusterStore+Schema.swift)

    /// Creates or upgrades the schema; returns the versions this call applied.
    @discardableResult
    package func migrate() async throws -> [Int] {
        try await client.withTransaction(logger: logger) { connection in
            // Every node migrates at start, one at a time: a node waits for the others' migrations, which
            // can take longer than the session's lock_timeout when many start at once on a busy store.
            try await connection.query("SET LOCAL lock_timeout = '120s'", logger: logger)
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.migrationLock))", logger: logger)
            try await connection.query("CREATE SCHEMA IF NOT EXISTS redfire", logger: logger)
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS redfire.schema_migrations (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
                logger: logger)
            var applied: Set<Int> = []
            for try await version in try await connection.query("SELECT version FROM redfire.schema_migrations", logger: logger).decode(Int.self) {
                applied.insert(version)
            }
            var now: [Int] = []
            for migration in Self.migrations where !applied.contains(migration.version) {
                for statement in migration.statements { try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
                try await connection.query("INSERT INTO redfire.schema_migrations (version) VALUES (\(migration.version))", logger: logger)
                now.append(migration.version)
            }
            return now
        }
    }

    // MARK: Operator decisions

    /// Records a change and its event in one transaction; every node applies it from the event.
    package func publish(_ change: ClusterChange, actor: String) async throws {
        try await client.withTransaction(logger: logger) { connection in
            switch change {
            case .drain(let service, let instance, let draining, let deadlineMillis):
                if let deadlineMillis {
                    try await connection.query("""
                        INSERT INTO redfire.instance_drains (service, instance_id, draining, deadline_at, set_by)
                        VALUES (\(service), \(instance), \(draining), now() + \(deadlineMillis)::float8 * interval '1 millisecond', \(actor))
                        ON CONFLICT (service, instance_id) DO UPDATE SET draining = excluded.draining, deadline_at = excluded.deadline_at,
                          set_by = excluded.set_by, set_at = now()
                        """, logger: logger)
                } else {
                    try await connection.query("""
                        INSERT INTO redfire.instance_drains (service, instance_id, draining, deadline_at, set_by)
                        VALUES (\(service), \(instance), \(draining), NULL, \(actor))
                        ON CONFLICT (service, instance_id) DO UPDATE SET draining = excluded.draining, deadline_at = NULL,
                          set_by = excluded.set_by, set_at = now()
                        """, logger: logger)
                }
            case .strategy(let service, let strategy):
                try await connection.query("""
                    INSERT INTO redfire.strategy_overrides (service, strategy, set_by) VALUES (\(service), \(strategy), \(actor))
                    ON CONFLICT (service) DO UPDATE SET strategy = excluded.strategy, set_by = excluded.set_by, set_at = now()
                    """, logger: logger)
            case .registered(let service, let id, let url, let weight, let version, let metadata, let leaseMillis):
                let metadataJSON = String(decoding: try JSONEncoder().encode(metadata), as: UTF8.self)
                try await connection.query("""
                    INSERT INTO redfire.registrations (service, instance_id, url, weight, version, metadata, lease_ms, lease_expires_at, registered_by)
                    VALUES (\(service), \(id), \(url), \(weight), \(version), \(metadataJSON)::jsonb, \(leaseMillis),
                      now() + \(leaseMillis)::float8 * interval '1 millisecond', \(actor))
                    ON CONFLICT (service, instance_id) DO UPDATE SET url = excluded.url, weight = excluded.weight, version = excluded.version,
                      metadata = excluded.metadata, lease_ms = excluded.lease_ms, lease_expires_at = excluded.lease_expires_at,
                      registered_by = excluded.registered_by, registered_at = now()
                    """, logger: logger)
            case .deregistered(let service, let id, _):
                try await connection.query("DELETE FROM redfire.registrations WHERE service = \(service) AND instance_id = \(id)", logger: logger)
            case .sessionRevoked, .accessCutoff, .apiKeysChanged, .registrationSet:
                break  // written with the change itself (credentials, leases), or a snapshot's only
            }
            try await appendEvent(change, actor: actor, on: connection)
        }
    }

    /// Adds a change's event in the caller's transaction: it commits with the change, or not at all.
    /// The advisory lock makes events commit in `seq` order.
    func appendEvent(_ change: ClusterChange, actor: String, on connection: PostgresConnection) async throws {
        let payload = String(decoding: try JSONEncoder().encode(change), as: UTF8.self)
        try await connection.query("SELECT pg_advisory_xact_lock(\(Self.eventLock))", logger: logger)
        try await connection.query("""
            INSERT INTO redfire.cluster_events (node, actor, channel, payload) VALUES (\(nodeName), \(actor), \(change.channel), \(payload)::jsonb)
            """, logger: logger)
    }

    /// Every stored decision as changes to apply (drains with what is left of their deadlines; session
    /// revocations and user cutoffs young enough to matter; a reload of the API keys), and the
    /// newest event they include: a node that applies them and then the events after `through` is current.
    package func snapshot() async throws -> (changes: [ClusterChange], through: Int64) {
        try await client.withConnection { connection in
            try await connection.query("BEGIN ISOLATION LEVEL REPEATABLE READ", logger: logger)
            do {
                var changes: [ClusterChange] = []
                let drains = try await connection.query("""
                    SELECT service, instance_id, draining,
                      CASE WHEN deadline_at IS NULL THEN NULL ELSE greatest(0, (extract(epoch FROM deadline_at - now()) * 1000)::bigint) END
                    FROM redfire.instance_drains ORDER BY service, instance_id
                    """, logger: logger)
                for try await (service, instance, draining, deadline) in drains.decode((String, String, Bool, Int64?).self) {
                    changes.append(.drain(service: service, instance: instance, draining: draining, deadlineMillis: deadline))
                }
                for try await (service, strategy) in try await connection.query(
                    "SELECT service, strategy FROM redfire.strategy_overrides ORDER BY service", logger: logger).decode((String, String).self) {
                    changes.append(.strategy(service: service, strategy: strategy))
                }
                // What live access tokens depend on: sessions ended and user cutoffs within a token's life.
                let window = Double(revocationWindow.components.seconds)
                for try await session in try await connection.query("""
                    SELECT DISTINCT family FROM redfire.refresh_tokens WHERE revoked_at > now() - \(window)::float8 * interval '1 second'
                    """, logger: logger).decode(String.self) {
                    changes.append(.sessionRevoked(session: session))
                }
                for try await (userID, atMillis) in try await connection.query("""
                    SELECT id, (extract(epoch FROM tokens_valid_after) * 1000)::bigint FROM redfire.users
                    WHERE tokens_valid_after > now() - \(window)::float8 * interval '1 second'
                    """, logger: logger).decode((Int64, Int64).self) {
                    changes.append(.accessCutoff(userID: String(userID), atMillis: atMillis))
                }
                changes.append(.apiKeysChanged)
                // Registered instances, then the whole set (a node drops what was deregistered while it was away).
                var registered: [String] = []
                let registrations = try await connection.query("""
                    SELECT service, instance_id, url, weight, version, metadata::text, lease_ms FROM redfire.registrations ORDER BY service, instance_id
                    """, logger: logger)
                for try await (service, id, url, weight, version, metadata, lease) in registrations.decode((String, String, String, Int, String?, String, Int64?).self) {
                    let fields = (try? JSONDecoder().decode([String: String].self, from: Data(metadata.utf8))) ?? [:]
                    changes.append(.registered(service: service, id: id, url: url, weight: weight, version: version, metadata: fields, leaseMillis: lease))
                    registered.append(ClusterChange.registrationKey(service, id))
                }
                changes.append(.registrationSet(keys: registered))
                var through: Int64 = 0
                for try await seq in try await connection.query("SELECT coalesce(max(seq), 0) FROM redfire.cluster_events", logger: logger).decode(Int64.self) {
                    through = seq
                }
                try await connection.query("COMMIT", logger: logger)
                return (changes, through)
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
        }
    }

    /// The events after `seq`, oldest first (at most `limit`), with what is left of drain deadlines.
    package func events(after seq: Int64, limit: Int = 1000) async throws -> [ClusterEvent] {
        try await client.withConnection { connection in
            var events: [ClusterEvent] = []
            let rows = try await connection.query("""
                SELECT seq, node, actor, payload::text, (extract(epoch FROM now() - at) * 1000)::bigint
                FROM redfire.cluster_events WHERE seq > \(seq) ORDER BY seq LIMIT \(limit)
                """, logger: logger)
            for try await (seq, node, actor, payload, ageMillis) in rows.decode((Int64, String, String, String, Int64).self) {
                guard var change = try? JSONDecoder().decode(ClusterChange.self, from: Data(payload.utf8)) else {
                    logger.warning("skipping a cluster event this node does not understand", metadata: ["seq": .stringConvertible(seq)])
                    events.append(ClusterEvent(seq: seq, node: node, actor: actor, change: nil))
                    continue
                }
                if case .drain(let service, let instance, let draining, let deadline?) = change {
                    change = .drain(service: service, instance: instance, draining: draining, deadlineMillis: max(0, deadline - ageMillis))
                }
                events.append(ClusterEvent(seq: seq, node: node, actor: actor, change: change))
            }
            return events
        }
    }
}

/// One change as the cluster stores and sends it: an operator decision, or what live credentials
/// depend on.
package enum ClusterChange: Codable, Sendable, Equatable {
    /// Drain (or undrain) an instance; a deadline in milliseconds from the change.
    case drain(service: String, instance: String, draining: Bool, deadlineMillis: Int64?)
    /// An operator-chosen balancing strategy (its raw value).
    case strategy(service: String, strategy: String)
    /// Every access token of a login session ends (logout, refresh-token reuse).
    case sessionRevoked(session: String)
    /// A user's access tokens issued up to this instant (ms since 1970) end: disabled, new password,
    /// roles changed.
    case accessCutoff(userID: String, atMillis: Int64)
    /// API keys, or the users and roles they act with, changed: every node reloads its keys.
    case apiKeysChanged
    /// An instance registered itself (with a lease renewed by heartbeats to any node, when set).
    case registered(service: String, id: String, url: String, weight: Int, version: String?, metadata: [String: String], leaseMillis: Int64?)
    /// A registered instance left: deregistered, drained before leaving, or its lease expired.
    case deregistered(service: String, id: String, reason: String)
    /// In a snapshot only: every registration stored (`registrationKey`); a node drops the others.
    case registrationSet(keys: [String])

    static func registrationKey(_ service: String, _ id: String) -> String { service + "/" + id }

    var channel: String {
        switch self {
        case .drain: return "drain"
        case .strategy: return "strategy"
        case .sessionRevoked, .accessCutoff, .apiKeysChanged: return "auth"
        case .registered, .deregistered, .registrationSet: return "registration"
        }
    }
}

/// A change from the log, with where it came from.
package struct ClusterEvent: Sendable, Equatable {
    package let seq: Int64
    package let node: String
    package let actor: String
    /// nil for an event this node's version does not know.
    package let change: ClusterChange?
}
