import Testing

@testable import RedFireGateway

@Suite("Balancing strategies")
struct BalancerTests {
    static func members(_ weights: [Int]) -> [PoolMember] {
        weights.enumerated().map { index, weight in
            PoolMember(runtime: InstanceRuntime(id: "i\(index + 1)", serviceName: "svc"),
                       url: UpstreamURL(host: "127.0.0.1", port: 9000 + index), weight: weight, version: nil, metadata: [:])
        }
    }

    static func counts(_ balancer: any Balancer, _ n: Int, key: (Int) -> String? = { _ in nil }) -> [String: Int] {
        var counts: [String: Int] = [:]
        for index in 0..<n { counts[balancer.pick(hashKey: key(index), excluding: [])!.id, default: 0] += 1 }
        return counts
    }

    @Test func roundRobinRespectsWeightsExactly() {
        let balancer = SmoothWeightedRoundRobin(members: Self.members([1, 2]))
        #expect(Self.counts(balancer, 300) == ["i1": 100, "i2": 200])
    }

    @Test func roundRobinIsSmooth() {
        // nginx's example: weights 5,1,1 never send five in a row to the heavy instance.
        let balancer = SmoothWeightedRoundRobin(members: Self.members([5, 1, 1]))
        let sequence = (0..<7).map { _ in balancer.pick()!.id }
        #expect(sequence == ["i1", "i1", "i2", "i1", "i3", "i1", "i1"])
    }

    @Test func roundRobinSkipsExcludedInstances() {
        let members = Self.members([1, 1, 1])
        let balancer = SmoothWeightedRoundRobin(members: members)
        for _ in 0..<10 {
            #expect(balancer.pick(hashKey: nil, excluding: [members[0].runtime])?.id != "i1")
        }
        #expect(balancer.pick(hashKey: nil, excluding: members.map(\.runtime)) == nil)
    }

    @Test func weightedRandomFollowsWeights() {
        let counts = Self.counts(WeightedRandom(members: Self.members([1, 3])), 20_000)
        let share = Double(counts["i2"] ?? 0) / 20_000
        #expect(share > 0.72 && share < 0.78, "i2 share \(share)")
    }

    /// `count` requests in flight on `runtime`, for as long as the holds live.
    static func load(_ runtime: InstanceRuntime, _ count: Int) -> [InFlightHold] {
        (0..<count).map { _ in runtime.dispatch().held() }
    }

    @Test func leastConnectionsAvoidsBusyInstances() {
        let members = Self.members([1, 1, 1])
        var holds: [InFlightHold] = []
        holds += Self.load(members[0].runtime, 5)
        holds += Self.load(members[2].runtime, 1)
        let balancer = LeastConnections(members: members)
        for _ in 0..<20 { #expect(balancer.pick()?.id == "i2") }
        // Ties rotate instead of always choosing the first.
        holds += Self.load(members[1].runtime, 1)
        let picked = Set((0..<20).map { _ in balancer.pick()!.id })
        #expect(picked == ["i2", "i3"])
        withExtendedLifetime(holds) {}
    }

    @Test func leastConnectionsWeighsLoadByWeight() {
        let members = Self.members([1, 4])
        var holds: [InFlightHold] = []
        holds += Self.load(members[0].runtime, 1)
        holds += Self.load(members[1].runtime, 3)
        // 3 in flight on weight 4 is lighter than 1 on weight 1.
        #expect(LeastConnections(members: members).pick()?.id == "i2")
        withExtendedLifetime(holds) {}
    }

    @Test func powerOfTwoPrefersTheLessLoaded() {
        let members = Self.members([1, 1])
        var holds: [InFlightHold] = []
        holds += Self.load(members[0].runtime, 10)
        let balancer = PowerOfTwoChoices(members: members)
        for _ in 0..<50 { #expect(balancer.pick()?.id == "i2") }
        withExtendedLifetime(holds) {}
    }

    @Test func consistentHashKeepsKeysAndMovesOnlyTheRemovedInstancesKeys() {
        let members = Self.members([1, 1, 1, 1])
        let ring = ConsistentHashRing(members: members)
        let keys = (0..<2000).map { "account-\($0)" }
        let before = Dictionary(uniqueKeysWithValues: keys.map { ($0, ring.pick(hashKey: $0, excluding: [])!.id) })
        // Same key, same instance, every time.
        for key in keys.prefix(100) { #expect(ring.pick(hashKey: key, excluding: [])?.id == before[key]) }
        // Every instance gets a fair share (160 points each).
        let shares = Dictionary(grouping: before.values, by: { $0 }).mapValues(\.count)
        #expect(shares.values.allSatisfy { $0 > 350 && $0 < 650 }, "\(shares)")

        let smaller = ConsistentHashRing(members: members.filter { $0.id != "i3" })
        for key in keys {
            let after = smaller.pick(hashKey: key, excluding: [])!.id
            if before[key] != "i3" { #expect(after == before[key], "key \(key) moved from \(before[key]!) to \(after)") }
        }
    }

    @Test func consistentHashWithoutKeyStillBalances() {
        let counts = Self.counts(ConsistentHashRing(members: Self.members([1, 1])), 1000)
        #expect(counts.count == 2)
    }

    @Test func emptyPoolsPickNothing() {
        for kind in BalancingStrategyKind.allCases {
            #expect(kind.makeBalancer(members: []).pick(hashKey: "k", excluding: []) == nil)
        }
    }
}
