import AsyncHTTPClient
import Atomics
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// Where and how spans leave: the `tracing:` section, with the standard `OTEL_*` variables winning over
/// it (as the OpenTelemetry SDKs read them).
struct TraceExportSettings: Sendable {
    var endpoint = "http://localhost:4318/v1/traces"
    var headers: [(String, String)] = []
    var timeout: Duration = .seconds(2)
    var scheduleDelay: Duration = .seconds(5)
    var maxQueueSize = 8_192
    /// The SDKs default to 512; at a gateway's rates each export request costs more than the spans in it
    /// (docs/benchmarks.md).
    var maxExportBatchSize = 2_048
    var resource: SpanFields = [:]
    /// `OTEL_TRACES_EXPORTER=none` or `OTEL_SDK_DISABLED=true`: spans are recorded, nothing is sent.
    var disabled = false
    /// What was set but not understood (logged at start).
    var warnings: [String] = []

    init(config: TracingConfig, environment: [String: String]) {
        var serviceName = config.serviceName ?? "redfire-gateway"
        var resource: [(String, String)] = []
        if let endpoint = config.endpoint { self.endpoint = endpoint }
        if let interval = config.exportInterval { scheduleDelay = interval }

        func milliseconds(_ name: String) -> Duration? {
            guard let text = environment[name] else { return nil }
            guard let value = Int(text), value >= 0 else { warnings.append("\(name)=\(text) is not a number of milliseconds"); return nil }
            return .milliseconds(value)
        }
        func count(_ name: String) -> Int? {
            guard let text = environment[name] else { return nil }
            guard let value = Int(text), value > 0 else { warnings.append("\(name)=\(text) is not a positive number"); return nil }
            return value
        }
        if let endpoint = environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] {
            self.endpoint = endpoint
        } else if let base = environment["OTEL_EXPORTER_OTLP_ENDPOINT"] {
            self.endpoint = (base.hasSuffix("/") ? String(base.dropLast()) : base) + "/v1/traces"
        }
        if let text = environment["OTEL_EXPORTER_OTLP_TRACES_HEADERS"] ?? environment["OTEL_EXPORTER_OTLP_HEADERS"] { headers = Self.pairs(text) }
        if let value = milliseconds("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") ?? milliseconds("OTEL_EXPORTER_OTLP_TIMEOUT") { timeout = value }
        if let value = milliseconds("OTEL_BSP_SCHEDULE_DELAY") { scheduleDelay = value }
        if let value = count("OTEL_BSP_MAX_QUEUE_SIZE") { maxQueueSize = value }
        if let value = count("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") { maxExportBatchSize = value }
        for name in ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"] {
            if let value = environment[name], value != "http/protobuf" { warnings.append("\(name)=\(value): the gateway exports OTLP over HTTP with protobuf (http/protobuf) only") }
        }
        if environment["OTEL_SDK_DISABLED"]?.lowercased() == "true" { disabled = true }
        if let exporter = environment["OTEL_TRACES_EXPORTER"] {
            if exporter == "none" { disabled = true } else if exporter != "otlp" { warnings.append("OTEL_TRACES_EXPORTER=\(exporter): only otlp (or none)") }
        }
        if let text = environment["OTEL_RESOURCE_ATTRIBUTES"] {
            for (key, value) in Self.pairs(text) {
                if key == "service.name" { serviceName = config.serviceName ?? value } else { resource.append((key, value)) }
            }
        }
        if let name = environment["OTEL_SERVICE_NAME"] { serviceName = name }
        if !(endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://")) { warnings.append("the OTLP endpoint \(endpoint) is not an http:// or https:// URL") }
        maxExportBatchSize = min(maxExportBatchSize, maxQueueSize)
        var fields: SpanFields = ["service.name": .string(serviceName), "service.version": .string(GatewayVersion.current),
                                  "telemetry.sdk.name": "redfire-gateway", "telemetry.sdk.language": "swift"]
        for (key, value) in resource { fields[key] = .string(value) }
        self.resource = fields
    }

    /// `key=value,key=value` with percent-encoded values (the W3C Baggage form the OTEL variables use).
    static func pairs(_ text: String) -> [(String, String)] {
        text.split(separator: ",").compactMap { item in
            guard let equals = item.firstIndex(of: "=") else { return nil }
            let key = item[..<equals].trimmingCharacters(in: .whitespaces)
            let value = item[item.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty else { return nil }
            return (key, value.removingPercentEncoding ?? value)
        }
    }
}

extension SpanValue: ExpressibleByStringLiteral {
    init(stringLiteral value: String) { self = .string(value) }
}

/// Sends finished spans to the collector over OTLP/HTTP (protobuf), in batches, from a thread of its own:
/// a request only appends its span to one of a few queues (chosen by span id, so requests on different
/// loops rarely meet on a lock), and a full queue drops the span and counts it — the request path never
/// waits for the collector. Every `schedule_delay`, or as soon as a batch is full, the queues are emptied
/// into requests of at most `max_export_batch_size` spans, one export at a time; a failed or timed-out
/// export counts its spans as dropped (no retry: the next batch is already waiting).
final class TraceExporter: Service, Sendable {
    let settings: TraceExportSettings
    /// The queue, in shards (a request appends to the one its span id picks).
    private final class Shard: Sendable {
        let spans = Mutex<[RecordedSpan]>([])
    }

