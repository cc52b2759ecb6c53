import Atomics

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
