import Synchronization

/// Open client connections (the console's header).
final class ConnectionCount: Sendable {
    private let value = Atomic<Int>(0)
    var open: Int { value.load(ordering: .relaxed) }
    func opened() { value.add(1, ordering: .relaxed) }
    func closed() { value.subtract(1, ordering: .relaxed) }
}
