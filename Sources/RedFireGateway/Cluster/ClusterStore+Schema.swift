import Foundation
import PostgresNIO

/// The cluster store's schema — versioned migrations, safe from every node at once — and its
/// housekeeping.
extension ClusterStore {
    // MARK: Schema

    /// Versioned migrations, each applied once, in order, in one transaction under an advisory lock:
    /// safe to run from every node at once (the others wait, then find nothing to do).
    static let migrations: [(version: Int, statements: [String])] = [
        (1, [
            """
            CREATE TABLE redfire.instance_drains (
              service text NOT NULL, instance_id text NOT NULL, draining boolean NOT NULL,
              deadline_at timestamptz, set_by text NOT NULL, set_at timestamptz NOT NULL DEFAULT now(),
              PRIMARY KEY (service, instance_id))
            """,
            """
            CREATE TABLE redfire.strategy_overrides (
              service text PRIMARY KEY, strategy text NOT NULL, set_by text NOT NULL, set_at timestamptz NOT NULL DEFAULT now())
            """,
            """
            CREATE TABLE redfire.cluster_events (
              seq bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), node text NOT NULL,
              actor text NOT NULL, channel text NOT NULL, payload jsonb NOT NULL)
            """,
            """
            CREATE FUNCTION redfire.notify_cluster_event() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_notify('\(channel)', NEW.seq::text); RETURN NULL; END $$
            """,
            """
            CREATE TRIGGER cluster_events_notify AFTER INSERT ON redfire.cluster_events
              FOR EACH ROW EXECUTE FUNCTION redfire.notify_cluster_event()
            """,
        ]),
        (2, [
            // The credential store (`PostgresCredentialStore`), as the embedded SQLite file has it.
            """
            CREATE TABLE redfire.users (
              id bigserial PRIMARY KEY, username text NOT NULL, email text, password_hash text NOT NULL,
              disabled boolean NOT NULL DEFAULT false, created_at timestamptz NOT NULL DEFAULT now(), tokens_valid_after timestamptz)
            """,
            "CREATE UNIQUE INDEX users_username ON redfire.users (lower(username))",
            """
            CREATE TABLE redfire.user_roles (
              user_id bigint NOT NULL REFERENCES redfire.users ON DELETE CASCADE, role text NOT NULL, PRIMARY KEY (user_id, role))
            """,
            """
            CREATE TABLE redfire.refresh_tokens (
              id bigserial PRIMARY KEY, token_hash text NOT NULL UNIQUE, user_id bigint NOT NULL REFERENCES redfire.users ON DELETE CASCADE,
              family text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), expires_at timestamptz NOT NULL,
              rotated_at timestamptz, revoked_at timestamptz)
            """,
            "CREATE INDEX refresh_tokens_family ON redfire.refresh_tokens (family)",
            "CREATE INDEX refresh_tokens_revoked ON redfire.refresh_tokens (revoked_at) WHERE revoked_at IS NOT NULL",
            """
            CREATE TABLE redfire.api_keys (
              id text PRIMARY KEY, key_hash text NOT NULL, name text NOT NULL,
              user_id bigint REFERENCES redfire.users ON DELETE CASCADE, service_account text, permissions text NOT NULL DEFAULT '',
              created_at timestamptz NOT NULL DEFAULT now(), expires_at timestamptz, revoked_at timestamptz)
            """,
        ]),
        (3, [
            // Membership (`ClusterMembership`): one row per node, its heartbeat by the store's clock.
            """
            CREATE TABLE redfire.nodes (
              name text PRIMARY KEY, version text NOT NULL, listen text NOT NULL, started_at timestamptz NOT NULL,
              last_seen timestamptz NOT NULL, requests_per_second float8 NOT NULL DEFAULT 0)
            """,
        ]),
        (4, [
            // `exact` rate limits (`ClusterRateLimits`): a counter per policy, key and window (ms since 1970,
            // by the store's clock). Unlogged: fast, and a crash of the store only forgets current windows.
            """
            CREATE UNLOGGED TABLE redfire.rate_windows (
              policy text NOT NULL, key text NOT NULL, window_start bigint NOT NULL, count int NOT NULL,
              PRIMARY KEY (policy, key, window_start))
            """,
        ]),
        (5, [
            // Self-registered instances (`POST /gateway/services/{name}/instances`) and their leases, renewed by
            // heartbeats to any node (`ClusterLeases`) and expired by the store's clock.
            """
            CREATE TABLE redfire.registrations (
              service text NOT NULL, instance_id text NOT NULL, url text NOT NULL, weight int NOT NULL, version text,
              metadata jsonb NOT NULL DEFAULT '{}', lease_ms bigint, lease_expires_at timestamptz,
              registered_by text NOT NULL, registered_at timestamptz NOT NULL DEFAULT now(),
              PRIMARY KEY (service, instance_id))
            """,
        ]),
        (6, [
            // What each node's health checks and passive ejection say of the instances it does not find healthy.
            "ALTER TABLE redfire.nodes ADD COLUMN instance_health jsonb NOT NULL DEFAULT '{}'",
        ]),
        (7, [
            // `sync` rate limits (`ClusterRateSync`): each node's count per policy, key and window, written in batches.
            """
            CREATE UNLOGGED TABLE redfire.rate_sync (
              policy text NOT NULL, key text NOT NULL, window_start bigint NOT NULL, node text NOT NULL, count int NOT NULL,
              PRIMARY KEY (policy, key, window_start, node))
            """,
        ]),
        (8, [
            // The operators' audit trail, every node's (`GET /gateway/audit` in cluster mode).
            """
            CREATE TABLE redfire.audit (
              id bigserial PRIMARY KEY, at timestamptz NOT NULL, node text NOT NULL, actor text NOT NULL,
              action text NOT NULL, target text NOT NULL, result text NOT NULL)
            """,
            "CREATE INDEX audit_at ON redfire.audit (at)",
        ]),
        (9, [
            // Who pruned last, and when (`houseKeeping`): one row; the node that finds it old enough does it.
            "CREATE TABLE redfire.housekeeping (id int PRIMARY KEY CHECK (id = 1), node text NOT NULL, at timestamptz NOT NULL)",
        ]),
    ]

