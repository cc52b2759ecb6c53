/// `consistent_hash`: a ring of virtual nodes (160 per unit of weight, capped) placed by hashing the
/// instance id, so a key keeps its instance across snapshots and removing one instance moves only the
/// keys that instance held. Requests without a key are balanced at random.
struct ConsistentHashRing: Balancer {
    let members: [PoolMember]
    /// Sorted ring points: (position, member index).
    let points: [(hash: UInt64, member: Int)]
    let fallback: WeightedRandom

    static let pointsPerWeight = 160
    static let maxPointsPerMember = 160 * 16

    init(members: [PoolMember]) {
        self.members = members
        self.fallback = WeightedRandom(members: members)
        var points: [(hash: UInt64, member: Int)] = []
        for (index, member) in members.enumerated() {
            let count = min(member.weight * Self.pointsPerWeight, Self.maxPointsPerMember)
            for replica in 0..<count {
                points.append((Self.hash("\(member.id)#\(replica)"), index))
            }
        }
        points.sort { $0.hash < $1.hash }
        self.points = points
    }

    /// FNV-1a 64 with a splitmix finaliser: stable across processes and runs (unlike `Hasher`).
    static func hash(_ text: String) -> UInt64 {
        var value: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 {
            value ^= UInt64(byte)
            value = value &* 0x0000_0100_0000_01B3
        }
        return FastRandom.mix(value)
    }

    func pick(hashKey: String?, excluding: [InstanceRuntime]) -> PoolMember? {
        guard !points.isEmpty else { return nil }
        guard let hashKey, !hashKey.isEmpty else { return fallback.pick(hashKey: nil, excluding: excluding) }
        let target = Self.hash(hashKey)
        var low = 0, high = points.count
        while low < high {
            let mid = (low + high) / 2
            if points[mid].hash < target { low = mid + 1 } else { high = mid }
        }
        for step in 0..<points.count {
            let member = members[points[(low + step) % points.count].member]
            if !isExcluded(member, excluding) { return member }
        }
        return nil
    }
}
