import Atomics

/// A lock-free pseudo-random source for balancing decisions: splitmix64 over an atomic counter.
/// Not for secrets; it only has to spread load evenly and cost a few nanoseconds.
enum FastRandom {
    private static let state = ManagedAtomic<UInt64>(UInt64(truncatingIfNeeded: ContinuousClock.now.hashValue) | 1)

    static func next() -> UInt64 {
        let value = state.wrappingIncrementThenLoad(by: 0x9E37_79B9_7F4A_7C15, ordering: .relaxed)
        return mix(value)
    }

    static func mix(_ input: UInt64) -> UInt64 {
        var z = input
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in `0..<bound` (bound > 0).
    static func below(_ bound: Int) -> Int {
        Int(truncatingIfNeeded: next().multipliedFullWidth(by: UInt64(bound)).high)
    }
}
