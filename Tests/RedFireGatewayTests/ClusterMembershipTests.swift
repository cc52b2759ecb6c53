import DemoServices
import Foundation
import Testing

@testable import RedFireGateway

/// Each node's heartbeat in the cluster store, and what an operator reads from any node: the nodes
/// alive (`/gateway/cluster`, `/metrics`), a killed one falling out within its timeout, and a node cut
/// off from its store saying so (`/ready`, `/gateway/cluster`).
@Suite("Cluster membership", .cleansUp, .timeLimit(.minutes(2)),
       .enabled(if: TestPostgres.available || TestPostgres.required, "needs PostgreSQL's server binaries (apt-get install postgresql)"))
struct ClusterMembershipTests {
    static func clusterView(_ gateway: GatewayHarness) async throws -> [String: Any] {
        let reply = try await gateway.send("/gateway/cluster", headers: AdminAPITests.auth)
        #expect(reply.status == 200, "\(reply.body)")
        return try reply.json()
    }

    /// A node that heartbeats every 200 ms and counts a node gone after 2 s.
    static func config(_ name: String, store: PostgresURL, instances: [DemoInstance]) -> GatewayConfig {
        var config = ClusterTests.config(name, store: store, instances: instances)
        config.cluster.heartbeatInterval = .milliseconds(200)
        config.cluster.nodeTimeout = .seconds(2)
        return config
    }

    /// Node C as a real process (to be killed with SIGKILL: no chance to say goodbye), heartbeating every
    /// 200 ms with a 2 s timeout; `extra` adds `cluster` keys. Returns once it listens.
    static func processNode(store: PostgresURL, instance: DemoInstance, extra: String = "") async throws -> GatewayProcess {
        let path = try CommandLineTests.writeConfig("""
            listen: "127.0.0.1:0"
            services: {user_trading: {instances: [{url: "http://127.0.0.1:\(instance.port)"}]}}
            routes: [{prefix: /api/v1/trading, service: user_trading}]
            cluster: {store: "postgres://\(store.user)@\(store.host):\(store.port)/\(store.database)", node_name: node-c,
                      heartbeat_interval: 200ms, node_timeout: 2s\(extra)}
            """)
        let node = try GatewayProcess(["serve", "--config", path])
        _ = try await node.listeningPort()
        return node
    }

    static func names(_ view: [String: Any], _ key: String = "nodes") -> [String] {
        ((view[key] as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String }
    }

    /// Housekeeping has no coordinator: whichever node finds the last run due does it. Node C (a process)
    /// prunes every second, A and B would every two — so C does every run until it is killed with
    /// SIGKILL; then the runs fall to A or B without anyone electing anyone.
    @Test func housekeepingFallsToANodeAliveWhenTheOneDoingItIsKilled() async throws {
        let store = try await TestPostgres.database()
        let instances = try await startInstances(.userTrading, count: 1, prefix: "housekeeping")
        let c = try await Self.processNode(store: store, instance: instances[0], extra: ", housekeeping_interval: 1s")
        func lastRun() throws -> (node: String, at: Double)? {
            let row = try TestPostgres.psql(store, "SELECT node, extract(epoch FROM at) FROM redfire.housekeeping")
                .trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "|")
            guard row.count == 2, let at = Double(row[1]) else { return nil }
            return (String(row[0]), at)
        }
        #expect(await waitUntil("node-c did a housekeeping run") { (try? lastRun())??.node == "node-c" })
        var config = Self.config("node-a", store: store, instances: instances)
        // Three times C's interval: C, run on a loaded machine, may be late by a second without A or B
        // taking a run from it while it is alive.
        config.cluster.houseKeepingInterval = .seconds(3)
        let accessLog = TemporaryPath.make("redfire-access", ".log")
        config.accessLog.enabled = true
        config.accessLog.path = accessLog
        let a = try await ClusterTests.start(config)
        config.cluster.nodeName = "node-b"
        config.accessLog.enabled = false
        let b = try await ClusterTests.start(config)
        // Every log line and access-log line says which node wrote it.
        #expect(c.output.contains("node=node-c") && c.output.contains("listening on"), "\(c.output)")
        #expect(try await a.send("/api/v1/trading/orders").status == 200)
        #expect(await waitUntil("node-a's access log line") {
            ((try? String(contentsOfFile: accessLog, encoding: .utf8)) ?? "").contains(#""node":"node-a","request_id":"#)
        })
        // Runs go on, about a second apart, all by C.
        let first = try #require(try lastRun())
        #expect(await waitUntil("another run") { ((try? lastRun())??.at ?? 0) > first.at })
        #expect(try lastRun()?.node == "node-c")
        let view = try await Self.clusterView(a)
        #expect((view["housekeeping"] as? [String: Any])?["node"] as? String == "node-c", "\(view)")

