import Atomics
import Synchronization

/// Long-lived streams of one route, service or instance — relayed WebSockets and event streams
/// (`text/event-stream` responses): how many are open, messages and bytes each way (client → instance is
/// "in", instance → client "out"), how long they lasted and how they closed. A stream reports its traffic
/// in batches (once per read burst), so recording costs one short lock per burst, not per byte.
package final class StreamTelemetry: Sendable {
    package enum Kind: String, Sendable, CaseIterable {
        case websocket
        case eventStream = "event_stream"
    }

    private let openWebSockets = ManagedAtomic<Int>(0)
    private let openEventStreams = ManagedAtomic<Int>(0)

    /// Totals since start, for Prometheus, and one-second buckets of the last minute, for rates.
    package struct Totals: Sendable, Equatable {
        package var opened: [Kind: Int] = [:]
        package var messagesIn = 0
        package var messagesOut = 0
        package var bytesIn = 0
        package var bytesOut = 0
        /// Closed streams by kind and close code (WebSocket status codes; event streams: 1000 when they
        /// ended normally, 1001 when the gateway ended them, 1014 when the instance broke off).
        package var closes: [CloseKey: Int] = [:]
        /// Stream durations: counts per `durationBounds` bucket (+Inf last), cumulative by construction.
        package var durationBuckets = Array(repeating: 0, count: StreamTelemetry.durationBounds.count + 1)
        package var durationSumSeconds = 0.0
        package var durationCount = 0
    }

    package struct CloseKey: Hashable, Sendable {
        package var kind: Kind
        package var code: Int
    }

    /// Upper bounds of the duration histogram, in seconds.
    package static let durationBounds: [Double] = [1, 10, 60, 300, 900, 3600, 14400, 86400]

    private struct Second {
        var start: Int64 = .min
        var messagesIn = 0
        var messagesOut = 0
        var bytesIn = 0
        var bytesOut = 0
    }

    private struct State {
        var totals = Totals()
        var seconds = Array(repeating: Second(), count: 60)
    }

    private let state = Mutex(State())

    package init() {}

    package func open(_ kind: Kind) -> Int {
        (kind == .websocket ? openWebSockets : openEventStreams).load(ordering: .relaxed)
    }

    package var openCount: Int { open(.websocket) + open(.eventStream) }

    func opened(_ kind: Kind) {
        (kind == .websocket ? openWebSockets : openEventStreams).wrappingIncrement(ordering: .relaxed)
        state.withLock { $0.totals.opened[kind, default: 0] += 1 }
    }

    /// Traffic since the last report.
    func traffic(messagesIn: Int, messagesOut: Int, bytesIn: Int, bytesOut: Int, second: Int64) {
        state.withLock { state in
            state.totals.messagesIn += messagesIn
            state.totals.messagesOut += messagesOut
            state.totals.bytesIn += bytesIn
            state.totals.bytesOut += bytesOut
            let index = Int(second % Int64(state.seconds.count))
            if state.seconds[index].start != second { state.seconds[index] = Second(start: second) }
            state.seconds[index].messagesIn += messagesIn
            state.seconds[index].messagesOut += messagesOut
            state.seconds[index].bytesIn += bytesIn
            state.seconds[index].bytesOut += bytesOut
        }
    }

    func closed(_ kind: Kind, code: Int, seconds: Double) {
        (kind == .websocket ? openWebSockets : openEventStreams).wrappingDecrement(ordering: .relaxed)
        state.withLock { state in
            state.totals.closes[CloseKey(kind: kind, code: code), default: 0] += 1
            let bucket = Self.durationBounds.firstIndex { seconds <= $0 } ?? Self.durationBounds.count
            state.totals.durationBuckets[bucket] += 1
            state.totals.durationSumSeconds += seconds
            state.totals.durationCount += 1
        }
    }

    package func totals() -> Totals {
        state.withLock { $0.totals }
    }

    /// Messages and bytes per second each way over the last `seconds` whole seconds (≤ 60).
    package func rates(seconds requested: Int = 10, now: Int64 = TelemetryClock.second())
        -> (messagesIn: Double, messagesOut: Double, bytesIn: Double, bytesOut: Double) {
        let seconds = min(max(1, requested), 59)
        return state.withLock { state in
            var sums = (0, 0, 0, 0)
            for second in state.seconds where second.start < now && second.start >= now - Int64(seconds) {
                sums.0 += second.messagesIn
                sums.1 += second.messagesOut
                sums.2 += second.bytesIn
                sums.3 += second.bytesOut
            }
            let span = Double(seconds)
            return (Double(sums.0) / span, Double(sums.1) / span, Double(sums.2) / span, Double(sums.3) / span)
        }
    }
}
