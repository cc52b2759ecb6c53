/// A latency histogram with log-linear buckets: four per power of two of microseconds (values 0–3 µs
/// exact), so every bucket is at most 25% wide, up to ~9 minutes. Recording is an index computation
/// and an increment; merging is a sum, which makes reading a 15-minute window of per-second buckets
/// cheap. (A full HdrHistogram per second per series would cost kilobytes each; two significant bits
/// are enough for p50–p99.9 on a console and in /gateway/stats.)
public struct LatencyHistogram: Sendable, Equatable {
    public static let bucketCount = 112
    private(set) var counts: [UInt32]
    public private(set) var count: Int = 0
    public private(set) var maxMicros: UInt64 = 0
    public private(set) var sumMicros: UInt64 = 0

    public init() {
        counts = Array(repeating: 0, count: Self.bucketCount)
    }

    public static func index(micros: UInt64) -> Int {
        if micros < 4 { return Int(micros) }
        let exponent = 63 - micros.leadingZeroBitCount
        let sub = Int((micros >> UInt64(exponent - 2)) & 3)
        return min(4 * (exponent - 1) + sub, bucketCount - 1)
    }

    /// Smallest value of bucket `index`, in microseconds.
    public static func lowerBound(_ index: Int) -> UInt64 {
        if index < 4 { return UInt64(index) }
        let exponent = index / 4 + 1
        return UInt64(4 + index % 4) << UInt64(exponent - 2)
    }

    /// One past the largest value of bucket `index`, in microseconds.
    public static func upperBound(_ index: Int) -> UInt64 {
        if index < 4 { return UInt64(index + 1) }
        let exponent = index / 4 + 1
        return UInt64(5 + index % 4) << UInt64(exponent - 2)
    }

    public mutating func record(micros: UInt64) {
        counts[Self.index(micros: micros)] &+= 1
        count += 1
        sumMicros &+= micros
        if micros > maxMicros { maxMicros = micros }
    }

    public mutating func merge(_ other: LatencyHistogram) {
        guard other.count > 0 else { return }
        for index in 0..<Self.bucketCount where other.counts[index] != 0 {
            counts[index] &+= other.counts[index]
        }
        count += other.count
        sumMicros &+= other.sumMicros
        maxMicros = max(maxMicros, other.maxMicros)
    }

    mutating func reset() {
        guard count > 0 else { return }
        for index in 0..<Self.bucketCount { counts[index] = 0 }
        count = 0
        sumMicros = 0
        maxMicros = 0
    }

    /// The value at quantile `q` (0...1) in microseconds: the middle of the bucket holding it, never
    /// above the largest value seen; the largest value itself for the top rank. Nil when empty.
    public func quantile(_ q: Double) -> UInt64? {
        guard count > 0 else { return nil }
        let rank = max(1, Int((q * Double(count)).rounded(.up)))
        if rank >= count { return maxMicros }
        var seen = 0
        for index in 0..<Self.bucketCount {
            seen += Int(counts[index])
            if seen >= rank {
                let middle = (Self.lowerBound(index) + Self.upperBound(index)) / 2
                return min(middle, maxMicros)
            }
        }
        return maxMicros
    }

    /// Bucket counts paired with their bounds (for the console's histogram).
    public var buckets: [(lower: UInt64, upper: UInt64, count: Int)] {
        counts.indices.compactMap { counts[$0] == 0 ? nil : (Self.lowerBound($0), Self.upperBound($0), Int(counts[$0])) }
    }
}
