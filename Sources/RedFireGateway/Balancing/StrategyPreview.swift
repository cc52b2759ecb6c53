/// How a service's recent traffic would have spread over its instances under each strategy, estimated
/// from what was recorded per instance (requests and mean latency over the last minute). The console
/// shows it before an operator confirms a strategy switch.
///
/// - round_robin, random: in proportion to weight (random in expectation).
/// - least_connections: it keeps in-flight per unit of weight level; by Little's law (in flight =
///   rate × latency) each instance's rate is then proportional to weight ÷ mean latency.
/// - power_of_two: halfway between random and least connections (two weighted draws, fewer in flight wins).
/// - consistent_hash: each instance's share of the hash ring (keyed requests keep their instance).
public enum StrategyPreview {
    public struct Member: Sendable, Equatable {
        public var id: String
        public var weight: Int
        /// Whether the balancer may choose it now; ineligible members get no share.
        public var eligible: Bool
        public var requests: Int
        public var meanMicros: Double?

        public init(id: String, weight: Int, eligible: Bool, requests: Int, meanMicros: Double?) {
            self.id = id
            self.weight = weight
            self.eligible = eligible
            self.requests = requests
            self.meanMicros = meanMicros
        }
    }

    /// Fractions (summing to 1 over eligible members, or all zero when none is eligible), in member order.
    public static func shares(_ strategy: BalancingStrategyKind, members: [Member]) -> [Double] {
        let weights = members.map { $0.eligible ? Double(max($0.weight, 0)) : 0 }
        switch strategy {
        case .roundRobin, .random:
            return normalised(weights)
        case .leastConnections:
            return normalised(capacity(members, weights))
        case .powerOfTwo:
            let random = normalised(weights)
            let least = normalised(capacity(members, weights))
            return zip(random, least).map { ($0 + $1) / 2 }
        case .consistentHash:
            return ringShares(members)
        }
    }

    /// Requests of the last minute spread by `shares` (rounded; the total is kept).
    public static func spread(total: Int, shares: [Double]) -> [Int] {
        var counts = shares.map { Int(($0 * Double(total)).rounded(.down)) }
        var left = total - counts.reduce(0, +)
        let order = shares.indices.sorted { shares[$0] * Double(total) - Double(counts[$0]) > shares[$1] * Double(total) - Double(counts[$1]) }
        for index in order where left > 0 && shares[index] > 0 {
            counts[index] += 1
            left -= 1
        }
        return counts
    }

    private static func capacity(_ members: [Member], _ weights: [Double]) -> [Double] {
        let known = members.compactMap { $0.meanMicros }.filter { $0 > 0 }
        let typical = known.isEmpty ? 1 : known.reduce(0, +) / Double(known.count)
        return zip(members, weights).map { member, weight in
            weight / max(member.meanMicros ?? typical, 1)
        }
    }

    private static func normalised(_ values: [Double]) -> [Double] {
        let total = values.reduce(0, +)
        guard total > 0 else { return values.map { _ in 0 } }
        return values.map { $0 / total }
    }

    private static func ringShares(_ members: [Member]) -> [Double] {
        var points: [(hash: UInt64, member: Int)] = []
        for (index, member) in members.enumerated() where member.eligible && member.weight > 0 {
            let count = min(member.weight * ConsistentHashRing.pointsPerWeight, ConsistentHashRing.maxPointsPerMember)
            for replica in 0..<count { points.append((ConsistentHashRing.hash("\(member.id)#\(replica)"), index)) }
        }
        guard !points.isEmpty else { return members.map { _ in 0 } }
        points.sort { $0.hash < $1.hash }
        var arcs = Array(repeating: 0.0, count: members.count)
        // A key goes to the first point at or after its hash: point i owns (previous point, point i].
        for (position, point) in points.enumerated() {
            let previous = position == 0 ? points[points.count - 1].hash : points[position - 1].hash
            arcs[point.member] += Double(point.hash &- previous)
        }
        if points.count == 1 { arcs[points[0].member] = 1 }
        return normalised(arcs)
    }
}
