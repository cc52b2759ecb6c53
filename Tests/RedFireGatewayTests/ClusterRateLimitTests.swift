import DemoServices
import Foundation
import Synchronization
import Testing

@testable import RedFireGateway

/// Rate limits over three gateways: `split` gives each node its share of the limit (by the nodes
/// alive), `exact` decides each request in the cluster store and never admits more than the limit, and
/// an `exact` policy without its store refuses with 503 — or falls back to `split` when told to.
extension BulkTraffic {
@Suite("Cluster rate limits", .cleansUp, .timeLimit(.minutes(2)),
       .enabled(if: TestPostgres.available || TestPostgres.required, "needs PostgreSQL's server binaries (apt-get install postgresql)"))
struct ClusterRateLimitTests {
    /// How long each scope is hammered and at what limit: 3 s at the rates below in the suite;
    /// `scripts/rate-accuracy.sh` runs the cluster issue's measurement (100/s for 10 s, one scope at a
    /// time) by setting `REDFIRE_RATE_SECONDS` and `REDFIRE_RATE_LIMIT`.
    static let seconds = Int(ProcessInfo.processInfo.environment["REDFIRE_RATE_SECONDS"] ?? "") ?? 3
    static func limit(_ suiteDefault: Int) -> Int { Int(ProcessInfo.processInfo.environment["REDFIRE_RATE_LIMIT"] ?? "") ?? suiteDefault }

    static func config(_ name: String, store: PostgresURL, instances: [DemoInstance], policy: RateLimitPolicy) -> GatewayConfig {
        var config = ClusterTests.config(name, store: store, instances: instances)
        config.routes[0].rateLimit = policy
        config.cluster.heartbeatInterval = .milliseconds(200)
        config.cluster.nodeTimeout = .seconds(2)
        // The suite starts some seventy suites at once on two cores: a decision can wait on the store
        // far longer than on a quiet machine (1,600 decisions in 3 s alone, ~100 in a loaded full run).
        config.rateLimits.storeTimeout = .seconds(20)
        return config
    }

    static func nodes(_ store: PostgresURL, _ instances: [DemoInstance], policy: RateLimitPolicy) async throws -> [GatewayHarness] {
        var nodes: [GatewayHarness] = []
        for name in ["node-a", "node-b", "node-c"] {
            nodes.append(try await GatewayHarness.start(config(name, store: store, instances: instances, policy: policy)))
        }
        await waitUntil("every node counts three") { nodes.allSatisfy { $0.control.membership?.aliveCount == 3 } }
        return nodes
    }

    /// One client key (the loopback address) hammering the route through all nodes in turn, `clients`
    /// at a time, for `duration`: statuses counted, and the time it took.
    static func hammer(_ nodes: [GatewayHarness], for duration: Duration, clients: Int = 6) async -> (statuses: [Int: Int], elapsed: Duration) {
        let start = ContinuousClock.now
        let statuses = await withTaskGroup(of: [Int: Int].self) { group in
            for client in 0..<clients {
                group.addTask {
                    var counts: [Int: Int] = [:]
                    var turn = client
                    while ContinuousClock.now - start < duration {
                        let status = (try? await nodes[turn % nodes.count].send("/api/v1/trading/orders").status) ?? 0
                        counts[status, default: 0] += 1
                        turn += 1
                    }
                    return counts
                }
            }
            var total: [Int: Int] = [:]
            for await counts in group { total.merge(counts, uniquingKeysWith: +) }
            return total
        }
        return (statuses, ContinuousClock.now - start)
    }

    /// Three nodes on a new store, one key hammered through them at a `scope` policy of `limit`/s for
    /// `seconds` (the environment may change both).
    static func measure(_ scope: RateLimitScope, limit suiteDefault: Int, prefix: String, clients: Int = 6) async throws
        -> (store: PostgresURL, nodes: [GatewayHarness], policy: RateLimitPolicy, statuses: [Int: Int], elapsed: Duration) {
        let store = try await TestPostgres.database()
        let instances = try await startInstances(.userTrading, count: 1, prefix: prefix)
        let limit = limit(suiteDefault)
        let policy = RateLimitPolicy(name: "route", count: limit, period: .seconds(1), burst: limit, scope: scope)
        let nodes = try await nodes(store, instances, policy: policy)
        let (statuses, elapsed) = await hammer(nodes, for: .seconds(seconds), clients: clients)
        return (store, nodes, policy, statuses, elapsed)
    }

