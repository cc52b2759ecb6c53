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
