import DemoServices
import Foundation
import Testing

@testable import RedFireGateway

/// Several gateways sharing one real PostgreSQL (`cluster.store`): operator decisions made on one node
/// reach the others within a second, a node that starts later begins from the stored state, and a node
/// that cannot reach the store refuses operator changes instead of applying them alone.
extension BulkTraffic {
@Suite("Cluster", .cleansUp, .timeLimit(.minutes(2)),
       .enabled(if: TestPostgres.available || TestPostgres.required, "needs PostgreSQL's server binaries (apt-get install postgresql)"))
struct ClusterTests {
    static let service = "user_trading"

    /// One route over `instances` (no health checks: the tests drive the state), in the cluster `store`.
    static func config(_ name: String, store: PostgresURL, instances: [DemoInstance]) -> GatewayConfig {
        var config = GatewayConfig()
        var service = serviceConfig(Self.service, instances)
        service.healthCheck.enabled = false
        config.services = [service]
        config.routes = [RouteConfig(prefix: "/api/v1/trading", service: Self.service)]
        config.adminToken = AdminAPITests.token
        config.dataDirectory = TemporaryPath.make("redfire-cluster")
        config.cluster.store = store
        config.cluster.nodeName = name
        return config
    }

    static func node(_ name: String, store: PostgresURL, instances: [DemoInstance]) async throws -> GatewayHarness {
        try await start(config(name, store: store, instances: instances))
    }

    /// Starts a gateway with a cluster configuration and waits until it has reached the store.
    static func start(_ config: GatewayConfig) async throws -> GatewayHarness {
        let gateway = try await GatewayHarness.start(config)
        await waitUntil("\(config.cluster.nodeName ?? "node") reached the cluster store") { gateway.control.cluster?.isReachable == true }
        return gateway
    }

