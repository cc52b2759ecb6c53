/// `tracing` — distributed tracing (W3C Trace Context, spans exported over OTLP/HTTP). Off by default.
/// The standard `OTEL_*` environment variables (`OTEL_EXPORTER_OTLP_ENDPOINT`,
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`, …) apply as the OpenTelemetry
/// SDKs read them — they win over the keys here (`TraceExportSettings`, `RequestTracing.sampler`).
public struct TracingConfig: Sendable, Equatable {
    /// `enabled` — default `false`.
    public var enabled = false
    /// `endpoint` — the collector's OTLP/HTTP traces URL, e.g. `http://otel-collector:4318/v1/traces`.
    /// Default: the `OTEL_*` variables, else `http://localhost:4318/v1/traces`.
    public var endpoint: String?
    /// `service_name` — the `service.name` of the gateway's spans. Default `OTEL_SERVICE_NAME`, else
    /// `redfire-gateway`.
    public var serviceName: String?
    /// `sample_ratio` — the share of new traces that are recorded, 0–1. A request that arrives with a
    /// trusted parent follows its parent's decision. Default `0.01` (`OTEL_TRACES_SAMPLER` and
    /// `OTEL_TRACES_SAMPLER_ARG` win over it).
    public var sampleRatio: Double?
    /// `sample_errors` — also record unsampled requests answered with a 5xx (or failing), after the fact
    /// from the steps they kept: a trace of their own, linked to the ids the instance received. Default
    /// `false`.
    public var sampleErrors = false
    /// `trust_incoming` — whose `traceparent`/`tracestate` the gateway continues: `trusted_proxies`
    /// (default: only from `trusted_proxies`), `always` or `never`. Otherwise a new trace starts and the
    /// client's fields do not reach the service.
    public var trustIncoming: TrustIncoming = .trustedProxies
    /// `export_interval` — how long finished spans wait to be sent in one batch. Default `5s`
    /// (`OTEL_BSP_SCHEDULE_DELAY`).
    public var exportInterval: Duration?

    public enum TrustIncoming: String, Sendable, CaseIterable {
        case always
        case trustedProxies = "trusted_proxies"
        case never
    }

    public init() {}
}
