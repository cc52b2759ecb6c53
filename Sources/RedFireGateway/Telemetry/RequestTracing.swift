import Foundation
import HTTPTypes
import Logging
import ServiceLifecycle
import Synchronization

/// Distributed tracing of requests: W3C Trace Context (Level 1) in and out, spans exported over
/// OTLP/HTTP. The gateway decides first, with its own sampler and ids: an unsampled request (most of
/// them, at the default 1 %) is traced as a value — ids for the instance's `traceparent`, the access log
/// and the console, nothing recorded — and a sampled one records a server span and a client span per
/// attempt at an instance (`TraceSpan`), the attempt's `traceparent` (and `tracestate`) sent to the
/// instance. With `sample_errors`, an unsampled request keeps its steps and is recorded if it fails.
/// Finished spans go to `TraceExporter`, which never makes a request wait: when the collector is slow or
/// gone, its bounded queue drops spans (counted).
package final class RequestTracing: Sendable {
    let trustIncoming: TracingConfig.TrustIncoming
    /// Which requests are recorded: `sample_ratio`, or `OTEL_TRACES_SAMPLER` when set.
    let sampler: TraceSampler
    /// `sample_errors`: unsampled requests keep what they did, recorded if they fail.
    let sampleErrors: Bool
    let ids = TraceIDGenerator()
    let exporter: TraceExporter
    /// The exporter's background work, run with the gateway's services.
    var service: any Service { exporter }
    package var exportedSpans: Int { exporter.exportedSpans }
    package var droppedSpans: Int { exporter.droppedSpans }

    /// The trace of the request being answered (set only when tracing is on).
    @TaskLocal static var current: RequestTrace?

    static let traceparent = HTTPField.Name("traceparent")!
    static let tracestate = HTTPField.Name("tracestate")!

    init(config: TracingConfig, logger: Logger, environment: [String: String] = ProcessInfo.processInfo.environment) {
        sampler = Self.sampler(config: config, environment: environment, logger: logger)
        let settings = TraceExportSettings(config: config, environment: environment)
        for warning in settings.warnings { logger.warning("tracing: \(warning)") }
        exporter = TraceExporter(settings: settings, logger: logger)
        trustIncoming = config.trustIncoming
        sampleErrors = config.sampleErrors
    }

    /// `OTEL_TRACES_SAMPLER` (with `OTEL_TRACES_SAMPLER_ARG`) when set and supported, else `sample_ratio`
    /// parent-based (default 1 %).
    static func sampler(config: TracingConfig, environment: [String: String], logger: Logger) -> TraceSampler {
        if let name = environment["OTEL_TRACES_SAMPLER"] {
            if let sampler = TraceSampler(name: name.lowercased(), argument: environment["OTEL_TRACES_SAMPLER_ARG"]) { return sampler }
            logger.warning("OTEL_TRACES_SAMPLER is not one the gateway supports (always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio with OTEL_TRACES_SAMPLER_ARG 0–1): tracing.sample_ratio applies",
                           metadata: ["value": .string(name)])
        }
        return .parentBasedRatio(config.sampleRatio ?? 0.01)
    }

    /// Begins the request's trace: continuing the client's when it may (`trust_incoming`) and its
    /// `traceparent` is well-formed, else a new one; sampled or not as the sampler says.
    func begin(_ name: SpanName, fields: HTTPFields, peerTrusted: @autoclosure () -> Bool) -> RequestTrace {
        var parent: TraceContext?
        if trustIncoming != .never, let value = fields[Self.traceparent], trustIncoming == .always || peerTrusted() {
            parent = TraceContext(traceparent: value)
        }
        let traceIDLow = parent?.traceIDLow ?? ids.next()
        let context = TraceContext(traceIDHigh: parent?.traceIDHigh ?? ids.next(), traceIDLow: traceIDLow, spanID: ids.next(), sampled: false)
        let tracestate = parent == nil ? nil : fields[Self.tracestate]
        if sampler.samples(traceIDLow: traceIDLow, parent: parent) {
            let span = RecordedSpan(traceIDHigh: context.traceIDHigh, traceIDLow: context.traceIDLow, spanID: context.spanID,
                                    parentSpanID: parent?.spanID ?? 0, traceState: tracestate, name: name, kind: .server, start: WallClock.now())
            return RequestTrace(span: TraceSpan(span, exporter: exporter), continued: parent != nil)
        }
        let kept = sampleErrors ? KeptRequest(name: name, parentSpanID: parent?.spanID ?? 0, tracestate: tracestate) : nil
        return RequestTrace(unsampled: context, continued: parent != nil, kept: kept)
    }

    /// One attempt at an instance: a client span under the request's when it is sampled, else a new span
    /// id in the request's trace. Its `traceparent` goes to the instance (the header policy left the
    /// client's out, and kept the client's `tracestate` only when its trace is continued).
    func attempt(_ trace: RequestTrace, service: String, instance: String, authority: String, number: Int) -> AttemptTrace {
        let spanID = ids.next()
        if let parent = trace.span {
            let span = RecordedSpan.attempt(parent: parent.context, spanID: spanID, traceState: parent.traceState, service: service, instance: instance,
                                            authority: authority, number: number, start: WallClock.now())
            return AttemptTrace(traceparent: span.context.traceparent, span: TraceSpan(span, exporter: exporter), kept: nil, index: 0)
        }
        let index = trace.kept?.attemptStarted(spanID: spanID, service: service, instance: instance, authority: authority, number: number) ?? 0
        return AttemptTrace(traceparent: trace.unsampled.child(spanID: spanID).traceparent, span: nil, kept: trace.kept, index: index)
    }

    /// Writes the request's own place in its trace into `headers` (a WebSocket upgrade: the instance's
    /// handshake continues under the request's span).
    func propagate(_ trace: RequestTrace, into headers: inout HTTPFields) {
        headers[Self.traceparent] = (trace.span?.context ?? trace.unsampled).traceparent
        if !trace.continued { headers[Self.tracestate] = nil }
    }

    /// Ends the request's trace with its answer (`status`) or the error it failed with. A sampled span
    /// ends here unless a stream took it (`RequestTrace.handOff`); an unsampled request that kept its
    /// steps and failed (5xx) is recorded now.
    func end(_ trace: RequestTrace, status: Int?, error: (any Error)? = nil) {
        if let span = trace.span {
            span.outcome(status: status, error: error.map { "\($0)" })
            if !trace.isHandedOff { span.end() }
            return
        }
        guard let kept = trace.kept, error != nil || (status ?? 0) >= 500 else { return }
        record(kept, trace: trace.unsampled, status: status, error: error)
    }

    /// Records an unsampled request that failed, from what it kept: its server span and a client span per
    /// attempt, with the ids the instance received and at the times they happened (the trace's flags said
    /// unsampled, so the instance recorded nothing of it).
    private func record(_ kept: KeptRequest, trace: TraceContext, status: Int?, error: (any Error)?) {
        let state = kept.state.withLock { $0 }
        var server = RecordedSpan(traceIDHigh: trace.traceIDHigh, traceIDLow: trace.traceIDLow, spanID: trace.spanID, parentSpanID: kept.parentSpanID,
                                  traceState: kept.tracestate, name: state.name, kind: .server, start: kept.start, end: WallClock.now(), status: .error,
                                  attributes: state.attributes, events: state.events)
        server.attributes["gateway.sampled"] = "error"
        server.outcome(status: status, error: error.map { "\($0)" })
        exporter.submit(server)
        for attempt in state.attempts {
            var client = RecordedSpan.attempt(parent: trace, spanID: attempt.spanID, traceState: kept.tracestate, service: attempt.service,
                                              instance: attempt.instance, authority: attempt.authority, number: attempt.number, start: attempt.start)
            client.end = attempt.end ?? server.end
            client.outcome(status: attempt.status, error: attempt.error, connection: attempt.connection)
            exporter.submit(client)
        }
    }
}

