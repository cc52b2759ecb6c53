import Atomics
import Foundation
import HTTPTypes
import Instrumentation
import Logging
import NIOCore
import NIOPosix
import OTel
import ServiceLifecycle
import Synchronization
import Tracing

/// Distributed tracing of requests (W3C Trace Context Level 1, spans exported over OTLP/HTTP by
/// swift-otel). The gateway decides first, with its own sampler and ids: an unsampled request (most of
/// them, at the default 1 %) is traced as a value — ids for the instance's `traceparent`, the access log
/// and the console, no span — and only a sampled one reaches swift-otel's tracer: one server span per
/// request, one client span per attempt at an instance, the attempt's `traceparent` (and `tracestate`)
/// sent to the instance. With `sample_errors`, an unsampled request answered with a 5xx is recorded
/// afterwards from what was kept of it. Finished spans are queued for a batching exporter that never makes
/// a request wait: when the collector is slow or gone, its bounded queue drops spans (counted).
package final class RequestTracing: Sendable {
    let tracer: any Tracer
    let trustIncoming: TracingConfig.TrustIncoming
    /// Which requests are recorded: `sample_ratio`, or `OTEL_TRACES_SAMPLER` when set.
    let sampler: TraceSampler
    /// `sample_errors`: unsampled requests keep what they did, recorded if they fail.
    let sampleErrors: Bool
    let ids = TraceIDGenerator()
    /// The exporter's background work, run with the gateway's services — on a thread of its own: not
    /// the request loops (an export would hold requests up), nor the concurrency pool (its threads woken
    /// for every span cost more).
    let service: any Service
    private let group: MultiThreadedEventLoopGroup
    /// Spans sent to the collector, and spans lost on the way (the queue full, or an export that failed).
    private let exportedCounter = ManagedAtomic<Int>(0)
    private let droppedCounter = ManagedAtomic<Int>(0)
    package var exportedSpans: Int { exportedCounter.load(ordering: .relaxed) }
    package var droppedSpans: Int { droppedCounter.load(ordering: .relaxed) }

    /// The trace of the request being answered (set only when tracing is on).
    @TaskLocal static var current: RequestTrace?

    static let traceparent = HTTPField.Name("traceparent")!
    static let tracestate = HTTPField.Name("tracestate")!

    init(config: TracingConfig, logger: Logger, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        var configuration = OTel.Configuration.default
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.traces.enabled = true
        configuration.propagators = [.traceContext]
        configuration.serviceName = "redfire-gateway"
        // The gateway has decided already: what reaches the tracer is recorded.
        configuration.traces.sampler = .alwaysOn
        configuration.traces.otlpExporter.protocol = .httpProtobuf
        // A collector that does not answer holds up no more than this, at shutdown too (the default
        // waits 10 s per export, 30 s per batch).
        configuration.traces.otlpExporter.timeout = .seconds(2)
        configuration.traces.batchSpanProcessor.exportTimeout = .seconds(3)
        // Its processor sends one batch (512) per tick (the interval, or a full queue): at a gateway's
        // rates (two spans a request, thousands of requests a second) the default queue of 2,048 drops
        // spans whenever an export takes a few milliseconds.
        configuration.traces.batchSpanProcessor.maxQueueSize = 8_192
        // swift-otel reports what it exported and lost only in its diagnostics: they are counted here
        // (`/metrics`), and its warnings go on to the gateway's log.
        let exported = exportedCounter, dropped = droppedCounter
        var diagnostics = Logger(label: "redfire.tracing") { _ in TracingDiagnostics(exported: exported, dropped: dropped, forward: logger) }
        diagnostics.logLevel = .debug
        configuration.diagnosticLogger = .custom(diagnostics)
        configuration.diagnosticLogLevel = .debug
        self.sampler = Self.sampler(config: config, environment: environment, logger: logger)
        // The `tracing:` section over these defaults; swift-otel then applies the `OTEL_*` variables —
        // all but the sampler, which the gateway has applied itself.
        let backend = try Self.withoutSamplerVariables(environment) { try OTel.makeTracingBackend(configuration: configuration, overrides: config) }
        self.tracer = backend.factory
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.group = group
        self.service = ServiceOnEventLoop(backend.service, loop: group.next()) { try? await group.shutdownGracefully() }
        self.trustIncoming = config.trustIncoming
        self.sampleErrors = config.sampleErrors
    }

    deinit {
        group.shutdownGracefully { _ in }   // when the service never ran
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

    private static let environmentLock = Mutex(())

    /// Runs `body` with the process's `OTEL_TRACES_SAMPLER` set to `always_on` (swift-otel reads the
    /// process environment and would sample again what the gateway sampled), then puts it back.
    private static func withoutSamplerVariables<T>(_ environment: [String: String], _ body: () throws -> T) rethrows -> T {
        guard let original = environment["OTEL_TRACES_SAMPLER"] else { return try body() }
        return try environmentLock.withLock { _ in
            setenv("OTEL_TRACES_SAMPLER", "always_on", 1)
            defer { setenv("OTEL_TRACES_SAMPLER", original, 1) }
            return try body()
        }
    }

    /// Begins the request's trace: continuing the client's when it may (`trust_incoming`) and its
    /// `traceparent` is well-formed, else a new one; sampled or not as the sampler says.
    func begin(_ name: String, fields: HTTPFields, peerTrusted: @autoclosure () -> Bool) -> RequestTrace {
        var parent: TraceContext?
        if trustIncoming != .never, let value = fields[Self.traceparent], trustIncoming == .always || peerTrusted() {
            parent = TraceContext(traceparent: value)
        }
        let traceIDLow = parent?.traceIDLow ?? ids.next()
        if sampler.samples(traceIDLow: traceIDLow, parent: parent) {
            var context = ServiceContext.topLevel
            if parent != nil { tracer.extract(fields, into: &context, using: HTTPFieldsExtractor()) }
            return RequestTrace(span: tracer.startSpan(name, context: context, ofKind: .server))
        }
        let context = TraceContext(traceIDHigh: parent?.traceIDHigh ?? ids.next(), traceIDLow: traceIDLow, spanID: ids.next(), sampled: false)
        let kept = sampleErrors ? KeptRequest(name: name, parent: parent, tracestate: parent == nil ? nil : fields[Self.tracestate]) : nil
        return RequestTrace(unsampled: context, continued: parent != nil, kept: kept)
    }

    /// One attempt at an instance: a client span under the request's when it is sampled, else a new span
    /// id in the request's trace. Its `traceparent` goes into `headers` (replacing the client's), and the
    /// client's `tracestate` stays only when its trace is continued.
    func attempt(_ trace: RequestTrace, service: String, instance: String, authority: String, number: Int, headers: inout HTTPFields) -> AttemptTrace {
        if let parent = trace.span {
            let span = tracer.startSpan("upstream \(service)", context: parent.context, ofKind: .client)
            if span.isRecording {
                span.attributes["server.address"] = authority
                span.attributes["gateway.instance"] = instance
                span.attributes["gateway.attempt"] = number
            }
            inject(span.context, into: &headers)
            return AttemptTrace(span: span, kept: nil, index: 0)
        }
        headers[Self.traceparent] = trace.unsampled.child(spanID: ids.next()).traceparent
        if !trace.continued { headers[Self.tracestate] = nil }
        let index = trace.kept?.attemptStarted(service: service, instance: instance, authority: authority, number: number) ?? 0
        return AttemptTrace(span: nil, kept: trace.kept, index: index)
    }

    /// Ends the request's trace with its answer (`status`) or the error it failed with. A sampled span
    /// ends here unless a stream took it (`RequestTrace.handOff`); an unsampled request that kept its
    /// steps and failed (5xx) is recorded now.
    func end(_ trace: RequestTrace, status: Int?, error: (any Error)? = nil) {
        if let span = trace.span {
            if span.isRecording, let status {
                span.attributes["http.response.status_code"] = status
                if status >= 500 { span.setStatus(SpanStatus(code: .error)) }
            }
            if let error {
                span.recordError(error)
                span.setStatus(SpanStatus(code: .error))
            }
            if !trace.isHandedOff { span.end() }
            return
        }
        guard let kept = trace.kept, error != nil || (status ?? 0) >= 500 else { return }
        record(kept, trace: trace.unsampled, status: status, error: error)
    }

    /// Records an unsampled request that failed, from what it kept: a server span (a child of the client's
    /// trusted parent, else a new trace) and a client span per attempt, at the times they happened. It
    /// links to the unsampled ids the instance and the access log have.
    private func record(_ kept: KeptRequest, trace: TraceContext, status: Int?, error: (any Error)?) {
        let (attributes, events, attempts, start) = kept.state.withLock { ($0.attributes, $0.events, $0.attempts, kept.start) }
        var context = ServiceContext.topLevel
        if let parent = kept.parent {
            var fields: HTTPFields = [Self.traceparent: parent.traceparent]
            if let tracestate = kept.tracestate { fields[Self.tracestate] = tracestate }
            tracer.extract(fields, into: &context, using: HTTPFieldsExtractor())
        }
        let span = tracer.startSpan(kept.state.withLock { $0.name }, context: context, ofKind: .server, at: EpochInstant(nanosecondsSinceEpoch: start))
        guard span.isRecording else { return span.end() }
        span.attributes = attributes
        span.attributes["gateway.sampled"] = "error"
        for event in events { span.addEvent(event) }
        if let status { span.attributes["http.response.status_code"] = status }
        if let error { span.recordError(error) }
        span.setStatus(SpanStatus(code: .error))
        var linked = ServiceContext.topLevel
        tracer.extract([Self.traceparent: trace.traceparent], into: &linked, using: HTTPFieldsExtractor())
        span.addLink(SpanLink(context: linked, attributes: ["gateway.link": "unsampled request"]))
        for attempt in attempts {
            let client = tracer.startSpan("upstream \(attempt.service)", context: span.context, ofKind: .client,
                                          at: EpochInstant(nanosecondsSinceEpoch: attempt.start))
            client.attributes["server.address"] = attempt.authority
            client.attributes["gateway.instance"] = attempt.instance
            client.attributes["gateway.attempt"] = attempt.number
            if let status = attempt.status {
                client.attributes["http.response.status_code"] = status
                if status >= 500 { client.setStatus(SpanStatus(code: .error)) }
            }
            if let failure = attempt.error {
                client.attributes["error.type"] = failure
                client.setStatus(SpanStatus(code: .error))
            }
            client.end(at: EpochInstant(nanosecondsSinceEpoch: attempt.end ?? DefaultTracerClock.now.nanosecondsSinceEpoch))
        }
        span.end()
    }

    /// Writes the request's own place in its trace into `headers` (a WebSocket upgrade: the instance's
    /// handshake continues under the request's span).
    func propagate(_ trace: RequestTrace, into headers: inout HTTPFields) {
        if let span = trace.span { return inject(span.context, into: &headers) }
        headers[Self.traceparent] = trace.unsampled.traceparent
        if !trace.continued { headers[Self.tracestate] = nil }
    }

    /// Writes the span's `traceparent` and `tracestate` into `fields` (replacing any the client sent).
    func inject(_ context: ServiceContext, into fields: inout HTTPFields) {
        fields[Self.traceparent] = nil
        fields[Self.tracestate] = nil
        tracer.inject(context, into: &fields, using: HTTPFieldsInjector())
    }
}

/// The trace of one request, while it is answered: a sampled request's server span, or an unsampled
/// request's ids (and, with `sample_errors`, what it did).
struct RequestTrace: Sendable {
    /// The request's server span, when sampled.
    let span: (any Span)?
    /// An unsampled request's place in its trace (the span id stands for the gateway's part).
    let unsampled: TraceContext
    /// Whether the unsampled request continues the client's trace (its `tracestate` passes on).
    let continued: Bool
    /// With `sample_errors`, an unsampled request's steps.
    let kept: KeptRequest?
    /// Set when a stream took the span over (a sampled request's).
    private let handedOff: ManagedAtomic<Bool>?

    init(span: any Span) {
        self.span = span
        handedOff = ManagedAtomic(false)
        unsampled = TraceContext(traceIDHigh: 0, traceIDLow: 0, spanID: 0, sampled: true)
        continued = false
        kept = nil
    }

    init(unsampled: TraceContext, continued: Bool, kept: KeptRequest?) {
        span = nil
        handedOff = nil
        self.unsampled = unsampled
        self.continued = continued
        self.kept = kept
    }

    /// The span, for a stream to end when it closes (a WebSocket, an event stream); the request then
    /// leaves it open. Nil when unsampled or taken already.
    func handOff() -> StreamSpan? {
        guard let span, let handedOff, !handedOff.exchange(true, ordering: .relaxed) else { return nil }
        return StreamSpan(span)
    }

    var isHandedOff: Bool { handedOff?.load(ordering: .relaxed) ?? false }

    /// Whether attributes set now are kept (a recording span, or an unsampled request's steps).
    var isRecording: Bool { span?.isRecording ?? (kept != nil) }

    /// The trace id, 32 hex digits (the access log's `trace_id`).
    var traceIDHex: String {
        guard let span else { return unsampled.traceIDHex }
        return span.context.otelTraceID ?? ""
    }

    /// The trace id as a value (the console's slow requests format it only for the ones they keep).
    var traceID: TraceID? {
        guard let span else { return TraceID(high: unsampled.traceIDHigh, low: unsampled.traceIDLow) }
        return span.context.otelTraceID.flatMap(TraceID.init(hex:))
    }

    /// Sets a span attribute (names and values from the request path's own knowledge only — never a
    /// header value, token or query). Only evaluated when recording.
    func set(_ key: String, _ value: @autoclosure () -> some SpanAttributeConvertible) {
        if let span {
            if span.isRecording { span.attributes[key] = value() }
        } else if let kept {
            let attribute = value().toSpanAttribute()
            kept.state.withLock { $0.attributes[key] = attribute }
        }
    }

    /// An event for a policy stage that can take time (authentication, the rate-limit decision,
    /// admission), with its outcome and how long it took since `started` — recorded only when the request
    /// is (take `started` only then: `stageStart`).
    func stage(_ name: String, since started: ContinuousClock.Instant?, _ attributes: SpanAttributes = [:]) {
        guard let started else { return }
        var attributes = attributes
        attributes["gateway.duration_us"] = Int64(TelemetryClock.micros(.now - started))
        let event = SpanEvent(name: name, attributes: attributes)
        if let span {
            span.addEvent(event)
        } else if let kept {
            kept.state.withLock { $0.events.append(event) }
        }
    }

    /// When a stage starts, if the request is recorded (nil otherwise: nothing to measure).
    var stageStart: ContinuousClock.Instant? { isRecording ? .now : nil }

    /// Names the request's span (once its route is known).
    func rename(_ name: @autoclosure () -> String) {
        if let span {
            if span.isRecording { span.operationName = name() }
        } else if let kept {
            let name = name()
            kept.state.withLock { $0.name = name }
        }
    }
}

/// One attempt at an instance, traced: its client span, or its place among an unsampled request's steps.
struct AttemptTrace {
    let span: (any Span)?
    let kept: KeptRequest?
    let index: Int

    func answered(status: Int) {
        if let span {
            if span.isRecording {
                span.attributes["http.response.status_code"] = status
                if status >= 500 { span.setStatus(SpanStatus(code: .error)) }
            }
            span.end()
        } else if let kept {
            kept.attemptEnded(index, status: status, error: nil)
        }
    }

    func failed(_ error: some Error) {
        if let span {
            if span.isRecording {
                span.attributes["error.type"] = "\(error)"
                span.setStatus(SpanStatus(code: .error))
            }
            span.end()
        } else if let kept {
            kept.attemptEnded(index, status: nil, error: "\(error)")
        }
    }
}

/// What an unsampled request did, kept with `sample_errors` so that it can be recorded if it fails.
final class KeptRequest: Sendable {
    struct Attempt {
        var service: String
        var instance: String
        var authority: String
        var number: Int
        var start: UInt64
        var end: UInt64?
        var status: Int?
        var error: String?
    }

    struct State {
        var name: String
        var attributes: SpanAttributes = [:]
        var events: [SpanEvent] = []
        var attempts: [Attempt] = []
    }

    /// When the request began, in nanoseconds since 1970.
    let start = DefaultTracerClock.now.nanosecondsSinceEpoch
    /// The client's trusted parent, if any, and its `tracestate`.
    let parent: TraceContext?
    let tracestate: String?
    let state: Mutex<State>

    init(name: String, parent: TraceContext?, tracestate: String?) {
        self.parent = parent
        self.tracestate = tracestate
        state = Mutex(State(name: name))
    }

    func attemptStarted(service: String, instance: String, authority: String, number: Int) -> Int {
        let attempt = Attempt(service: service, instance: instance, authority: authority, number: number, start: DefaultTracerClock.now.nanosecondsSinceEpoch)
        return state.withLock { state in
            state.attempts.append(attempt)
            return state.attempts.count - 1
        }
    }

    func attemptEnded(_ index: Int, status: Int?, error: String?) {
        let end = DefaultTracerClock.now.nanosecondsSinceEpoch
        state.withLock { state in
            guard state.attempts.indices.contains(index) else { return }
            state.attempts[index].end = end
            state.attempts[index].status = status
            state.attempts[index].error = error
        }
    }
}

/// A moment as nanoseconds since 1970, for spans recorded after the fact.
struct EpochInstant: TracerInstant {
    var nanosecondsSinceEpoch: UInt64
    static func < (lhs: Self, rhs: Self) -> Bool { lhs.nanosecondsSinceEpoch < rhs.nanosecondsSinceEpoch }
}

/// A stream's span (a WebSocket upgrade's, an event stream's): it stays open while the stream lasts and
/// ends with one event for its close — never a span per message. Ended at the latest when released.
final class StreamSpan: Sendable {
    private let span: any Span
    private let ended = ManagedAtomic(false)

    init(_ span: any Span) { self.span = span }

    func closed(_ event: String, attributes: SpanAttributes) {
        guard ended.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        span.addEvent(SpanEvent(name: event, attributes: attributes))
        span.end()
    }

    deinit {
        if !ended.load(ordering: .relaxed) { span.end() }
    }
}

/// Counts swift-otel's batch outcomes from its diagnostic log: "Exported batch." and "Failed to export
/// batch." (with `batch_size`), "Spans were dropped …" (with `dropped_count`); passes warnings and errors on.
struct TracingDiagnostics: LogHandler {
    let exported: ManagedAtomic<Int>
    let dropped: ManagedAtomic<Int>
    let forward: Logger
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .debug

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        func count(_ key: String) -> Int {
            let value = event.metadata?[key] ?? metadata[key]
            return value.flatMap { Int("\($0)") } ?? 0
        }
        switch event.message.description {
        case "Exported batch.": exported.wrappingIncrement(by: count("batch_size"), ordering: .relaxed)
        case "Failed to export batch.": dropped.wrappingIncrement(by: count("batch_size"), ordering: .relaxed)
        case let message where message.hasPrefix("Spans were dropped"): dropped.wrappingIncrement(by: count("dropped_count"), ordering: .relaxed)
        default: break
        }
        if event.level >= .warning {
            forward.log(level: event.level, event.message, metadata: (event.metadata ?? [:]).merging(metadata) { event, _ in event })
        }
    }
}

struct HTTPFieldsExtractor: Extractor {
    func extract(key: String, from carrier: HTTPFields) -> String? {
        HTTPField.Name(key).flatMap { carrier[$0] }
    }
}

struct HTTPFieldsInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout HTTPFields) {
        if let name = HTTPField.Name(key) { carrier[name] = value }
    }
}

extension OTel {
    /// The tracing backend with the `tracing:` section applied (the `OTEL_*` variables, which swift-otel
    /// applies last, win over it).
    static func makeTracingBackend(configuration: OTel.Configuration, overrides config: TracingConfig) throws -> (factory: some Tracer, service: some Service) {
        var configuration = configuration
        if let endpoint = config.endpoint { configuration.traces.otlpExporter.endpoint = endpoint }
        if let name = config.serviceName { configuration.serviceName = name }
        if let interval = config.exportInterval { configuration.traces.batchSpanProcessor.scheduleDelay = interval }
        return try makeTracingBackend(configuration: configuration)
    }
}
