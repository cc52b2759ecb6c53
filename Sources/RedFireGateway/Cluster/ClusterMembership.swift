import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// A node of the cluster as the others see it (`GET /gateway/cluster`).
package struct ClusterNode: Sendable, Equatable, Encodable {
    package var name: String
    package var version: String
    package var listen: String
    package var startedAt: Date
    package var lastSeen: Date
    /// Seconds since its last heartbeat, by the store's clock.
    package var secondsSinceSeen: Double
    package var alive: Bool
    package var requestsPerSecond: Double
    /// Instances this node does not find healthy, by id: `unhealthy` (its health checks) or `ejected`
    /// (passive ejection). Every other instance is healthy (or not checked) on that node.
    package var instanceHealth: [String: String] = [:]
}

/// Each node's heartbeat in the cluster store (`redfire.nodes`), and the cluster's members as last
/// read: every `interval` a node writes its row (version, listen address, its request rate) and reads
/// everyone's. A node is alive while its last heartbeat is younger than `timeout` — measured by the
/// store's clock, so nodes' clocks do not matter. A node that stops gracefully removes its row; one
/// killed falls out after `timeout`. While the store is unreachable the last list stays, marked stale.
package final class ClusterMembership: Service, Sendable {
    let store: ClusterStore
    /// This node's address as bound; nil until it listens (a node joins once it accepts connections).
    let listen: @Sendable () -> String?
    let interval: Duration
    let timeout: Duration
    /// This node's requests per second (over the last ten seconds).
    let rate: @Sendable () -> Double
    /// The instances this node does not find healthy (`ClusterNode.instanceHealth`).
    let health: @Sendable () -> [String: String]
    /// How often the cluster prunes (`ClusterStore.houseKeeping`); a node tries four times as often, so
    /// the run falls to another node within 1¼ intervals when the one that did it dies.
    let houseKeepingInterval: Duration
    private let state = Mutex<(nodes: [ClusterNode], readAt: Date?, houseKeeping: HouseKeeping?)>(([], nil, nil))

    /// Who pruned last and when (`GET /gateway/cluster`).
    package struct HouseKeeping: Sendable, Equatable, Encodable {
        package var node: String
        package var at: Date
    }
    private let startedAt = Date()

    package init(store: ClusterStore, listen: @escaping @Sendable () -> String?, interval: Duration = .seconds(1), timeout: Duration = .seconds(5),
                 houseKeepingInterval: Duration = .seconds(60),
                 health: @escaping @Sendable () -> [String: String] = { [:] }, rate: @escaping @Sendable () -> Double) {
        self.health = health
        self.houseKeepingInterval = houseKeepingInterval
        self.store = store
        self.listen = listen
        self.interval = interval
        self.timeout = timeout
        self.rate = rate
    }

    /// Every node seen within the last hour, alive ones first, as last read.
    package var nodes: [ClusterNode] { state.withLock { $0.nodes } }
    /// When the list was last read from the store (nil: never).
    package var readAt: Date? { state.withLock { $0.readAt } }
    /// The cluster's last housekeeping run, as last read (nil: none yet).
    package var lastHouseKeeping: HouseKeeping? { state.withLock { $0.houseKeeping } }
    /// The nodes alive now (this one at least).
    package var aliveCount: Int { max(1, nodes.filter(\.alive).count) }

    /// What every node alive says of an instance (`healthy` unless it reported otherwise), by node —
    /// nil when they all agree it is healthy.
    package func healthByNode(instance id: String) -> [String: String]? {
        let alive = nodes.filter(\.alive)
        guard alive.contains(where: { $0.instanceHealth[id] != nil }) else { return nil }
        return Dictionary(uniqueKeysWithValues: alive.map { ($0.name, $0.instanceHealth[id] ?? "healthy") })
    }

    package func run() async throws {
        var lastAttempt: ContinuousClock.Instant?
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                // A beat waiting for a store that does not answer must not hold the node's shutdown; one
                // that answers finishes (a query cancelled midway costs the pool its connection).
                if store.isReachable { try await beat() } else { try await cancelWhenGracefulShutdown { try await self.beat() } }
                // Housekeeping: done by whichever node finds the last run old enough first.
                if lastAttempt.map({ ContinuousClock.now - $0 >= houseKeepingInterval / 4 }) ?? true {
                    lastAttempt = .now
                    _ = try await cancelWhenGracefulShutdown {
                        try await Deadline.run(.seconds(10)) { [store = self.store, interval = self.houseKeepingInterval] in try await store.houseKeeping(interval: interval) }
                    }
                }
            } catch {
                store.logger.debug("cluster heartbeat failed", metadata: ["error": .string(String(reflecting: error))])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
        }
        // Leaving: the others stop counting this node at once (a rate limit split by node count grows back).
        // Not tried while the store is known to be away: the others' timeout says it instead.
        guard store.isReachable else { return }
        _ = try? await Deadline.run(.seconds(2)) { [store] in
            try await store.client.query("DELETE FROM redfire.nodes WHERE name = \(store.nodeName)", logger: store.logger)
        }
    }

    /// Writes this node's heartbeat (once it listens) and reads every node's, one round trip each.
    func beat() async throws {
        let requestsPerSecond = rate()
        let listen = listen()
        let healthJSON = String(decoding: (try? JSONEncoder().encode(health())) ?? Data("{}".utf8), as: UTF8.self)
        let timeoutSeconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        let (nodes, houseKeeping) = try await Deadline.run(.seconds(3)) { [store, listen, startedAt] in
            try await store.client.withConnection { connection -> ([ClusterNode], HouseKeeping?) in
                if let listen { try await connection.query("""
                    INSERT INTO redfire.nodes (name, version, listen, started_at, last_seen, requests_per_second, instance_health)
                    VALUES (\(store.nodeName), \(GatewayVersion.current), \(listen), \(startedAt), now(), \(requestsPerSecond), \(healthJSON)::jsonb)
                    ON CONFLICT (name) DO UPDATE SET version = excluded.version, listen = excluded.listen, started_at = excluded.started_at,
                      last_seen = now(), requests_per_second = excluded.requests_per_second, instance_health = excluded.instance_health
                    """, logger: store.logger) }
                var nodes: [ClusterNode] = []
                let rows = try await connection.query("""
                    SELECT name, version, listen, started_at, last_seen, extract(epoch FROM now() - last_seen)::float8, requests_per_second,
                      instance_health::text
                    FROM redfire.nodes WHERE last_seen > now() - interval '1 hour' ORDER BY name
                    """, logger: store.logger)
                for try await (name, version, listen, started, seen, age, rate, health)
                    in rows.decode((String, String, String, Date, Date, Double, Double, String).self) {
                    nodes.append(ClusterNode(name: name, version: version, listen: listen, startedAt: started, lastSeen: seen,
                                             secondsSinceSeen: age, alive: age < timeoutSeconds, requestsPerSecond: rate,
                                             instanceHealth: (try? JSONDecoder().decode([String: String].self, from: Data(health.utf8))) ?? [:]))
                }
                var houseKeeping: HouseKeeping?
                for try await (node, at) in try await connection.query("SELECT node, at FROM redfire.housekeeping", logger: store.logger)
                    .decode((String, Date).self) { houseKeeping = HouseKeeping(node: node, at: at) }
                return (nodes, houseKeeping)
            }
        }
        state.withLock { $0 = (nodes.sorted { ($0.alive ? 0 : 1, $0.name) < ($1.alive ? 0 : 1, $1.name) }, Date(), houseKeeping) }
    }
}
