import DemoServices
import Foundation
import NIOCore
import Synchronization
import Testing

@testable import RedFireGateway

/// The cluster store out of reach under load — first hung (every server process stopped with
/// SIGSTOP: connections stay open, nothing answers), then really stopped — on a PostgreSQL of this
/// test's own: proxying goes on without one failed request, login answers 503 with the envelope, and
/// once the store is back the nodes catch up without a restart and a drain propagates again.
@Suite("Cluster store outage", .cleansUp, .timeLimit(.minutes(2)),
       .enabled(if: TestPostgres.available || TestPostgres.required, "needs PostgreSQL's server binaries (apt-get install postgresql)"))
struct ClusterOutageTests {
    /// Requests through every node in turn, until stopped: statuses counted.
    final class Load: Sendable {
        final class State: Sendable {
            let counts = Mutex<[Int: Int]>([:])
            let stop = Atomic<Bool>(false)
        }
        private let state: State
        private let task: Task<Void, Never>

        init(_ nodes: [GatewayHarness], token: String) {
            let state = State()
            self.state = state
            task = Task {
                var turn = 0
                while !state.stop.load(ordering: .relaxed) {
                    let status = (try? await nodes[turn % nodes.count].send("/api/v1/trading/orders", headers: [("Authorization", "Bearer \(token)")],
                                                                            timeout: .seconds(10)).status) ?? 0
                    state.counts.withLock { $0[status, default: 0] += 1 }
                    turn += 1
                }
            }
        }

        func finish() async -> [Int: Int] {
            state.stop.store(true, ordering: .relaxed)
            await task.value
            return state.counts.withLock { $0 }
        }
    }

    @Test func proxyingGoesOnWhileTheStoreHangsOrStopsAndTheNodesCatchUpAfter() async throws {
        let server = try TestPostgres.startServer()
        let store = try server.database()
        let instances = try await startInstances(.userTrading, count: 2, prefix: "outage")
        let a = try await ClusterAuthTests.node("node-a", store: store, instances: instances)
        let b = try await ClusterAuthTests.node("node-b", store: store, instances: instances)
        #expect(try await ClusterAuthTests.post(a, "/api/v1/auth/register", #"{"username":"alice","password":"correct-horse-battery"}"#).status == 201)
        let session = try await ClusterAuthTests.login(b)
        let login = #"{"username":"alice","password":"correct-horse-battery"}"#

        for outage in ["hung (SIGSTOP)", "stopped (pg_ctl stop)"] {
            let load = Load([a, b], token: session.access)
            try await Task.sleep(for: .milliseconds(300))
            if outage.hasPrefix("hung") { try server.pause() } else { try server.stopProcess() }
            let noticed = await waitUntil(timeout: .seconds(15), "\(outage): both nodes know") {
                [a, b].allSatisfy { $0.control.cluster?.isKnownUnreachable == true }
            }
            #expect(noticed)
            // Logins are refused with the envelope rather than issuing a token that is not stored.
            let refused = try await ClusterAuthTests.post(a, "/api/v1/auth/login", login)
            #expect(refused.status == 503 && refused.errorCode == "auth_unavailable" && refused.body.contains("request_id"), "\(outage): \(refused.body)")
            #expect(try await a.send("/ready").body.contains("cluster store unreachable since"))
            try await Task.sleep(for: .milliseconds(500))
            if outage.hasPrefix("hung") { try server.resume() } else { try server.startProcess() }
            let back = await waitUntil(timeout: .seconds(15), "\(outage): both nodes reach the store again") {
                [a, b].allSatisfy { $0.control.cluster?.isReachable == true }
            }
            #expect(back)
            let statuses = await load.finish()
            print("cluster store \(outage) under load: \(statuses)")
            #expect(statuses.keys.allSatisfy { $0 == 200 } && statuses[200, default: 0] > 10, "\(outage): \(statuses)")

            // Back: a drain made now propagates, and logins work again.
            let target = instances[outage.hasPrefix("hung") ? 0 : 1].id
            try a.control.drain(service: ClusterTests.service, instance: target, actor: "test")
            let drained = await waitUntil(timeout: .seconds(2), "\(outage): the drain reaches B") { b.registry.runtime(id: target)?.isDraining == true }
            #expect(drained)
            try a.control.undrain(service: ClusterTests.service, instance: target, actor: "test")
            await waitUntil("\(outage): the undrain reaches B") { b.registry.runtime(id: target)?.isDraining == false }
            let again = try await ClusterAuthTests.post(b, "/api/v1/auth/login", login)
            #expect(again.status == 200, "\(outage): \(again.body)")
        }
        try? server.stopProcess()
    }
}
