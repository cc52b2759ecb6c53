import Atomics

/// `round_robin`: nginx's smooth weighted round robin. With weights 5:1:1 it sends a,a,b,a,c,a,a — never a
/// burst of five to one instance. The whole cycle is computed once per snapshot, so a pick is one
/// atomic increment and an array read.
struct SmoothWeightedRoundRobin: Balancer {
    let members: [PoolMember]
    let schedule: [Int]
    let cursor = ManagedAtomic<Int>(0)

    /// Cycles longer than this are scaled down proportionally (weights are at most 1000 each).
    static let maxCycle = 1 << 16

    init(members: [PoolMember]) {
        self.members = members
        self.schedule = Self.buildSchedule(weights: members.map(\.weight))
    }

    static func buildSchedule(weights: [Int]) -> [Int] {
        guard !weights.isEmpty else { return [] }
        let divisor = weights.reduce(0) { gcd($0, $1) }
        var scaled = weights.map { $0 / max(divisor, 1) }
        var total = scaled.reduce(0, +)
        if total > maxCycle {
            scaled = scaled.map { max(1, $0 * maxCycle / total) }
            total = scaled.reduce(0, +)
        }
        var current = Array(repeating: 0, count: scaled.count)
        var schedule: [Int] = []
        schedule.reserveCapacity(total)
        for _ in 0..<total {
            var best = 0
            for index in scaled.indices {
                current[index] += scaled[index]
                if current[index] > current[best] { best = index }
            }
            current[best] -= total
            schedule.append(best)
        }
        return schedule
    }

    private static func gcd(_ a: Int, _ b: Int) -> Int {
        var (a, b) = (a, b)
        while b != 0 { (a, b) = (b, a % b) }
        return a
    }

    func pick(hashKey: String?, excluding: [InstanceRuntime]) -> PoolMember? {
        guard !schedule.isEmpty else { return nil }
        let start = cursor.loadThenWrappingIncrement(ordering: .relaxed)
        for step in 0..<schedule.count {
            let member = members[schedule[((start &+ step) & Int.max) % schedule.count]]
            if !isExcluded(member, excluding) { return member }
        }
        return nil
    }
}

/// `random`: weighted random, by binary search over cumulative weights.
struct WeightedRandom: Balancer {
    let members: [PoolMember]
    let cumulative: [Int]

    init(members: [PoolMember]) {
        self.members = members
        var running = 0
        self.cumulative = members.map { running += $0.weight; return running }
    }

    func pick(hashKey: String?, excluding: [InstanceRuntime]) -> PoolMember? {
        guard let total = cumulative.last, total > 0 else { return nil }
        if excluding.isEmpty { return members[index(for: FastRandom.below(total))] }
        let remaining = members.filter { !isExcluded($0, excluding) }
        guard !remaining.isEmpty else { return nil }
        return WeightedRandom(members: remaining).pick(hashKey: nil, excluding: [])
    }

    private func index(for point: Int) -> Int {
        var low = 0, high = cumulative.count - 1
        while low < high {
            let mid = (low + high) / 2
            if cumulative[mid] > point { high = mid } else { low = mid + 1 }
        }
        return low
    }
}

/// `least_connections`: the member with the fewest requests in flight relative to its weight. Ties are
/// broken by rotating the starting point, so idle members share work instead of the first taking all.
struct LeastConnections: Balancer {
    let members: [PoolMember]
    let rotation = ManagedAtomic<Int>(0)

    func pick(hashKey: String?, excluding: [InstanceRuntime]) -> PoolMember? {
        guard !members.isEmpty else { return nil }
        let start = rotation.loadThenWrappingIncrement(ordering: .relaxed) & Int.max
        var best: PoolMember?
        var bestLoad = 0
        for step in 0..<members.count {
            let member = members[(start + step) % members.count]
            if isExcluded(member, excluding) { continue }
            let load = member.runtime.inFlight
            // Compare load/weight without division: a.load * b.weight < b.load * a.weight.
            if let current = best {
                if load * current.weight < bestLoad * member.weight { best = member; bestLoad = load }
            } else {
                best = member
                bestLoad = load
            }
        }
        return best
    }
}

/// `power_of_two`: two members drawn at random (weighted), the one with fewer in flight relative to its
/// weight wins. Nearly as good as least connections, without scanning the whole pool.
struct PowerOfTwoChoices: Balancer {
    let random: WeightedRandom
    let members: [PoolMember]

    init(members: [PoolMember]) {
        self.members = members
        self.random = WeightedRandom(members: members)
    }

    func pick(hashKey: String?, excluding: [InstanceRuntime]) -> PoolMember? {
        guard let first = random.pick(hashKey: nil, excluding: excluding) else { return nil }
        guard members.count > 1, let second = secondChoice(other: first, excluding: excluding) else { return first }
        let a = first.runtime.inFlight * second.weight
        let b = second.runtime.inFlight * first.weight
        return b < a ? second : first
    }

    /// A second weighted draw different from `other`. Redrawing a few times avoids building an
    /// exclusion list (an allocation) on every request; only unlucky or excluding picks fall back to it.
    private func secondChoice(other: PoolMember, excluding: [InstanceRuntime]) -> PoolMember? {
        if excluding.isEmpty {
            for _ in 0..<4 {
                if let candidate = random.pick(hashKey: nil, excluding: []), candidate.runtime !== other.runtime { return candidate }
            }
        }
        return random.pick(hashKey: nil, excluding: excluding + [other.runtime])
    }
}
