import Atomics

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
