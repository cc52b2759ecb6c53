import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Leases of self-registered instances in a cluster. A heartbeat may reach any node: the node notes it
/// and writes the renewals of the last `flushInterval` in one statement (`lease_expires_at = now() +
/// lease`, by the store's clock). Expiry is decided in the store too: about every second, whichever
/// node takes a transaction-scoped advisory lock deletes the registrations whose lease ran out and
/// writes a `deregistered` event for each, so every node drops them together. Nodes never expire leases
/// on their own in cluster mode.
///
/// An outage must not evict every registered instance: while the store is away nothing expires
/// (nobody can reap), heartbeats are kept and written once it is back, and a node reaps only after it
/// has reached the store without a break for `recoveryGrace` — time for every node to write the
/// heartbeats it took meanwhile.
package final class ClusterLeases: Service, Sendable {
    let store: ClusterStore
    let flushInterval: Duration
    let recoveryGrace: Duration
    /// Heartbeats noted since the last write (`service`, `id`).
    private let pending = Mutex<Set<Pair>>([])

    struct Pair: Hashable, Sendable {
        var service: String
        var id: String
    }

    /// Advisory lock key of the reaper.
    static let reaperLock: Int64 = 0x5265_6446_6972_6504

    /// Shows what the store says of a registration's lease on this node (`InstanceRuntime.showClusterLease`).
    let show: @Sendable (_ service: String, _ id: String, _ remaining: Duration?) -> Void

    package init(store: ClusterStore, flushInterval: Duration = .milliseconds(250), recoveryGrace: Duration = .seconds(10),
                 show: @escaping @Sendable (_ service: String, _ id: String, _ remaining: Duration?) -> Void = { _, _, _ in }) {
        self.store = store
        self.show = show
        self.flushInterval = flushInterval
        self.recoveryGrace = recoveryGrace
    }

    /// Notes a heartbeat; it is written with the next flush (or once the store is back).
    package func heartbeat(service: String, id: String) {
        _ = pending.withLock { $0.insert(Pair(service: service, id: id)) }
    }

    package func run() async throws {
        var lastReap = ContinuousClock.now
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.flushInterval) }
            guard !Task.isShuttingDownGracefully && !Task.isCancelled else { break }
            do {
                try await flush()
                if ContinuousClock.now - lastReap >= .seconds(1) {
                    lastReap = .now
                    try await reapIfDue()
                    try await readLeases()
                }
            } catch {
                store.logger.debug("cluster leases: store not reached", metadata: ["error": .string(String(reflecting: error))])
            }
        }
        try? await flush()
    }

    /// Writes the noted heartbeats; on failure they stay noted for the next try.
    func flush() async throws {
        let batch = pending.withLock { pending -> Set<Pair> in
            defer { pending.removeAll() }
            return pending
        }
        guard !batch.isEmpty else { return }
        let services = batch.map(\.service), ids = batch.map(\.id)
        do {
            try await Deadline.run(.seconds(2)) { [store] in
                try await store.client.query("""
                    UPDATE redfire.registrations r SET lease_expires_at = now() + r.lease_ms::float8 * interval '1 millisecond'
                    FROM unnest(\(services)::text[], \(ids)::text[]) AS h(service, instance_id)
                    WHERE r.service = h.service AND r.instance_id = h.instance_id AND r.lease_ms IS NOT NULL
                    """, logger: store.logger)
            }
        } catch {
            pending.withLock { $0.formUnion(batch) }
            throw error
        }
    }

    /// Reads every registration's time left by the store's clock, for this node's console and admin API
    /// (once a second, one small query; the store decides expiry, not this).
    func readLeases() async throws {
        let rows = try await Deadline.run(.seconds(2)) { [store] in
            var rows: [(String, String, Double?)] = []
            for try await row in try await store.client.query("""
                SELECT service, instance_id, (extract(epoch FROM lease_expires_at - now()) * 1000)::float8 FROM redfire.registrations
                """, logger: store.logger).decode((String, String, Double?).self) { rows.append(row) }
            return rows
        }
        for (service, id, milliseconds) in rows {
            show(service, id, milliseconds.map { .milliseconds(max(0, Int64($0))) })
        }
    }

    /// Deletes the registrations whose lease ran out, each with its event, when this node has reached the
    /// store for `recoveryGrace` and no other node is reaping now. Returns what it removed.
    @discardableResult
    func reapIfDue() async throws -> [(service: String, id: String)] {
        guard let reachable = store.reachableFor, reachable >= recoveryGrace else { return [] }
        return try await Deadline.run(.seconds(5)) { [store] in
            try await store.client.withTransaction(logger: store.logger) { connection -> [(service: String, id: String)] in
                var got = false
                for try await locked in try await connection.query("SELECT pg_try_advisory_xact_lock(\(Self.reaperLock))", logger: store.logger)
                    .decode(Bool.self) { got = locked }
                guard got else { return [] }
                var expired: [(service: String, id: String)] = []
                let rows = try await connection.query("""
                    DELETE FROM redfire.registrations WHERE lease_expires_at < now() RETURNING service, instance_id
                    """, logger: store.logger)
                for try await (service, id) in rows.decode((String, String).self) { expired.append((service, id)) }
                for (service, id) in expired {
                    try await store.appendEvent(.deregistered(service: service, id: id, reason: "lease expired"), actor: "lease", on: connection)
                }
                return expired
            }
        }
    }
}