    @Test func exactNeverAdmitsMoreThanTheLimitAcrossNodes() async throws {
        let (store, nodes, policy, statuses, elapsed) = try await Self.measure(.exact, limit: 40, prefix: "exact")
        let limit = policy.count
        let admitted = statuses[200, default: 0]
        let windows = try TestPostgres.psql(store, "SELECT count(*), coalesce(max(count), 0), coalesce(sum(count), 0) FROM redfire.rate_windows")
            .trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "|").compactMap { Int($0) }
        print("exact, 3 nodes, \(limit)/s for \(elapsed): \(statuses); windows, fullest, admitted: \(windows)")
        // 503 `rate_limit_unavailable`: a decision the store did not answer within its deadline
        // (`store_timeout`, 20 s here: in CI half the decisions once waited over 5 s) on a machine loaded by the rest of the suite — refused, as documented
        // (fail closed), never admitted.
        #expect(Set(statuses.keys).isSubset(of: [200, 429, 503]), "\(statuses)")
        #expect(statuses[503, default: 0] * 10 <= statuses.values.reduce(0, +), "the store answers nearly every decision in time: \(statuses)")
        #expect(windows.count == 3 && windows[1] <= limit, "no window over the limit: \(windows)")
        #expect(windows.count == 3 && windows[2] == admitted, "every admitted request counted once: \(windows) vs \(admitted)")
        // Refused only once a window was full: at exactly the limit.
        if statuses[429, default: 0] > 0 { #expect(windows.count == 3 && windows[1] == limit, "a full window holds exactly \(limit): \(windows)") }
        // Up to the limit, or every request when fewer came (a machine loaded by the rest of the suite has
        // made as few as 36 in the three seconds).
        let requests = statuses.values.reduce(0, +)
        #expect(admitted + statuses[503, default: 0] >= min(limit, requests), "it admits up to the limit (less what timed out): \(statuses)")
        let limited = try await nodes[1].send("/api/v1/trading/orders")
        if limited.status == 429 {
            #expect(limited.headers.first(name: "Retry-After") != nil && limited.headers.first(name: "RateLimit") != nil)
        }
    }