        kill(c.pid, SIGKILL)
        let killedAt = Date().timeIntervalSince1970
        #expect(await waitUntil("A or B took the next run") {
            guard let run = try? lastRun() else { return false }
            return run.node != "node-c"
        })
        let taken = try #require(try lastRun())
        #expect(["node-a", "node-b"].contains(taken.node))
        print("housekeeping: node-c killed; \(taken.node) ran it \(String(format: "%.2f", taken.at - killedAt)) s later")
        #expect(taken.at - killedAt < 5.25, "within 1¾ of A's and B's 3 s interval after C's last run")
        #expect(await waitUntil("B's view says who") {
            ((try? await Self.clusterView(b))?["housekeeping"] as? [String: Any])?["node"] as? String == taken.node
        })
    }

    @Test func everyNodeListsTheNodesAliveAndAKilledOneFallsOutWithinItsTimeout() async throws {
        let store = try await TestPostgres.database()
        let instances = try await startInstances(.userTrading, count: 1, prefix: "members")
        func config(_ name: String) -> GatewayConfig { Self.config(name, store: store, instances: instances) }
        let a = try await GatewayHarness.start(config("node-a"))
        let b = try await GatewayHarness.start(config("node-b"))
        await waitUntil("A and B reached the store") { a.control.cluster?.isReachable == true && b.control.cluster?.isReachable == true }
        // A third node as a real process, to be killed with SIGKILL.
        let c = try await Self.processNode(store: store, instance: instances[0])

        let all = await waitUntil("A and B list three nodes") {
            let onA = try? await Self.names(Self.clusterView(a))
            let onB = try? await Self.names(Self.clusterView(b))
            return onA == ["node-a", "node-b", "node-c"] && onB == onA
        }
        #expect(all)
        let view = try await Self.clusterView(a)
        #expect(view["enabled"] as? Bool == true && view["node"] as? String == "node-a")
        let store0 = try #require(view["store"] as? [String: Any])
        #expect(store0["reachable"] as? Bool == true && (store0["url"] as? String)?.hasPrefix("postgres://") == true, "\(store0)")
        let nodeC = try #require((view["nodes"] as? [[String: Any]])?.first { $0["name"] as? String == "node-c" })
        #expect(nodeC["version"] as? String == GatewayVersion.current && nodeC["alive"] as? Bool == true)
        #expect((nodeC["listen"] as? String)?.hasPrefix("127.0.0.1:") == true && nodeC["listen"] as? String != "127.0.0.1:0")
        let metrics = try await a.send("/metrics", headers: AdminAPITests.auth).body
        #expect(metrics.contains(#"gateway_cluster_info{node="node-a",version="\#(GatewayVersion.current)"} 1"#), "\(metrics.prefix(600))")
        #expect(metrics.contains(#"gateway_cluster_nodes_alive{node="node-a"} 3"#))
        #expect(metrics.contains(#"gateway_cluster_store_reachable{node="node-a"} 1"#))

        // Killed: within its timeout (2 s) plus a heartbeat, it is no longer alive anywhere.
        let killedAt = ContinuousClock.now
        kill(c.pid, SIGKILL)
        let gone = await waitUntil(timeout: .seconds(5), "node-c departed on A and B") {
            let onA = try? await Self.clusterView(a)
            let onB = try? await Self.clusterView(b)
            return onA.map { Self.names($0) } == ["node-a", "node-b"] && onB.map { Self.names($0) } == ["node-a", "node-b"]
                && onA.map { Self.names($0, "departed") } == ["node-c"]
        }
        #expect(gone)
        #expect(ContinuousClock.now - killedAt < .seconds(4), "departed after \(ContinuousClock.now - killedAt)")
        #expect(a.control.membership?.aliveCount == 2)

        // Stopped gracefully: it leaves at once.
        await b.shutdown()
        let left = await waitUntil(timeout: .seconds(1), "node-b left") { (try? await Self.names(Self.clusterView(a))) == ["node-a"] }
        #expect(left)
    }

    /// Nodes that disagree about an instance say so: each node's view in `/gateway/services` and the
    /// console's instance detail ("node-a: healthy · node-b: UNHEALTHY"); nothing when they agree.
    @Test func perNodeHealthDifferencesAreVisibleOnEveryNode() async throws {
        let store = try await TestPostgres.database()
        let instances = try await startInstances(.userTrading, count: 2, prefix: "views")
        func config(_ name: String) -> GatewayConfig { Self.config(name, store: store, instances: instances) }
        let a = try await GatewayHarness.start(config("node-a"))
        let b = try await GatewayHarness.start(config("node-b"))
        await waitUntil("both count two nodes") { [a, b].allSatisfy { $0.control.membership?.aliveCount == 2 } }
        let target = instances[0].id
        #expect(a.control.membership?.healthByNode(instance: target) == nil, "they agree")

        // Node B's health check fails the instance (B alone: A can still reach it).
        var check = HealthCheckConfig()
        check.unhealthyThreshold = 1
        let transition = b.registry.runtime(id: target)?.recordCheck(passed: false, reason: "connection refused", config: check, now: .now)
        #expect(transition?.to == .unhealthy)
        // Within the default wait: B publishes its view with its next heartbeat, which a machine loaded by
        // the rest of the suite has delayed past 2 s.
        let seen = await waitUntil("A sees B's view") {
            a.control.membership?.healthByNode(instance: target) == ["node-a": "healthy", "node-b": "unhealthy"]
        }
        #expect(seen)
        let services = try await a.send("/gateway/services/\(ClusterTests.service)", headers: AdminAPITests.auth)
        #expect(services.body.contains(#""health_by_node":{"node-a":"healthy","node-b":"unhealthy"}"#), "\(services.body)")
        let snapshot = a.gateway.snapshot(windowSeconds: 60)
        #expect(snapshot.instance(id: target)?.healthByNode == ["node-a": "healthy", "node-b": "unhealthy"])
        #expect(snapshot.cluster?.node == "node-a" && snapshot.cluster?.nodesAlive == ["node-a", "node-b"])
    }

    @Test func aNodeCutOffFromItsStoreSaysSoAndStaysReady() async throws {
        let instances = try await startInstances(.userTrading, count: 1, prefix: "cutoff")
        let nowhere = PostgresURL(host: "127.0.0.1", port: try TestPostgres.freePort(), user: "redfire", database: "nowhere")
        let gateway = try await GatewayHarness.start(ClusterTests.config("node-x", store: nowhere, instances: instances))
        await waitUntil("the node knows its store is unreachable") { gateway.control.cluster?.isKnownUnreachable == true }
        let ready = try await gateway.send("/ready")
        #expect(ready.status == 200)
        #expect(ready.body.contains("cluster store unreachable since"), "\(ready.body)")
        let view = try await Self.clusterView(gateway)
        let store = try #require(view["store"] as? [String: Any])
        #expect(store["reachable"] as? Bool == false && store["unreachable_since"] != nil)
        #expect(try await gateway.send("/metrics", headers: AdminAPITests.auth).body.contains(#"gateway_cluster_store_reachable{node="node-x"} 0"#))
    }

    @Test func withoutAClusterStoreTheViewSaysSo() async throws {
        let instances = try await startInstances(.userTrading, count: 1, prefix: "single")
        var config = GatewayConfig()
        config.services = [serviceConfig("user_trading", instances)]
        config.routes = [RouteConfig(prefix: "/api/v1/trading", service: "user_trading")]
        config.adminToken = AdminAPITests.token
        let gateway = try await GatewayHarness.start(config)
        #expect(try await Self.clusterView(gateway)["enabled"] as? Bool == false)
        #expect(!(try await gateway.send("/metrics", headers: AdminAPITests.auth).body.contains("gateway_cluster_")))
    }
}
