import Synchronization

/// What one finished request contributes to its series.
struct RequestSample: Sendable {
    var status: Int
    /// The request method as a bounded label (the exposition's method label).
    var method: String = ""

    var totalMicros: UInt64
    /// Time spent waiting on instances (all attempts); 0 when the gateway answered itself.
    var upstreamMicros: UInt64
    var bytesIn: Int
    var bytesOut: Int
    var upstreamErrors: Int = 0
    var upstreamTimeouts: Int = 0
    /// The instance broke the response off after its head.
    var truncated = false
}
