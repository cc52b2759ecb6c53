extension BalancingStrategyKind {
    /// The balancer of this strategy over a fixed list of members.
    func makeBalancer(members: [PoolMember]) -> any Balancer {
        switch self {
        case .roundRobin: return SmoothWeightedRoundRobin(members: members)
        case .random: return WeightedRandom(members: members)
        case .leastConnections: return LeastConnections(members: members)
        case .powerOfTwo: return PowerOfTwoChoices(members: members)
        case .consistentHash: return ConsistentHashRing(members: members)
        }
    }
}