    /// Prunes what no node needs any more — events older than a day (a node that reconnects reads the
    /// stored state first), refresh tokens expired a day ago, nodes gone for an hour, audit entries older
    /// than 90 days, rate-limit windows an hour old — once per `interval` for the whole cluster, by
    /// whichever node finds the last run (`redfire.housekeeping`) that old first, under a
    /// transaction-scoped advisory lock: no coordinator, and a node that dies holds nothing, so the next
    /// run falls to a node alive. Correctness never depends on it. Returns whether this node did it.
    @discardableResult
    package func houseKeeping(interval: Duration = .seconds(60)) async throws -> Bool {
        let seconds = Double(interval.components.seconds) + Double(interval.components.attoseconds) / 1e18
        return try await client.withTransaction(logger: logger) { connection in
            var got = false
            for try await locked in try await connection.query("SELECT pg_try_advisory_xact_lock(\(Self.houseKeepingLock))", logger: logger)
                .decode(Bool.self) { got = locked }
            guard got else { return false }
            var due = true
            for try await recent in try await connection.query("""
                SELECT at > now() - make_interval(secs => \(seconds)) FROM redfire.housekeeping
                """, logger: logger).decode(Bool.self) { due = !recent }
            guard due else { return false }
            try await connection.query("DELETE FROM redfire.cluster_events WHERE at < now() - interval '1 day'", logger: logger)
            try await connection.query("DELETE FROM redfire.refresh_tokens WHERE expires_at < now() - interval '1 day'", logger: logger)
            try await connection.query("DELETE FROM redfire.nodes WHERE last_seen < now() - interval '1 hour'", logger: logger)
            try await connection.query("DELETE FROM redfire.audit WHERE at < now() - interval '90 days'", logger: logger)
            try await connection.query("""
                DELETE FROM redfire.rate_windows WHERE window_start < (extract(epoch FROM now() - interval '1 hour') * 1000)::bigint
                """, logger: logger)
            try await connection.query("""
                DELETE FROM redfire.rate_sync WHERE window_start < (extract(epoch FROM now() - interval '1 hour') * 1000)::bigint
                """, logger: logger)
            try await connection.query("""
                INSERT INTO redfire.housekeeping (id, node, at) VALUES (1, \(nodeName), now())
                ON CONFLICT (id) DO UPDATE SET node = excluded.node, at = excluded.at
                """, logger: logger)
            return true
        }
    }
}