    static func percentile(_ values: [Duration], _ fraction: Double) -> Duration {
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int((Double(sorted.count) * fraction).rounded(.up)) - 1)]
    }

    @Test func drainsUndrainsAndStrategiesReachEveryNodeWithinASecond() async throws {
        let store = try await TestPostgres.database()
        let instances = try await startInstances(.userTrading, count: 2, prefix: "cluster")
        let a = try await Self.node("node-a", store: store, instances: instances)
        let b = try await Self.node("node-b", store: store, instances: instances)
        let c = try await Self.node("node-c", store: store, instances: instances)
        let target = instances[0].id

        // 100 changes made on A, alternately drain and undrain: B and C follow each within a second.
        var delays: [Duration] = []
        for round in 0..<100 {
            let draining = round % 2 == 0
            let start = ContinuousClock.now
            if draining {
                try a.control.drain(service: Self.service, instance: target, actor: "test")
            } else {
                try a.control.undrain(service: Self.service, instance: target, actor: "test")
            }
            let reached = await waitUntil(timeout: .seconds(1), "round \(round) reached B and C") {
                [b, c].allSatisfy { $0.registry.runtime(id: target)?.isDraining == draining }
            }
            #expect(reached)
            delays.append(ContinuousClock.now - start)
        }
        let p50 = Self.percentile(delays, 0.5), p99 = Self.percentile(delays, 0.99)
        print("cluster propagation, 3 nodes, 100 changes: p50 \(p50), p99 \(p99)")
        #expect(p99 < .seconds(1))

        // Drained on A: B sends the instance no new request and says so.
        try a.control.drain(service: Self.service, instance: target, actor: "test")
        await waitUntil("B sees the drain") { b.registry.runtime(id: target)?.isDraining == true }
        let before = try #require(b.registry.runtime(id: target)).dispatched
        for _ in 0..<10 { #expect(try await b.send("/api/v1/trading/orders").status == 200) }
        #expect(try #require(b.registry.runtime(id: target)).dispatched == before)
        let services = try await b.send("/gateway/services", headers: AdminAPITests.auth)
        #expect(services.body.contains("\"id\":\"\(target)\"") && (services.body.contains("\"state\":\"drained\"") || services.body.contains("\"state\":\"draining\"")),
                "\(services.body)")

        // A strategy chosen through C's admin API reaches A and B.
        let changed = try await c.send(.PUT, "/gateway/services/\(Self.service)/strategy", headers: AdminAPITests.auth + [("Content-Type", "application/json")],
                                       body: .init(string: #"{"strategy":"least_connections"}"#))
        #expect(changed.status == 200, "\(changed.body)")
        await waitUntil(timeout: .seconds(1), "A and B use the new strategy") {
            [a, b].allSatisfy { $0.registry.state.service(named: Self.service)?.strategy == .leastConnections }
        }

        // The audit trail names the node; the other nodes' events say where a change came from.
        #expect(a.control.audit.recent().contains { $0.actor == "test@node-a" && $0.action == "drain" })
        // Every node's audit trail is the cluster's: B lists what was done on A and C.
        var audit = ""
        let shared = await waitUntil(timeout: .seconds(2), "B's audit trail lists A's and C's actions") {
            audit = (try? await b.send("/gateway/audit", headers: AdminAPITests.auth).body) ?? ""
            return audit.contains(#""scope":"cluster""#) && audit.contains(#""actor":"test@node-a""#)
                && audit.contains("@node-c") && audit.contains(#""action":"set_strategy""#)
        }
        #expect(shared, "\(audit.suffix(600))")
        #expect(b.registry.events.recent().contains { $0.message.contains("draining by test@node-a (cluster)") }, "\(b.registry.events.recent().map(\.message))")

        // A node started now begins from the stored state: drained instance and chosen strategy.
        let d = try await Self.node("node-d", store: store, instances: instances)
        #expect(d.registry.runtime(id: target)?.isDraining == true)
        #expect(d.registry.state.service(named: Self.service)?.strategy == .leastConnections)
        #expect(try TestPostgres.psql(store, "SELECT count(*) FROM redfire.cluster_events").trimmingCharacters(in: .whitespacesAndNewlines) == "102")
    }

    /// A node started while the store is down never serves as if nothing were drained: it starts from
    /// its own snapshot of the last state it applied (`operator-state.json` in its data directory).
    @Test func aNodeStartedWhileTheStoreIsDownStartsFromItsLastSnapshot() async throws {
        let store = try await TestPostgres.database()
        let instances = try await startInstances(.userTrading, count: 2, prefix: "snapshot")
        let a = try await Self.node("node-a", store: store, instances: instances)
        let bConfig = Self.config("node-b", store: store, instances: instances)
        let b = try await GatewayHarness.start(bConfig)
        await waitUntil("node-b reached the cluster store") { b.control.cluster?.isReachable == true }
        try a.control.drain(service: Self.service, instance: instances[0].id, actor: "test")
        try a.control.setStrategy(service: Self.service, strategy: .random, actor: "test")
        await waitUntil("B applied both") {
            b.registry.runtime(id: instances[0].id)?.isDraining == true && b.registry.state.service(named: Self.service)?.strategy == .random
        }
        await b.shutdown()

        var down = bConfig
        down.cluster.store = PostgresURL(host: "127.0.0.1", port: try TestPostgres.freePort(), user: "redfire", database: "nowhere")
        let restarted = try await GatewayHarness.start(down)
        #expect(restarted.control.cluster?.isReachable == false)
        #expect(restarted.registry.runtime(id: instances[0].id)?.isDraining == true)
        #expect(restarted.registry.state.service(named: Self.service)?.strategy == .random)
        let before = try #require(restarted.registry.runtime(id: instances[0].id)).dispatched
        for _ in 0..<5 { #expect(try await restarted.send("/api/v1/trading/orders").status == 200) }
        #expect(try #require(restarted.registry.runtime(id: instances[0].id)).dispatched == before)
    }

    /// Two operators acting on one instance at the same moment on two nodes: every node ends as the
    /// log's last change says (each applies every event in order, its own included).
    @Test func concurrentConflictingChangesEndTheSameOnEveryNode() async throws {
        let store = try await TestPostgres.database()
        let instances = try await startInstances(.userTrading, count: 2, prefix: "conflict")
        let a = try await Self.node("node-a", store: store, instances: instances)
        let b = try await Self.node("node-b", store: store, instances: instances)
        let target = instances[0].id
        for _ in 0..<10 {
            async let drained: Void = a.control.drain(service: Self.service, instance: target, actor: "alice")
            async let undrained: Void = b.control.undrain(service: Self.service, instance: target, actor: "bob")
            _ = try await (drained, undrained)
        }
        await waitUntil(timeout: .seconds(2), "A and B agree with the store") {
            guard let final = try? TestPostgres.psql(store, "SELECT draining FROM redfire.instance_drains WHERE instance_id = '\(target)'")
                .trimmingCharacters(in: .whitespacesAndNewlines), final == "t" || final == "f" else { return false }
            return [a, b].allSatisfy { $0.registry.runtime(id: target)?.isDraining == (final == "t") }
        }
    }

    /// Every node migrates at start; run at once they apply each version exactly once.
    @Test func migrationsRunOnceFromManyNodesAtOnce() async throws {
        let url = try await TestPostgres.database()
        let stores = try (0..<4).map { try ClusterStore(url: url, nodeName: "n\($0)", logger: GatewayHarness.quietLogger) }
        let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
            for store in stores {
                group.addTask {
                    try await withThrowingTaskGroup(of: [Int].self) { inner in
                        inner.addTask { await store.client.run(); return [] }
                        let versions = try await store.migrate()
                        inner.cancelAll()
                        return versions
                    }
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(applied.sorted() == ClusterStore.migrations.map(\.version))
        let rows = try TestPostgres.psql(url, "SELECT version FROM redfire.schema_migrations ORDER BY version")
        #expect(rows.split(separator: "\n").map(String.init) == ClusterStore.migrations.map { String($0.version) })
    }

    /// A node that cannot reach the store keeps proxying, and refuses operator changes with a message
    /// that says why, rather than applying them here alone.
    @Test func withTheStoreUnreachableOperatorChangesAreRefusedAndProxyingGoesOn() async throws {
        let instances = try await startInstances(.userTrading, count: 1, prefix: "lonely")
        let nowhere = PostgresURL(host: "127.0.0.1", port: try TestPostgres.freePort(), user: "redfire", database: "nowhere")
        let gateway = try await GatewayHarness.start(Self.config("node-x", store: nowhere, instances: instances))
        #expect(gateway.control.cluster?.isReachable == false)
        #expect(try await gateway.send("/api/v1/trading/orders").status == 200)
        let refused = try await gateway.send(.POST, "/gateway/services/\(Self.service)/instances/\(instances[0].id)/drain", headers: AdminAPITests.auth)
        #expect(refused.status == 409)
        #expect(refused.errorCode == "conflict")
        #expect(refused.body.contains("cluster store") && refused.body.contains("unreachable"), "\(refused.body)")
        #expect(gateway.registry.runtime(id: instances[0].id)?.isDraining == false)
    }

    @Test func storeURLsAreParsedAndNeverShowThePassword() throws {
        let url = try #require(PostgresURL(parsing: "postgres://gateway:s%40cret@db.internal:6432/redfire"))
        #expect(url.user == "gateway" && url.password == "s@cret" && url.host == "db.internal" && url.port == 6432 && url.database == "redfire")
        #expect(url.description == "postgres://gateway:***@db.internal:6432/redfire")
        #expect(PostgresURL(parsing: "postgresql://u@[::1]/d")?.host == "::1")
        for bad in ["mysql://u@h/d", "postgres://h/d", "postgres://u@h", "postgres://u@h:99999/d", "postgres://@h/d"] {
            #expect(PostgresURL(parsing: bad) == nil, "\(bad)")
        }
        let config = try GatewayConfig.parse(yaml: """
            services: {s: {instances: [{url: "http://127.0.0.1:9"}]}}
            routes: [{prefix: /s, service: s}]
            cluster: {store: "postgres://gateway:${PGPASSWORD}@127.0.0.1:5432/redfire", node_name: "node-a"}
            """, environment: ["PGPASSWORD": "from-env"])
        #expect(config.cluster.store?.password == "from-env" && config.cluster.nodeName == "node-a")
        #expect(throws: ConfigError.self) {
            try GatewayConfig.parse(yaml: "services: {s: {instances: [{url: \"http://127.0.0.1:9\"}]}}\nroutes: [{prefix: /s, service: s}]\ncluster: {store: \"mysql://x\"}")
        }
    }
}
}
