import NIOCore

/// Items passed from a channel handler to the one task that reads them, both on the same event loop
/// (hence `@unchecked Sendable`): an item goes straight to a waiting reader, else into a buffer the
/// reader drains without suspending. The owner pauses socket reads when the buffer reaches its bound
/// (`bufferedBytes`, or the item count) and resumes them from `onTake`.
final class LoopHandoff<Element: Sendable>: @unchecked Sendable {
    private(set) var buffer = CircularBuffer<Element>(initialCapacity: 4)
    private var waiter: UnsafeContinuation<Element?, any Error>?
    private(set) var failure: (any Error)?
    private(set) var finished = false
    /// The bytes of the buffered items, by `weight`.
    private(set) var bufferedBytes = 0
    private let weight: (Element) -> Int

    /// - Parameter weight: the bytes an item holds (0 by default: only items are counted).
    init(weight: @escaping (Element) -> Int = { _ in 0 }) {
        self.weight = weight
    }

    /// A reader is suspended waiting for the next item.
    var readerWaiting: Bool { waiter != nil }

    /// Hands `item` to the waiting reader, or buffers it; returns how many items are now buffered.
    @discardableResult
    func deliver(_ item: Element) -> Int {
        if let waiter {
            self.waiter = nil
            waiter.resume(returning: item)
            return 0
        }
        buffer.append(item)
        bufferedBytes += weight(item)
        return buffer.count
    }

    /// No more items: the reader gets what is buffered, then the recorded failure or the end.
    func finish() {
        finished = true
        guard let waiter else { return }
        self.waiter = nil
        if let failure { waiter.resume(throwing: failure) } else { waiter.resume(returning: nil) }
    }

    /// Records the first failure (ignored once finished) and wakes a waiting reader with it.
    func fail(_ error: any Error) {
        guard !finished else { return }
        failure = failure ?? error
        guard let waiter else { return }
        self.waiter = nil
        waiter.resume(throwing: error)
    }

    /// Drops what is buffered.
    func removeAll() {
        buffer.removeAll(keepingCapacity: true)
        bufferedBytes = 0
    }

    /// The next item; nil at the end. `onTake` runs with the count left after a buffered item is taken.
    nonisolated(nonsending) func next(onTake: (Int) -> Void = { _ in }) async throws -> Element? {
        if !buffer.isEmpty {
            let item = buffer.removeFirst()
            bufferedBytes -= weight(item)
            onTake(buffer.count)
            return item
        }
        if let failure { throw failure }
        if finished { return nil }
        return try await withUnsafeThrowingContinuation { continuation in
            waiter = continuation
        }
    }
}
