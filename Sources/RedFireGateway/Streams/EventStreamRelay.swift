import HTTPTypes
import NIOCore
import Synchronization

/// One `text/event-stream` response on its way to the client (Server-Sent Events): counted as an open
/// stream of its route, service and instance, with its events (blank-line-terminated) and bytes, and
/// ended cleanly by the gateway when it must — at its instance's drain deadline or at shutdown the
/// response ends as a complete one (the last chunk), so the client's `EventSource` reconnects (with
/// `Last-Event-ID`) to an instance that stays. Chunks pass as they come: every chunk is flushed to the
/// client at once, nothing is coalesced or compressed.
final class EventStreamRelay: EndableStream {
    private let telemetry: [StreamTelemetry]
    private let registries: [OpenStreams]
    /// Closes the instance's connection, so that a read waiting on it ends (the NIO transport's bodies);
    /// without it the stream ends with the next event.
    private let stop: (@Sendable () -> Void)?
    private let ended = Atomic<Bool>(false)
    /// Events and bytes counted so far (the relaying task writes them; `closed` may come from elsewhere).
    private let counters = Mutex(Counters())
    private let startedAt = ContinuousClock.now

    private struct Counters {
        var events = 0
        var bytes = 0
        /// The chunk before ended with a line feed (an event may end across two chunks).
        var lastWasLineFeed = false
        var open = false
    }

    /// A sampled request's span: it ends with the stream, with one event for its close.
    private let span: StreamSpan?

    init(telemetry: [StreamTelemetry], registries: [OpenStreams], stop: (@Sendable () -> Void)?, span: StreamSpan? = nil) {
        self.telemetry = telemetry
        self.registries = registries
        self.stop = stop
        self.span = span
    }

    static func isEventStream(_ headers: HTTPFields) -> Bool {
        guard let type = headers[.contentType] else { return false }
        let media = type.split(separator: ";", maxSplits: 1).first.map { String($0.trimmingASCIISpaces()) } ?? ""
        return ASCII.equalsIgnoringCase(media, "text/event-stream")
    }

    var hasEnded: Bool { ended.load(ordering: .acquiring) }

    /// Event streams are not tied to the token that opened them (their response was authorized once, like
    /// any response).
    var authorizationRevoked: Bool { false }

    func opened() {
        counters.withLock { $0.open = true }
        for series in telemetry { series.opened(.eventStream) }
        for registry in registries { registry.add(self) }
    }

    /// A chunk went to the client: its events (each ends with a blank line) and bytes are counted.
    func relayed(_ chunk: ByteBuffer) {
        let (events, bytes) = counters.withLock { counters -> (Int, Int) in
            var events = 0
            var previous = counters.lastWasLineFeed
            for byte in chunk.readableBytesView where byte != UInt8(ascii: "\r") {
                let lineFeed = byte == UInt8(ascii: "\n")
                if lineFeed, previous { events += 1 }
                previous = lineFeed
            }
            counters.lastWasLineFeed = previous
            counters.events += events
            counters.bytes += chunk.readableBytes
            return (events, chunk.readableBytes)
        }
        for series in telemetry { series.traffic(messagesIn: 0, messagesOut: events, bytesIn: 0, bytesOut: bytes, second: TelemetryClock.second()) }
    }

    /// The stream is over: 1000 when the instance ended it, 1001 when the gateway or the client did,
    /// 1014 when the instance broke off.
    func closed(code: Int) {
        let (wasOpen, events, bytes) = counters.withLock { counters in
            defer { counters.open = false }
            return (counters.open, counters.events, counters.bytes)
        }
        guard wasOpen else { return }
        let seconds = (ContinuousClock.now - startedAt).secondsDouble
        span?.closed("event_stream.close", attributes: [
            "gateway.close_code": .int(Int64(code)), "gateway.events": .int(Int64(events)), "gateway.bytes_out": .int(Int64(bytes)),
            "gateway.duration_ms": .int(Int64(seconds * 1000)),
        ])
        for series in telemetry { series.closed(.eventStream, code: code, seconds: seconds) }
        for registry in registries { registry.remove(self) }
    }

    func end(_ reason: StreamEnd) {
        guard !ended.exchange(true, ordering: .acquiringAndReleasing) else { return }
        stop?()
    }
}
