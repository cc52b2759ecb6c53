import Foundation
import Logging
import NIOPosix
import Synchronization

/// Writes operator state off the caller's thread — the admin API acts from a connection's event loop,
/// which must never wait on the disk — on NIO's blocking-work pool, one write at a time, the newest
/// state last (a state saved while a write runs replaces any older one still waiting). `flush` waits
/// until the last saved state is on disk (graceful shutdown does).
final class OperatorStateWriter: Sendable {
    private struct Queue {
        var pending: OperatorStateStore.State?
        var writing: Task<Void, Never>?
    }
    private let queue = Mutex(Queue())
    let store: OperatorStateStore

    init(store: OperatorStateStore) {
        self.store = store
    }

    func save(_ state: OperatorStateStore.State) {
        queue.withLock { queue in
            queue.pending = state
            guard queue.writing == nil else { return }
            queue.writing = Task { await self.writeAll() }
        }
    }

    private func writeAll() async {
        while let next = queue.withLock({ queue -> OperatorStateStore.State? in
            let next = queue.pending
            queue.pending = nil
            if next == nil { queue.writing = nil }
            return next
        }) {
            let store = self.store
            do {
                try await NIOThreadPool.singleton.runIfActive { store.save(next) }
            } catch {
                store.save(next)  // the pool is gone (the process is ending): write here
            }
        }
    }

    func flush() async {
        while let writing = queue.withLock({ $0.writing }) { await writing.value }
    }
}
