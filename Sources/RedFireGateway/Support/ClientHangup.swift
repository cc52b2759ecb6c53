import Synchronization

/// Whether the client of a connection has closed its side (sent FIN or reset). One per connection, set
/// on the connection's event loop, read by the request's task when it records the outcome.
final class ClientHangup: Sendable {
    private let value = Atomic<Bool>(false)

    var happened: Bool { value.load(ordering: .relaxed) }

    func record() { value.store(true, ordering: .relaxed) }
}
