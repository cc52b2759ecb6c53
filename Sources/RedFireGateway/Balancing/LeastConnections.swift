import Atomics

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
