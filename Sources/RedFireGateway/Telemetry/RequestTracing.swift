import Atomics
import HTTPTypes
import Instrumentation
import Logging
import OTel
import ServiceLifecycle
import Tracing

/// Distributed tracing of requests (W3C Trace Context Level 1, spans exported over OTLP/HTTP by
/// swift-otel): one server span per request, one client span per attempt at an instance, the attempt's
/// `traceparent` (and `tracestate`) sent to the instance. Spans are recorded as the sampler decides
/// (parent-based: a request with a sampled parent is recorded, a new trace with `sample_ratio`) and queued
/// for a batching exporter that never makes a request wait: when the collector is slow or gone, its
/// bounded queue drops spans.
package final class RequestTracing: Sendable {
    let tracer: any Tracer
    let trustIncoming: TracingConfig.TrustIncoming
    /// The exporter's background work, run with the gateway's services.
    let service: any Service
    /// Spans sent to the collector, and spans lost on the way (the queue full, or an export that failed).
    private let exportedCounter = ManagedAtomic<Int>(0)
    private let droppedCounter = ManagedAtomic<Int>(0)
    package var exportedSpans: Int { exportedCounter.load(ordering: .relaxed) }
    package var droppedSpans: Int { droppedCounter.load(ordering: .relaxed) }

    /// The request's server span while it is answered (set only when tracing is on).
    @TaskLocal static var currentSpan: (any Span)?

    static let traceparent = HTTPField.Name("traceparent")!
    static let tracestate = HTTPField.Name("tracestate")!

    init(config: TracingConfig, logger: Logger) throws {
        var configuration = OTel.Configuration.default
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.traces.enabled = true
        configuration.propagators = [.traceContext]
        configuration.serviceName = "redfire-gateway"
        configuration.traces.sampler = .parentBasedTraceIDRatio(ratio: 0.01) ?? .parentBasedTraceIDRatio
        configuration.traces.otlpExporter.protocol = .httpProtobuf
        // A collector that does not answer holds up no more than this, at shutdown too (the default
        // waits 10 s per export, 30 s per batch).
        configuration.traces.otlpExporter.timeout = .seconds(2)
        configuration.traces.batchSpanProcessor.exportTimeout = .seconds(3)
        // swift-otel reports what it exported and lost only in its diagnostics: they are counted here
        // (`/metrics`), and its warnings go on to the gateway's log.
        let exported = exportedCounter, dropped = droppedCounter
        var diagnostics = Logger(label: "redfire.tracing") { _ in TracingDiagnostics(exported: exported, dropped: dropped, forward: logger) }
        diagnostics.logLevel = .debug
        configuration.diagnosticLogger = .custom(diagnostics)
        configuration.diagnosticLogLevel = .debug
        // The `tracing:` section over these defaults; swift-otel then applies the `OTEL_*` variables.
        let backend = try OTel.makeTracingBackend(configuration: configuration, overrides: config)
        self.tracer = backend.factory
        self.service = backend.service
        self.trustIncoming = config.trustIncoming
    }

    /// Starts the request's server span: continuing the client's trace when it may (`trust_incoming`),
    /// else a new one.
    func serverSpan(_ name: String, fields: HTTPFields, peerTrusted: Bool) -> any Span {
        var context = ServiceContext.topLevel
        let trusted = trustIncoming == .always || (trustIncoming == .trustedProxies && peerTrusted)
        if trusted, fields[Self.traceparent] != nil { tracer.extract(fields, into: &context, using: HTTPFieldsExtractor()) }
        return tracer.startSpan(name, context: context, ofKind: .server)
    }

    /// A client span for one attempt at an instance, child of the request's span.
    func attemptSpan(_ name: String, parent: ServiceContext) -> any Span {
        tracer.startSpan(name, context: parent, ofKind: .client)
    }

    /// Writes the span's `traceparent` and `tracestate` into `fields` (replacing any the client sent).
    func inject(_ context: ServiceContext, into fields: inout HTTPFields) {
        fields[Self.traceparent] = nil
        fields[Self.tracestate] = nil
        tracer.inject(context, into: &fields, using: HTTPFieldsInjector())
    }

    /// The trace id of a span's context (32 hex digits), for the access log.
    func traceID(of context: ServiceContext) -> String? {
        var fields = HTTPFields()
        tracer.inject(context, into: &fields, using: HTTPFieldsInjector())
        guard let traceparent = fields[Self.traceparent], traceparent.utf8.count >= 35 else { return nil }
        return String(traceparent.dropFirst(3).prefix(32))
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
        if let ratio = config.sampleRatio, let sampler = OTel.Configuration.TracesConfiguration.SamplerConfiguration.parentBasedTraceIDRatio(ratio: ratio) {
            configuration.traces.sampler = sampler
        }
        return try makeTracingBackend(configuration: configuration)
    }
}
