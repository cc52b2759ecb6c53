import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Follows the cluster's change log on a connection of its own: `LISTEN`, then the state as stored
/// (on every connect, so a node that was cut off catches up whatever it missed, pruned or not), then
/// each event after it as its notification arrives. A poll every `pollInterval` is the safety net for a
/// lost notification. While it cannot reach the store it says so (`ClusterStore.isReachable`) and
/// retries with back-off; the node keeps serving with what it last applied.
///
/// `apply` runs one change at a time, in `seq` order; applying a change twice is harmless.
package final class ClusterListener: Service, Sendable {
    let store: ClusterStore
    let apply: @Sendable (ClusterEvent) -> Void
    let pollInterval: Duration
    /// The newest event applied.
    private let applied = Mutex<Int64>(0)

    package init(store: ClusterStore, pollInterval: Duration = .seconds(2), apply: @escaping @Sendable (ClusterEvent) -> Void) {
        self.store = store
        self.pollInterval = pollInterval
        self.apply = apply
    }

    package var lastApplied: Int64 { applied.withLock { $0 } }

    package func run() async throws {
        var backoff = Duration.milliseconds(100)
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await cancelWhenGracefulShutdown { try await self.follow() }
            } catch {
                if Task.isShuttingDownGracefully || Task.isCancelled { break }
                // A connection that was up starts the back-off over; one that never came up doubles it.
                if store.isReachable { backoff = .milliseconds(100) }
                store.markUnreachable(error)
            }
            let delay = backoff
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
            backoff = min(backoff * 2, .seconds(2))
        }
    }

    /// One connection's life: listen, load, then apply events until the connection fails.
    private func follow() async throws {
        let connection = try await PostgresConnection.connect(configuration: store.connectionConfiguration, id: 1, logger: store.logger)
        do {
            try await store.migrate()
            try await connection.listen(on: ClusterStore.channel) { notifications in
                let (changes, through) = try await store.snapshot()
                applied.withLock { last in
                    for change in changes { apply(ClusterEvent(seq: through, node: "", actor: "", change: change)) }
                    last = max(last, through)
                }
                store.markReachable()
                try await catchUp(connection)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for try await _ in notifications { try await self.catchUp(connection) }
                        throw ClusterListenerError.notificationsEnded
                    }
                    group.addTask {
                        while true {
                            try await Task.sleep(for: self.pollInterval)
                            try await self.catchUp(connection)
                        }
                    }
                    try await group.next()
                }
            }
        } catch {
            try? await connection.close()
            throw error
        }
    }

    /// Applies every event after the last applied one. The notification and the poll tasks both call
    /// it; events are applied under `applied`'s lock, so each once and in `seq` order.
    private func catchUp(_ connection: PostgresConnection) async throws {
        while true {
            let events = try await ClusterStore.events(after: lastApplied, limit: 500, on: connection, logger: store.logger)
            applied.withLock { last in
                for event in events where event.seq > last {
                    apply(event)
                    last = event.seq
                }
            }
            if events.count < 500 { return }
        }
    }
}

enum ClusterListenerError: Error {
    case notificationsEnded
}
