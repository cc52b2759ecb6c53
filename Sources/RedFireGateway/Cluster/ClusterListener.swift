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

    /// One connection's life: listen, load, then apply events until the connection fails or the task
    /// is cancelled. The connection is closed, and its close awaited, however this ends.
    private func follow() async throws {
        let connection = try await Self.connect(store)
        let outcome: Result<Void, any Error>
        do {
            try await Deadline.run(Self.readDeadline) { [store] in try await store.migrate() }
            // Cancelled (graceful shutdown): closing the connection ends the notification sequence, which
            // does not end on cancellation by itself.
            try await withTaskCancellationHandler {
                try await listen(connection)
            } onCancel: {
                connection.close().whenComplete { _ in }
            }
            outcome = .success(())
        } catch {
            outcome = .failure(error)
        }
        try? await connection.close()
        try outcome.get()
    }

    /// The longest a read of the store may take: a store that stopped answering (SIGSTOP, a partition)
    /// keeps its connections open, and only the reader's own clock says it is gone.
    static let readDeadline: Duration = .seconds(5)

    /// Connects within `readDeadline`; a connection that comes up after it is closed at once.
    static func connect(_ store: ClusterStore) async throws -> PostgresConnection {
        let attempt = Task { try await PostgresConnection.connect(configuration: store.connectionConfiguration, id: 1, logger: store.logger) }
        do {
            return try await Deadline.run(readDeadline) { try await attempt.value }
        } catch {
            Task { if let late = try? await attempt.value { try? await late.close() } }
            throw error
        }
    }

    /// Listens, loads the stored state, then applies events until the connection fails.
    private func listen(_ connection: PostgresConnection) async throws {
        try await connection.listen(on: ClusterStore.channel) { notifications in
            let (changes, through) = try await Deadline.run(Self.readDeadline) { [store] in try await store.snapshot() }
            applied.withLock { last in
                for change in changes { apply(ClusterEvent(seq: through, node: "", actor: "", change: change)) }
                last = max(last, through)
            }
            store.markReachable()
            try await catchUp()
            // The LISTEN connection only listens: a query on it while notifications back up would wait for
            // a reply the paused connection never reads. Notifications and the poll only wake the reader,
            // which reads the events through the pool; wake-ups that come while it reads fold into one.
            let (wakeups, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for try await _ in notifications { wake.yield() }
                    throw ClusterListenerError.notificationsEnded
                }
                group.addTask {
                    while true {
                        try await Task.sleep(for: self.pollInterval)
                        wake.yield()
                    }
                }
                group.addTask {
                    for await _ in wakeups { try await self.catchUp() }
                }
                try await group.next()
                group.cancelAll()
            }
        }
    }

    /// Applies every event after the last applied one, oldest first, each once (under `applied`'s lock).
    private func catchUp() async throws {
        while true {
            let after = lastApplied
            let events = try await Deadline.run(Self.readDeadline) { [store] in try await store.events(after: after, limit: 500) }
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