/// The trace of one request, while it is answered: a sampled request's server span, or an unsampled
/// request's ids (and, with `sample_errors`, what it did).
struct RequestTrace: Sendable {
    /// The request's server span, when sampled.
    let span: TraceSpan?
    /// An unsampled request's place in its trace (the span id stands for the gateway's part).
    let unsampled: TraceContext
    /// Whether the request continues the client's trace (its `tracestate` passes on).
    let continued: Bool
    /// With `sample_errors`, an unsampled request's steps.
    let kept: KeptRequest?

    init(span: TraceSpan, continued: Bool) {
        self.span = span
        unsampled = span.context
        self.continued = continued
        kept = nil
    }

    init(unsampled: TraceContext, continued: Bool, kept: KeptRequest?) {
        span = nil
        self.unsampled = unsampled
        self.continued = continued
        self.kept = kept
    }

    /// The span, for a stream to end when it closes (a WebSocket, an event stream); the request then
    /// leaves it open. Nil when unsampled or taken already.
    func handOff() -> StreamSpan? {
        guard let span, span.handOff() else { return nil }
        return StreamSpan(span)
    }

    var isHandedOff: Bool { span?.isHandedOff ?? false }

    /// Whether attributes set now are kept (a sampled request, or an unsampled one keeping its steps).
    var isRecording: Bool { span != nil || kept != nil }

    /// The trace id, 32 hex digits (the access log's `trace_id`).
    var traceIDHex: String { unsampled.traceIDHex }