    private let shards: [Shard]
    private let queued = ManagedAtomic<Int>(0)
    private let exported = ManagedAtomic<Int>(0)
    private let dropped = ManagedAtomic<Int>(0)
    /// Set when a batch is full: the exporting task is woken once for it.
    private let batchReady = ManagedAtomic<Bool>(false)
    /// Wake-ups of the exporting task (a full batch, the schedule, shutdown), coalesced.
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    /// When the last export warning was logged (seconds): at most one every 10 s.
    private let lastWarning = ManagedAtomic<Int64>(0)
    private let logger: Logger

    var exportedSpans: Int { exported.load(ordering: .relaxed) }
    var droppedSpans: Int { dropped.load(ordering: .relaxed) }

    init(settings: TraceExportSettings, logger: Logger) {
        self.settings = settings
        self.logger = logger
        shards = (0..<8).map { _ in Shard() }
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues a finished span (any thread); dropped and counted when the queue is full.
    func submit(_ span: RecordedSpan) {
        guard !settings.disabled else { return }
        let count = queued.loadThenWrappingIncrement(ordering: .relaxed)
        guard count < settings.maxQueueSize else {
            queued.wrappingDecrement(ordering: .relaxed)
            dropped.wrappingIncrement(ordering: .relaxed)
            return
        }
        shards[Int(span.spanID & 7)].spans.withLock { $0.append(span) }
        if count + 1 >= settings.maxExportBatchSize, !batchReady.exchange(true, ordering: .relaxed) { wake.yield() }
    }

    /// Every queued span, taken out of the queues (each shard's array as it is: no span is copied).
    private func drain() -> [[RecordedSpan]] {
        batchReady.store(false, ordering: .relaxed)
        var taken: [[RecordedSpan]] = []
        var count = 0
        for shard in shards {
            let spans = shard.spans.withLock { queue in
                var spans: [RecordedSpan] = []
                spans.reserveCapacity(queue.capacity)
                swap(&spans, &queue)
                return spans
            }
            count += spans.count
            if !spans.isEmpty { taken.append(spans) }
        }
        queued.wrappingDecrement(by: count, ordering: .relaxed)
        return taken
    }

    /// Exports on a thread of its own (one event loop, also the HTTP client's) until shutdown, then sends
    /// what is left within 3 s.
    func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let timeout = TimeAmount(settings.timeout)
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: timeout, read: timeout))
        configuration.httpVersion = .http1Only
        let client = HTTPClient(eventLoopGroupProvider: .shared(group), configuration: configuration)
        let delay = settings.scheduleDelay, wake = wake
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: delay)
                wake.yield()
            }
        }
        await withTaskExecutorPreference(EventLoopTaskExecutor(group.next())) {
            await withGracefulShutdownHandler {
                for await _ in wakeups { await exportQueued(client, deadline: nil) }
            } onGracefulShutdown: {
                wake.finish()
            }
            ticker.cancel()
            await exportQueued(client, deadline: .now + .seconds(3))
        }
        try? await client.shutdown()
        try? await group.shutdownGracefully()
    }

    private func exportQueued(_ client: HTTPClient, deadline: ContinuousClock.Instant?) async {
        let spans = drain().joined()
        var start = spans.startIndex
        while start != spans.endIndex {
            let end = spans.index(start, offsetBy: settings.maxExportBatchSize, limitedBy: spans.endIndex) ?? spans.endIndex
            if let deadline, ContinuousClock.now > deadline {
                dropped.wrappingIncrement(by: spans[start...].count, ordering: .relaxed)
                return
            }
            await export(spans[start..<end], client: client)
            start = end
        }
    }

    private func export(_ batch: some Collection<RecordedSpan> & Sendable, client: HTTPClient) async {
        let body = OTLPEncoding.exportRequest(batch, resource: settings.resource, scope: "redfire-gateway", scopeVersion: GatewayVersion.current)
        var request = HTTPClientRequest(url: settings.endpoint)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-protobuf")
        for (name, value) in settings.headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(body)
        let problem: Logger.Metadata
        do {
            let response = try await client.execute(request, timeout: TimeAmount(settings.timeout))
            // The answer's body (a protobuf status) is read and let go, so the connection is reused.
            for try await _ in response.body {}
            if (200..<300).contains(response.status.code) {
                exported.wrappingIncrement(by: batch.count, ordering: .relaxed)
                return
            }
            problem = ["status": .stringConvertible(response.status.code)]
        } catch {
            problem = ["error": .string("\(error)")]
        }
        dropped.wrappingIncrement(by: batch.count, ordering: .relaxed)
        let now = TelemetryClock.second()
        let last = lastWarning.load(ordering: .relaxed)
        if now - last >= 10, lastWarning.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged {
            logger.warning("spans could not be exported (dropped and counted in gateway_tracing_spans_dropped_total)",
                           metadata: problem.merging(["spans": .stringConvertible(batch.count), "endpoint": .string(settings.endpoint)]) { a, _ in a })
        }
    }
}
