import DemoServices
import Foundation
import Testing

@testable import RedFireGateway

/// `GatewaySnapshot` (what the console draws) agrees with what clients and instances saw.
@Suite("Gateway snapshot", .cleansUp, .timeLimit(.minutes(2)))
struct SnapshotTests {
    @Test func snapshotCountsRoutesServicesInstancesAndConnections() async throws {
        let instances = try await startInstances(.userTrading, count: 2)
        let gateway = try await tradingGateway(instances, configure: { $0.passiveEjection.enabled = false })
        for _ in 0..<20 { #expect(try await gateway.send("/api/v1/trading/orders").status == 200) }
        for _ in 0..<4 { #expect(try await gateway.send("/api/v1/trading/orders?status=503").status == 503) }

        let snapshot = gateway.gateway.snapshot(windowSeconds: 60)
        let route = try #require(snapshot.routes.first)
        #expect(route.figures.requests == 24)
        #expect(route.figures.status2xx == 20)
        #expect(route.figures.status5xx == 4)
        #expect(route.requestsSeries.count == 60)
        #expect(route.requestsSeries.reduce(0, +) == 24, "the sparkline holds every request of the last minute")
        #expect(route.latency.count == 24)
        #expect(route.figures.p99 != nil)
        let service = try #require(snapshot.service(named: "user_trading"))
        #expect(service.figures.requests == 24)
        #expect(service.strategy == .roundRobin)
        #expect(service.instances.map(\.id) == ["user_trading-1", "user_trading-2"])
        #expect(service.instances.reduce(0) { $0 + $1.figures.requests } == 24)
        #expect(service.instances.allSatisfy { $0.requestsLastMinute == 12 && $0.eligible })
        #expect(service.healthyCount == 2)
        #expect(snapshot.gateway.requests == 24 + 0)
        #expect(snapshot.openConnections >= 1, "the test client's keep-alive connection is open")
        #expect(!snapshot.lastReloadFailed)
        #expect(snapshot.configVersion == 1)
        #expect(snapshot.rateLimitedSeries.count == 60)
        await gateway.shutdown()
        await stopAll(instances)
    }

    @Test func snapshotShowsDrainAndEvents() async throws {
        let instances = try await startInstances(.userTrading, count: 2)
        let gateway = try await tradingGateway(instances)
        try gateway.gateway.control.drain(service: "user_trading", instance: "user_trading-2", actor: "console")
        let snapshot = gateway.gateway.snapshot(windowSeconds: 10)
        let drained = try #require(snapshot.instance(id: "user_trading-2"))
        #expect(drained.state == .drained)
        #expect(!drained.eligible)
        #expect(snapshot.service(named: "user_trading")?.healthyCount == 1)
        #expect(snapshot.events.last?.kind == .drain)
        #expect(snapshot.events.last?.message.contains("by console") == true)
        #expect(gateway.gateway.control.audit.recent(1).first?.actor == "console")
        #expect(snapshot.windowSeconds == 10)
        await gateway.shutdown()
        await stopAll(instances)
    }

    @Test func strategyPreviewSpreadsByWeightLatencyAndRing() {
        let members = [
            StrategyPreview.Member(id: "a", weight: 1, eligible: true, requests: 500, meanMicros: 1000),
            StrategyPreview.Member(id: "b", weight: 3, eligible: true, requests: 500, meanMicros: 1000),
            StrategyPreview.Member(id: "c", weight: 5, eligible: false, requests: 0, meanMicros: nil),
        ]
        #expect(StrategyPreview.shares(.roundRobin, members: members) == [0.25, 0.75, 0])
        #expect(StrategyPreview.spread(total: 1000, shares: StrategyPreview.shares(.random, members: members)) == [250, 750, 0])
        // Least connections favours the faster of two equal-weight instances (Little's law).
        let unequal = [
            StrategyPreview.Member(id: "fast", weight: 1, eligible: true, requests: 500, meanMicros: 1000),
            StrategyPreview.Member(id: "slow", weight: 1, eligible: true, requests: 500, meanMicros: 3000),
        ]
        let least = StrategyPreview.shares(.leastConnections, members: unequal)
        #expect(abs(least[0] - 0.75) < 1e-9)
        let two = StrategyPreview.shares(.powerOfTwo, members: unequal)
        #expect(two[0] > 0.5 && two[0] < least[0])
        // The ring gives equal-weight instances roughly equal arcs, and sums to one.
        let ring = StrategyPreview.shares(.consistentHash, members: unequal)
        #expect(abs(ring.reduce(0, +) - 1) < 1e-9)
        #expect(ring.allSatisfy { $0 > 0.4 && $0 < 0.6 }, "\(ring)")
        #expect(StrategyPreview.spread(total: 7, shares: [0.5, 0.5]).reduce(0, +) == 7)
    }
}