    @Test func splitGivesEachNodeItsShareAndTheClusterTheLimit() async throws {
        let (_, nodes, policy, statuses, elapsed) = try await Self.measure(.split, limit: 30, prefix: "split", clients: 9)
        let limit = policy.count
        let admitted = Double(statuses[200, default: 0])
        // Each node: its burst share (limit/3) at once, then its rate share (limit/3 per second).
        let expected = Double(limit) + Double(limit) * (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        print("split, 3 nodes, \(limit)/s for \(elapsed): \(statuses); expected \(Int(expected)) (\(String(format: "%+.1f", (admitted / expected - 1) * 100)) %)")
        // Never more than the limit (3 requests of slack: one per node for the GCRA's discrete steps).
        #expect(admitted <= expected * 1.05 + 3, "admitted \(admitted), expected \(expected)")
        // And about the limit, when the clients asked for well more than it. Alone on this machine it
        // comes within 2 %; with the rest of the suite running, the clients' requests reach the nodes
        // unevenly and a node idle for a while has only its burst share to give: 80 % still tells a
        // share from a wrong division (1/N² or N times too much).
        if statuses[429, default: 0] >= Int(admitted) {
            #expect(admitted >= expected * 0.8, "admitted \(admitted), expected \(expected)")
        }
        let reply = try await nodes[0].send("/api/v1/trading/orders")
        if reply.status == 429 { #expect(reply.headers.first(name: "RateLimit-Policy")?.contains("q=\(policy.split(among: 3).count)") == true, "\(reply.headers)") }
    }

    @Test func exactWithoutItsStoreRefusesOrSplitsAsConfigured() async throws {
        let instances = try await startInstances(.userTrading, count: 1, prefix: "nolimitstore")
        let nowhere = PostgresURL(host: "127.0.0.1", port: try TestPostgres.freePort(), user: "redfire", database: "nowhere")
        var policy = RateLimitPolicy(name: "route", count: 5, period: .seconds(60), burst: 5, scope: .exact)
        let refusing = try await GatewayHarness.start(Self.config("node-x", store: nowhere, instances: instances, policy: policy))
        await waitUntil("X knows its store is unreachable") { refusing.control.cluster?.isKnownUnreachable == true }
        let reply = try await refusing.send("/api/v1/trading/orders")
        #expect(reply.status == 503 && reply.errorCode == "rate_limit_unavailable" && reply.headers.first(name: "Retry-After") == "1", "\(reply.body)")

        policy.whenStoreUnavailable = .split
        let splitting = try await GatewayHarness.start(Self.config("node-y", store: nowhere, instances: instances, policy: policy))
        await waitUntil("Y knows its store is unreachable") { splitting.control.cluster?.isKnownUnreachable == true }
        var statuses: [Int] = []
        for _ in 0..<8 { statuses.append(try await splitting.send("/api/v1/trading/orders").status) }
        #expect(statuses.filter { $0 == 200 }.count == 5 && statuses.filter { $0 == 429 }.count == 3, "one node counted: the whole limit, \(statuses)")
    }

    @Test func syncStaysWithinItsBoundAcrossNodes() async throws {
        let (store, nodes, policy, statuses, elapsed) = try await Self.measure(.sync, limit: 100, prefix: "sync", clients: 9)
        let limit = policy.count
        // Every node writes what it admitted within two more syncs (awaited: a loaded machine syncs late).
        let admitted = statuses[200, default: 0]
        func written() throws -> [Int] {
            try TestPostgres.psql(store, "SELECT sum(count) FROM redfire.rate_sync GROUP BY window_start ORDER BY window_start")
                .split(separator: "\n").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        }
        await waitUntil("every admission written") { ((try? written()) ?? []).reduce(0, +) >= admitted }
        let perWindow = try written()
        print("sync, 3 nodes, \(limit)/s for \(elapsed): \(statuses); per window \(perWindow)")
        #expect(Set(statuses.keys).isSubset(of: [200, 429]), "\(statuses)")
        #expect(perWindow.reduce(0, +) == admitted, "every admission written once: \(perWindow) vs \(admitted)")
        #expect(perWindow.allSatisfy { $0 <= limit * 115 / 100 }, "within the documented bound (+15 %): \(perWindow)")
        let reply = try await nodes[2].send("/api/v1/trading/orders")
        if reply.status == 429 { #expect(reply.headers.first(name: "RateLimit-Policy")?.contains("q=\(limit)") == true, "\(reply.headers)") }
    }

    /// The sync allowance on its own, three nodes hammered through (each a third of the traffic in the
    /// previous window), syncs at every phase: the worst window stays within +5 % (the documented bound
    /// is +15 %, with rounding and clocks to spare); a client that sticks to one node still gets nearly
    /// the whole limit.
    @Test func syncAllowanceBoundsTheOvershootAtEverySyncPhase() {
        func window(nodes: Int, limit: Int, phases: [Double], hammered: Set<Int>, shares: [Double]) -> Int {
            var pushed = 0, admitted = 0
            var unpushed = Array(repeating: 0, count: nodes)
            var syncs: [(at: Double, node: Int)] = []
            for node in 0..<nodes { for k in 1..<6 { syncs.append((phases[node] + 0.2 * Double(k - 1) + 0.2, node)) } }
            syncs = syncs.filter { $0.at < 1 }.sorted { $0.at < $1.at }
            for node in hammered {  // the window's first allowance, used at once
                let first = ClusterRateSync.initialAllowance(limit: limit, nodes: nodes)
                unpushed[node] += first
                admitted += first
            }
            for (_, node) in syncs {
                pushed += unpushed[node]
                unpushed[node] = 0
                guard hammered.contains(node) else { continue }
                let allowance = ClusterRateSync.allowance(limit: limit, all: pushed, share: shares[node], unpushed: 0, nodes: nodes)
                unpushed[node] += allowance
                admitted += allowance
            }
            return admitted
        }
        var worst = 0
        for step in 0..<200 {
            let offset = Double(step) / 1000
            worst = max(worst, window(nodes: 3, limit: 100, phases: [0, offset, 2 * offset].map { $0.truncatingRemainder(dividingBy: 0.2) },
                                      hammered: [0, 1, 2], shares: [1.0 / 3, 1.0 / 3, 1.0 / 3]))
        }
        #expect(worst <= 105, "worst window \(worst) of 100")
        let sticky = window(nodes: 3, limit: 100, phases: [0, 0.07, 0.14], hammered: [0], shares: [1, 0, 0])
        #expect(sticky >= 90, "one node alone admits \(sticky) of 100")
    }

    @Test func scopesAreReadAndCheckedFromTheFile() throws {
        let base = "services: {s: {instances: [{url: \"http://127.0.0.1:9\"}]}}\n"
        let config = try GatewayConfig.parse(yaml: base + """
            routes: [{prefix: /s, service: s, rate_limit: {rate: 10/s, scope: exact, when_store_unavailable: split}}]
            rate_limits: {default: {rate: 100/s, scope: split}, roles: {bot: {rate: 1000/s, scope: sync}}, sync_interval: 100ms, store_timeout: 250ms}
            """, environment: [:])
        #expect(config.routes[0].rateLimit?.scope == .exact && config.routes[0].rateLimit?.whenStoreUnavailable == .split)
        #expect(config.rateLimits.defaultPolicy?.scope == .split && config.rateLimits.rolePolicies["bot"]?.scope == .sync)
        #expect(config.rateLimits.syncInterval == .milliseconds(100) && config.rateLimits.storeTimeout == .milliseconds(250))
        #expect(RateLimitConfig().storeTimeout == .seconds(1), "1 s by default")
        let error = #expect(throws: ConfigError.self) {
            try GatewayConfig.parse(yaml: base + """
                routes: [{prefix: /s, service: s, rate_limit: {rate: 10/s, scope: sync, when_store_unavailable: split}}]
                rate_limits: {default: {rate: 100/s, scope: galaxy}, store_timeout: 1ms}
                """, environment: [:])
        }
        let text = error?.description ?? ""
        #expect(text.contains("routes[0].rate_limit.when_store_unavailable") && text.contains("exact only"), "\(text)")
        #expect(text.contains("rate_limits.default.scope") && text.contains("galaxy"), "\(text)")
        #expect(text.contains("rate_limits.store_timeout"), "\(text)")
    }
}
}
