import Synchronization

/// A bounded map split over 16 independently locked shards, so concurrent requests rarely meet on a
/// lock. A shard that reaches its capacity is cleared (entries are cheap to recompute): memory stays
/// bounded whatever the number of distinct keys.
final class ShardedCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private final class Shard: Sendable {
        let entries = Mutex<[Key: Value]>([:])
    }
    private let shards: [Shard]
    private let shardCapacity: Int

    init(shards: Int = 16, capacityPerShard: Int = 4096) {
        self.shards = (0..<shards).map { _ in Shard() }
        self.shardCapacity = capacityPerShard
    }

    private func shard(_ key: Key) -> Shard {
        shards[Int(UInt(bitPattern: key.hashValue) % UInt(shards.count))]
    }

    subscript(key: Key) -> Value? {
        shard(key).entries.withLock { $0[key] }
    }

    func set(_ value: Value, for key: Key) {
        shard(key).entries.withLock { entries in
            if entries.count >= shardCapacity && entries[key] == nil { entries.removeAll(keepingCapacity: true) }
            entries[key] = value
        }
    }
}
