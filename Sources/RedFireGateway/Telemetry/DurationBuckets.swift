/// The request-duration histogram buckets `/metrics` exports (seconds; upper bounds in microseconds),
/// counted by the metric series as requests finish.
enum DurationBuckets {
    static let bounds: [UInt64] = [500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
                                           1_000_000, 2_500_000, 5_000_000, 10_000_000]
    static let labels: [String] = ["0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
                                           "1", "2.5", "5", "10", "+Inf"]

    static func index(micros: UInt64) -> Int {
        var low = 0, high = bounds.count
        while low < high {
            let mid = (low + high) / 2
            if micros <= bounds[mid] { high = mid } else { low = mid + 1 }
        }
        return low
    }
}