    /// The trace id as a value (the console's slow requests format it only for the ones they keep).
    var traceID: TraceID { TraceID(high: unsampled.traceIDHigh, low: unsampled.traceIDLow) }

    /// Sets a span attribute (names and values from the request path's own knowledge only — never a
    /// header value, token or query). Only evaluated when recording.
    func set(_ key: String, _ value: @autoclosure () -> String) {
        if let span {
            span.set(key, .string(value()))
        } else if let kept {
            let value = value()
            kept.state.withLock { $0.attributes[key] = .string(value) }
        }
    }

    /// An event for a policy stage that can take time (authentication, the rate-limit decision), with
    /// its outcome and how long it took since `started` — recorded only when the request is (take
    /// `started` only then: `stageStart`).
    func stage(_ name: String, since started: TelemetryClock.Instant?, _ attributes: SpanFields = [:]) {
        guard let started else { return }
        var attributes = attributes
        attributes["gateway.duration_us"] = .int(Int64(TelemetryClock.micros(TelemetryClock.now - started)))
        if let span {
            span.addEvent(name, attributes)
        } else if let kept {
            let event = RecordedSpan.Event(name: name, time: WallClock.now(), attributes: attributes)
            kept.state.withLock { $0.events.append(event) }
        }
    }

    /// When a stage starts, if the request is recorded (nil otherwise: nothing to measure).
    var stageStart: TelemetryClock.Instant? { isRecording ? TelemetryClock.now : nil }

    /// Names the request's span (once its route is known).
    func rename(_ name: SpanName) {
        if let span {
            span.rename(name)
        } else if let kept {
            kept.state.withLock { $0.name = name }
        }
    }
}

/// One attempt at an instance, traced: its client span, or its place among an unsampled request's steps.
struct AttemptTrace {
    /// What the instance receives.
    let traceparent: String
    let span: TraceSpan?
    let kept: KeptRequest?
    let index: Int

    /// The instance answered; `connection` says whether over a kept-alive connection (`pooled`) or a
    /// `new` one, when the transport knows.
    func answered(status: Int, connection: String? = nil) {
        if let span {
            span.outcome(status: status, error: nil, connection: connection)
            span.end()
        } else if let kept {
            kept.attemptEnded(index, status: status, error: nil, connection: connection)
        }
    }

    func failed(_ error: some Error) {
        if let span {
            span.outcome(status: nil, error: "\(error)")
            span.end()
        } else if let kept {
            kept.attemptEnded(index, status: nil, error: "\(error)")
        }
    }
}

/// What an unsampled request did, kept with `sample_errors` so that it can be recorded if it fails.
final class KeptRequest: Sendable {
    struct Attempt {
        var spanID: UInt64
        var service: String
        var instance: String
        var authority: String
        var number: Int
        var start: UInt64
        var end: UInt64?
        var status: Int?
        var error: String?
        var connection: String?
    }

    struct State {
        var name: SpanName
        var attributes = SpanFields()
        var events: [RecordedSpan.Event] = []
        var attempts: [Attempt] = []
    }

    /// When the request began, in nanoseconds since 1970.
    let start = WallClock.now()
    /// The client's trusted parent span, if any (0: none), and its `tracestate`.
    let parentSpanID: UInt64
    let tracestate: String?
    let state: Mutex<State>

    init(name: SpanName, parentSpanID: UInt64, tracestate: String?) {
        self.parentSpanID = parentSpanID
        self.tracestate = tracestate
        state = Mutex(State(name: name))
    }

    func attemptStarted(spanID: UInt64, service: String, instance: String, authority: String, number: Int) -> Int {
        let attempt = Attempt(spanID: spanID, service: service, instance: instance, authority: authority, number: number, start: WallClock.now())
        return state.withLock { state in
            state.attempts.append(attempt)
            return state.attempts.count - 1
        }
    }

    func attemptEnded(_ index: Int, status: Int?, error: String?, connection: String? = nil) {
        let end = WallClock.now()
        state.withLock { state in
            guard state.attempts.indices.contains(index) else { return }
            state.attempts[index].end = end
            state.attempts[index].status = status
            state.attempts[index].error = error
            state.attempts[index].connection = connection
        }
    }
}

/// A stream's span (a WebSocket upgrade's, an event stream's): it stays open while the stream lasts and
/// ends with one event for its close — never a span per message. Ended at the latest when released.
final class StreamSpan: Sendable {
    private let span: TraceSpan

    init(_ span: TraceSpan) { self.span = span }

    func closed(_ event: String, attributes: SpanFields) {
        span.addEvent(event, attributes)
        span.end()
    }

    deinit {
        span.end()
    }
}
