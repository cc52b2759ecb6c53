import DemoServices
import Foundation
import NIOCore
import Testing

@testable import RedFireGateway

/// Self-registered instances in a cluster: registered on one node, renewed by heartbeats to another,
/// served by a third; expired for every node at once when the heartbeats stop; deregistered anywhere,
/// gone everywhere; and a node that starts later sees them.
extension BulkTraffic {
@Suite("Cluster registrations", .cleansUp, .timeLimit(.minutes(2)),
       .enabled(if: TestPostgres.available || TestPostgres.required, "needs PostgreSQL's server binaries (apt-get install postgresql)"))
struct ClusterRegistrationTests {
    static func node(_ name: String, store: PostgresURL, instances: [DemoInstance]) async throws -> GatewayHarness {
        var config = ClusterTests.config(name, store: store, instances: instances)
        config.cluster.heartbeatInterval = .milliseconds(200)
        config.cluster.nodeTimeout = .seconds(1)  // leases are reaped 2 s after a node reached the store
        return try await ClusterTests.start(config)
    }

    static func register(_ gateway: GatewayHarness, _ instance: DemoInstance, lease: String?) async throws -> GatewayHarness.Reply {
        let lease = lease.map { #","lease_ttl":"\#($0)""# } ?? ""
        return try await gateway.send(.POST, "/gateway/services/\(ClusterTests.service)/instances",
                                      headers: AdminAPITests.auth + [("Content-Type", "application/json")],
                                      body: ByteBuffer(string: #"{"id":"\#(instance.id)","url":"http://127.0.0.1:\#(instance.port)"\#(lease)}"#))
    }

    @Test func registeredOnOneNodeRenewedOnAnotherServedByAThirdAndExpiredEverywhere() async throws {
        let store = try await TestPostgres.database()
        let file = try await startInstances(.userTrading, count: 1, prefix: "file")
        let registered = try await startInstances(.userTrading, count: 1, prefix: "self")[0]
        let a = try await Self.node("node-a", store: store, instances: file)
        let b = try await Self.node("node-b", store: store, instances: file)
        let c = try await Self.node("node-c", store: store, instances: file)

        let reply = try await Self.register(a, registered, lease: "3s")
        #expect(reply.status == 201, "\(reply.body)")
        let everywhere = await waitUntil(timeout: .seconds(1), "B and C know the instance") {
            [b, c].allSatisfy { $0.registry.runtime(id: registered.id) != nil }
        }
        #expect(everywhere)
        // Served by C: with the file's instance drained (from A), C sends everything to the registered one.
        try a.control.drain(service: ClusterTests.service, instance: file[0].id, actor: "test")
        await waitUntil("C sees the drain") { c.registry.runtime(id: file[0].id)?.isDraining == true }
        for _ in 0..<4 { #expect(try await c.send("/api/v1/trading/orders").instance == registered.id) }

        // Heartbeats to B alone keep it registered on every node, well past its 3 s lease.
        let heartbeatPath = "/gateway/services/\(ClusterTests.service)/instances/\(registered.id)/heartbeat"
        let until = ContinuousClock.now + .seconds(4)
        while ContinuousClock.now < until {
            #expect(try await b.send(.PUT, heartbeatPath, headers: AdminAPITests.auth).status == 200)
            try await Task.sleep(for: .milliseconds(250))
        }
        #expect([a, b, c].allSatisfy { $0.registry.runtime(id: registered.id) != nil }, "renewed through B")
        // C, which took no heartbeat, shows the lease's time left as the store has it (console, admin API).
        let shown = try await c.send("/gateway/services/\(ClusterTests.service)", headers: AdminAPITests.auth).json()
        let entry = ((shown["instances"] as? [[String: Any]]) ?? []).first { $0["id"] as? String == registered.id }
        let left = try #require(entry?["lease_expires_in_ms"] as? Int, "\(shown)")
        // Read once a second, so up to a second behind the last renewal.
        #expect((1...3_000).contains(left), "time left \(left) ms of a 3 s lease renewed every 250 ms")
        #expect(try #require(c.registry.runtime(id: registered.id)).leaseExpiresAt != nil)

        // Heartbeats stop: the lease runs out in the store, and every node drops the instance together.
        let stopped = ContinuousClock.now
        let gone = await waitUntil(timeout: .seconds(8), "expired on every node") {
            [a, b, c].allSatisfy { $0.registry.runtime(id: registered.id) == nil }
        }
        #expect(gone)
        print("cluster lease expiry: gone on every node \(ContinuousClock.now - stopped) after the last heartbeat (lease 3 s)")
        #expect(a.registry.events.recent().contains { $0.message.contains("\(registered.id) left: lease expired") })
        #expect(try TestPostgres.psql(store, "SELECT count(*) FROM redfire.registrations").trimmingCharacters(in: .whitespacesAndNewlines) == "0")
        #expect(try await b.send(.PUT, heartbeatPath, headers: AdminAPITests.auth).status == 404)
    }

    @Test func deregisteredAnywhereGoneEverywhereAndANodeStartedLaterSeesTheRegistrations() async throws {
        let store = try await TestPostgres.database()
        let file = try await startInstances(.userTrading, count: 1, prefix: "file2")
        let extra = try await startInstances(.userTrading, count: 2, prefix: "self2")
        let a = try await Self.node("node-a", store: store, instances: file)
        let b = try await Self.node("node-b", store: store, instances: file)
        #expect(try await Self.register(a, extra[0], lease: nil).status == 201)
        #expect(try await Self.register(b, extra[1], lease: nil).status == 201)
        await waitUntil("both nodes know both") { [a, b].allSatisfy { n in extra.allSatisfy { n.registry.runtime(id: $0.id) != nil } } }

        let d = try await Self.node("node-d", store: store, instances: file)
        let seen = await waitUntil(timeout: .seconds(1), "D starts with both registrations") { extra.allSatisfy { d.registry.runtime(id: $0.id) != nil } }
        #expect(seen)

        let removed = try await b.send(.DELETE, "/gateway/services/\(ClusterTests.service)/instances/\(extra[0].id)", headers: AdminAPITests.auth)
        #expect(removed.status == 204, "\(removed.body)")
        let gone = await waitUntil(timeout: .seconds(1), "gone on A and D") { [a, d].allSatisfy { $0.registry.runtime(id: extra[0].id) == nil } }
        #expect(gone)
        #expect(d.registry.runtime(id: extra[1].id) != nil)
        // Registering while the store is unreachable would reach one node only: refused.
        let nowhere = PostgresURL(host: "127.0.0.1", port: try TestPostgres.freePort(), user: "redfire", database: "nowhere")
        let x = try await GatewayHarness.start(ClusterTests.config("node-x", store: nowhere, instances: file))
        let refused = try await Self.register(x, extra[0], lease: "5s")
        #expect(refused.status == 409 && refused.body.contains("unreachable"), "\(refused.body)")
    }
}
}
