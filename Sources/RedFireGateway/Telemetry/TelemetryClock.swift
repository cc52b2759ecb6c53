import Synchronization

/// The clock telemetry buckets are keyed by: whole seconds of the monotonic clock.
public enum TelemetryClock {
    private static let origin = ContinuousClock.now

    public static func second(_ instant: ContinuousClock.Instant = .now) -> Int64 {
        (instant - origin).components.seconds + 1
    }

    static func micros(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0 else { return 0 }
        return UInt64(seconds) * 1_000_000 + UInt64(attoseconds / 1_000_000_000_000)
    }
}
