import Synchronization

/// A bounded, newest-last log: appends are rare (operator actions, state changes — never per
/// request), and the oldest entries fall off past `capacity`.
public final class BoundedLog<Entry: Sendable>: Sendable {
    private let entries = Mutex<[Entry]>([])
    public let capacity: Int

    public init(capacity: Int = 10_000) {
        self.capacity = capacity
    }

    public func append(_ entry: Entry) {
        entries.withLock {
            $0.append(entry)
            if $0.count > capacity { $0.removeFirst($0.count - capacity) }
        }
    }

    /// The newest `limit` entries, oldest first.
    public func recent(_ limit: Int = 100) -> [Entry] {
        entries.withLock { Array($0.suffix(limit)) }
    }
}
