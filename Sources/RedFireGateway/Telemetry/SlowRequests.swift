import Synchronization

/// The slowest requests of a route over the last minute — sampled or not — with their request and
/// trace ids, so that an operator can go from a slow route in the console to the one request's trace and
/// log lines. Cheap for every other request: one relaxed atomic load says that a request is faster than
/// the slowest kept ones; the lock is taken only by one that is slower (or once a kept one is stale).
package final class SlowRequests: Sendable {
    package static let capacity = 8
    package static let windowSeconds: Int64 = 60

    struct Entry: Sendable {
        var second: Int64
        var request: GatewaySnapshot.SlowRequest
    }

    /// The fastest kept request's duration once all places are taken; 0 while there is room.
    private let floor = Atomic<UInt64>(0)
    /// The second at which the oldest kept request goes stale.
    private let expiry = Atomic<Int64>(.max)
    private let entries = Mutex<[Entry]>([])

    package init() {}

    /// Offers a finished request; `request` is made only when it is kept.
    func offer(micros: UInt64, second: Int64, _ request: () -> GatewaySnapshot.SlowRequest) {
        guard micros > floor.load(ordering: .relaxed) || second >= expiry.load(ordering: .relaxed) else { return }
        entries.withLock { entries in
            entries.removeAll { second - $0.second >= Self.windowSeconds }
            if entries.count < Self.capacity {
                entries.append(Entry(second: second, request: request()))
            } else if let fastest = entries.indices.min(by: { entries[$0].request.micros < entries[$1].request.micros }),
                      entries[fastest].request.micros < micros {
                entries[fastest] = Entry(second: second, request: request())
            }
            floor.store(entries.count < Self.capacity ? 0 : entries.map(\.request.micros).min() ?? 0, ordering: .relaxed)
            expiry.store((entries.map(\.second).min() ?? .max - Self.windowSeconds) + Self.windowSeconds, ordering: .relaxed)
        }
    }

    /// The kept requests of the last minute, slowest first, each with its age in seconds.
    package func recent(now second: Int64) -> [GatewaySnapshot.SlowRequest] {
        entries.withLock { entries in
            entries.filter { second - $0.second < Self.windowSeconds }
                .sorted { $0.request.micros > $1.request.micros }
                .map { entry in
                    var request = entry.request
                    request.secondsAgo = Int(max(0, second - entry.second))
                    return request
                }
        }
    }
}
