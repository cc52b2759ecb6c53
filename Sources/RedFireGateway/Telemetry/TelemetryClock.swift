import NIOCore

/// The clock a request's telemetry is measured and bucketed by: the monotonic clock, and whole seconds
/// of it since the gateway started.
///
/// Its instant is a plain integer. `ContinuousClock.Instant` is not frozen (its layout is the Swift
/// runtime's to change), so every value that holds one — a request's `RequestRecorder` among them — is
/// copied through runtime metadata, and in an async function stored in memory allocated from the task
/// for each call; a request holds and copies these through its whole path.
public enum TelemetryClock {
    /// A point in time: nanoseconds of the monotonic clock.
    public struct Instant: Sendable, Comparable {
        public var nanoseconds: UInt64

        public static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

        /// The time from `earlier` to this instant (zero if it is later).
        public static func - (lhs: Instant, rhs: Instant) -> Duration {
            lhs.nanoseconds > rhs.nanoseconds ? .nanoseconds(Int64(lhs.nanoseconds - rhs.nanoseconds)) : .zero
        }
    }

    public static var now: Instant { Instant(nanoseconds: NIODeadline.now().uptimeNanoseconds) }

    private static let origin = now

    public static func second(_ instant: Instant = now) -> Int64 {
        Int64((instant - origin).components.seconds) + 1
    }

    static func micros(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0 else { return 0 }
        return UInt64(seconds) * 1_000_000 + UInt64(attoseconds / 1_000_000_000_000)
    }
}
