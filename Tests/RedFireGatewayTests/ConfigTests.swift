import Foundation
import Testing

@testable import RedFireGateway

@Suite("Configuration")
struct ConfigTests {
    static var examplePath: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("examples/gateway.yaml").path
    }

    @Test func exampleFileLoadsWithEveryService() throws {
        let config = try GatewayConfig.load(path: Self.examplePath, environment: ["JWT_SECRET": String(repeating: "s", count: 48)])
        #expect(config.auth.isEnabled)
        #expect(config.routes.allSatisfy { $0.permissions?.read != nil }, "every route declares who may read it")
        #expect(config.auth.publicPaths.contains("/api/v1/monitor/status"))
        #expect(config.services.map(\.name) == ["user_trading", "vnpy_core", "strategy_data", "gateway_adapter", "monitor"])
        #expect(config.routes.count == 6)
        let trading = try #require(config.service(named: "user_trading"))
        #expect(trading.instances[1].weight == 2)
        #expect(trading.retries.attempts == 2)
        #expect(trading.retries.budgetRatio == 0.2)
        #expect(trading.passiveEjection.maxTime == .seconds(300))
        #expect(config.service(named: "vnpy_core")?.instances.map(\.id) == ["vnpy_core-1", "vnpy_core-2"])
        #expect(config.service(named: "gateway_adapter")?.hashKey == .header("X-Account-Id"))
        #expect(config.service(named: "monitor")?.instances[0].url.host == "10.0.5.11")
        #expect(config.routes.last?.methods == ["GET"])
    }

    /// One service, one route: a base other sections are appended to.
    static let minimalYAML = """
    services:
      svc:
        instances: [{url: "http://127.0.0.1:9000"}]
    routes:
      - {prefix: /api, service: svc}

    """

    @Test func rateLimitsPermissionsAndTrustedProxiesParseAndBadValuesAreReported() throws {
        let config = try GatewayConfig.parse(yaml: """
        services:
          svc:
            instances: [{url: "http://127.0.0.1:9000"}]
        routes:
          - prefix: /api
            service: svc
            rate_limit: {rate: 10/s, burst: 20}
            permissions: {read: svc:read}
        auth:
          jwt_secret: "0123456789abcdef0123456789abcdef"
        rate_limits:
          default: {rate: 6000/m}
          roles: {premium: {rate: 1000/s, burst: 200}}
          headers: ietf_and_legacy
        trusted_proxies: [10.0.0.0/8, "::1"]
        """)
        #expect(config.routes[0].rateLimit == RateLimitPolicy(name: "route", count: 10, period: .seconds(1), burst: 20))
        #expect(config.routes[0].permissions == RoutePermissions(read: "svc:read"))
        #expect(config.rateLimits.defaultPolicy == RateLimitPolicy(name: "default", count: 6000, period: .seconds(60), burst: 100), "burst defaults to the per-second rate")
        #expect(config.rateLimits.rolePolicies["premium"]?.burst == 200)
        #expect(config.rateLimits.headers == .ietfAndLegacy)
        #expect(config.trustedProxies.map(\.description) == ["10.0.0.0/8", "::1"])

        #expect {
            try GatewayConfig.parse(yaml: Self.minimalYAML + """
            rate_limits:
              default: {rate: 10/d}
              headers: loud
            trusted_proxies: [10.0.0.0/40]
            """)
        } throws: { error in
            let text = (error as? ConfigError)?.description ?? ""
            return text.contains("rate_limits.default.rate") && text.contains("rate_limits.headers") && text.contains("trusted_proxies")
        }
        #expect {
            try GatewayConfig.parse(yaml: """
            services: {svc: {instances: [{url: "http://127.0.0.1:9000"}]}}
            routes: [{prefix: /api, service: svc, permissions: {read: svc:read}}]
            """)
        } throws: { error in
            let text = (error as? ConfigError)?.description ?? ""; return text.contains("routes[0].permissions") && text.contains("needs auth")
        }
    }

    @Test("tracing: every key parses; a bad ratio, trust value or endpoint is a clear error")
    func tracingParses() throws {
        let config = try GatewayConfig.parse(yaml: Self.minimalYAML + """
        tracing: {enabled: true, endpoint: "https://collector:4318/v1/traces", service_name: edge-eu, sample_ratio: 0.05,
                  sample_errors: true, trust_incoming: always, export_interval: 2s}
        """)
        #expect(config.tracing.enabled && config.tracing.endpoint == "https://collector:4318/v1/traces" && config.tracing.serviceName == "edge-eu")
        #expect(config.tracing.sampleRatio == 0.05 && config.tracing.sampleErrors && config.tracing.trustIncoming == .always)
        #expect(config.tracing.exportInterval == .seconds(2))
        #expect(GatewayConfig().tracing.enabled == false && GatewayConfig().tracing.sampleErrors == false)
        #expect {
            try GatewayConfig.parse(yaml: Self.minimalYAML + """
            tracing: {enabled: true, endpoint: "ftp://collector", sample_ratio: 2, trust_incoming: sometimes}
            """)
        } throws: { error in
            let text = (error as? ConfigError)?.description ?? ""
            return text.contains("tracing.endpoint") && text.contains("tracing.sample_ratio") && text.contains("tracing.trust_incoming")
        }
    }

    @Test("The exporter's settings: the tracing section, then the OTEL_* variables over it, as the SDKs read them")
    func traceExportSettings() {
        var config = TracingConfig()
        config.endpoint = "http://collector:4318/v1/traces"
        config.serviceName = "gateway-a"
        config.exportInterval = .seconds(1)
        var settings = TraceExportSettings(config: config, environment: [:])
        #expect(settings.endpoint == "http://collector:4318/v1/traces" && settings.scheduleDelay == .seconds(1))
        #expect(settings.resource["service.name"] == .string("gateway-a") && settings.maxExportBatchSize == 2_048 && !settings.disabled)
        settings = TraceExportSettings(config: config, environment: [
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318/", "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20abc, x-tenant = eu",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "500", "OTEL_BSP_SCHEDULE_DELAY": "250", "OTEL_BSP_MAX_QUEUE_SIZE": "100",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "500", "OTEL_SERVICE_NAME": "edge", "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,service.name=ignored",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        ])
        #expect(settings.endpoint == "http://otel:4318/v1/traces", "the traces path appended to the base endpoint")
        #expect(settings.headers.map { "\($0.0)=\($0.1)" } == ["authorization=Bearer abc", "x-tenant=eu"])
        #expect(settings.timeout == .milliseconds(500) && settings.scheduleDelay == .milliseconds(250))
        #expect(settings.maxQueueSize == 100 && settings.maxExportBatchSize == 100, "a batch is never larger than the queue")
        #expect(settings.resource["service.name"] == .string("edge") && settings.resource["deployment.environment"] == .string("prod"))
        #expect(settings.warnings.count == 1 && settings.warnings[0].contains("http/protobuf"))
        settings = TraceExportSettings(config: config, environment: ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://direct/x", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://base"])
        #expect(settings.endpoint == "http://direct/x")
        #expect(TraceExportSettings(config: config, environment: ["OTEL_TRACES_EXPORTER": "none"]).disabled)
        #expect(TraceExportSettings(config: config, environment: ["OTEL_SDK_DISABLED": "true"]).disabled)
        #expect(TraceExportSettings(config: config, environment: ["OTEL_BSP_MAX_QUEUE_SIZE": "lots"]).warnings.count == 1)
    }

    @Test func connectionLimitsServerNamesAndSlashMergingParse() throws {
        let config = try GatewayConfig.parse(yaml: Self.minimalYAML + """
        limits: {header_timeout: 2s, idle_timeout: 30s, body_timeout: 15s}
        server_names: [API.RedFire.example, gateway.internal]
        merge_slashes: false
        """)
        #expect(config.limits.headerTimeout == .seconds(2) && config.limits.idleTimeout == .seconds(30) && config.limits.bodyTimeout == .seconds(15))
        #expect(config.serverNames == ["api.redfire.example", "gateway.internal"])
        #expect(config.mergeSlashes == false)
        let settings = ConnectionSettings(config: config)
        #expect(settings.serverNames == ["api.redfire.example", "gateway.internal"])
        #expect(ConnectionSettings(config: GatewayConfig()).serverNames == ["localhost", "127.0.0.1", "[::1]"], "listen 0.0.0.0 is no name")
        #expect {
            try GatewayConfig.parse(yaml: Self.minimalYAML + """
            limits: {header_timeout: 1ms, body_timeout: 0s}
            server_names: ["http://x/"]
            """)
        } throws: { error in
            let text = (error as? ConfigError)?.description ?? ""
            return text.contains("limits.header_timeout") && text.contains("limits.body_timeout") && text.contains("server_names")
        }
    }

    @Test func defaultsApplyWhenKeysAreAbsent() throws {
        let config = try GatewayConfig.parse(yaml: """
        services:
          svc:
            instances: [{url: "http://127.0.0.1:9000"}]
        routes:
          - {prefix: /api, service: svc}
        """, environment: [:])
        let service = config.services[0]
        #expect(config.listen == ListenAddress(host: "0.0.0.0", port: 8080))
        #expect(config.shutdownGrace == .seconds(30))
        #expect(service.strategy == .roundRobin)
        #expect(service.healthCheck == HealthCheckConfig())
        #expect(service.timeouts == TimeoutConfig())
        #expect(service.retries.attempts == 1)
        #expect(config.routes[0].stripPrefix == false)
        #expect(config.console == ConsoleConfig())
        #expect(config.console.theme == "default-dark" && config.console.refreshRate == 4)
    }

    @Test func consoleSectionIsReadAndChecked() throws {
        let base = Self.minimalYAML
        let config = try GatewayConfig.parse(yaml: base + "console: {theme: high-contrast, refresh_rate: 10, log_file: /tmp/g.log, read_only: true}", environment: [:])
        #expect(config.console.theme == "high-contrast")
        #expect(config.console.refreshRate == 10)
        #expect(config.console.logFile == "/tmp/g.log")
        #expect(config.console.readOnly)
        let error = #expect(throws: ConfigError.self) {
            try GatewayConfig.parse(yaml: base + "console: {refresh_rate: 100, them: x}", environment: [:])
        }
        let text = error?.description ?? ""
        #expect(text.contains("console.refresh_rate (line 6)"))
        #expect(text.contains("console.them (line 6): unknown key"))
    }

    @Test(arguments: [("250ms", Duration.milliseconds(250)), ("5s", .seconds(5)), ("2m", .seconds(120)), ("1h", .seconds(3600)), ("1m30s", .seconds(90)), ("1.5s", .milliseconds(1500))])
    func durations(text: String, expected: Duration) {
        #expect(ConfigDuration.parse(text) == expected)
    }

    @Test(arguments: ["5", "five", "5 s", "-1s", "5sec", ""])
    func invalidDurations(text: String) {
        #expect(ConfigDuration.parse(text) == nil)
    }

    @Test func streamSettingsOfARoute() throws {
        let yaml = """
        services:
          svc:
            instances: [{url: "http://127.0.0.1:7000"}]
        routes:
          - {prefix: /ws, service: svc, websocket: true}
          - prefix: /quotes
            service: svc
            stream_idle_timeout: 5m
            websocket: {max_message_size: 4096, max_upstream_message_size: 65536, idle_timeout: 30s, max_duration: 8h,
                        token_grace: 10s, origins: ["https://app.redfire.example"]}
          - {prefix: /plain, service: svc, websocket: false}
        """
        let config = try GatewayConfig.parse(yaml: yaml)
        #expect(config.routes[0].websocket == WebSocketRouteConfig())
        let quotes = try #require(config.routes[1].websocket)
        #expect(quotes.maxClientMessage == 4096 && quotes.maxUpstreamMessage == 65536)
        #expect(quotes.idleTimeout == .seconds(30) && quotes.maxDuration == .seconds(8 * 3600) && quotes.tokenGrace == .seconds(10))
        #expect(quotes.origins == ["https://app.redfire.example"])
        #expect(config.routes[1].streamIdleTimeout == .seconds(300))
        #expect(config.routes[2].websocket == nil)

        let broken = yaml.replacingOccurrences(of: "token_grace: 10s", with: "token_grace: 10s, max_mesage_size: 1")
            .replacingOccurrences(of: "https://app.redfire.example", with: "app.redfire.example")
        let error = #expect(throws: ConfigError.self) { try GatewayConfig.parse(yaml: broken) }
        #expect(Set(error?.problems.map(\.path) ?? []) == ["routes[1].websocket.max_mesage_size", "routes[1].websocket.origins"])
    }

    @Test func environmentSubstitution() throws {
        let yaml = """
        listen: ${LISTEN}
        services:
          svc:
            instances: [{url: "http://${HOST:-127.0.0.1}:${PORT}"}]
        routes: [{prefix: /api, service: svc}]
        """
        let config = try GatewayConfig.parse(yaml: yaml, environment: ["LISTEN": "127.0.0.1:9999", "PORT": "7000"])
        #expect(config.listen.port == 9999)
        #expect(config.services[0].instances[0].url == UpstreamURL(host: "127.0.0.1", port: 7000))

        let error = #expect(throws: ConfigError.self) { try GatewayConfig.parse(yaml: yaml, environment: ["LISTEN": "127.0.0.1:1"]) }
        #expect(error?.problems.map(\.path) == ["services.svc.instances[0].url"])
        #expect(error?.problems.first?.message.contains("PORT") == true)
    }

    /// Every problem in a broken file is reported at once, each with its key path and line.
    @Test func brokenFileReportsEveryProblemWithKeyPath() throws {
        let yaml = """
        listen: 127.0.0.1:8080
        shutdown_grace: soon
        services:
          user_trading:
            strategy: round_robbin
            instances:
              - url: http://127.0.0.1:9001
                wieght: 2
              - url: ftp://example
            health_check:
              interval: 5
              unhealthy_threshold: 0
          vnpy_core:
            instances: [{url: "http://127.0.0.1:9002"}]
            timeouts: {connect: 1x}
        routes:
          - prefix: /api/v1/trading
            service: user_trading
          - prefix: /api/v1/strategy
            service: strategy_data
          - prefix: api/v1/vnpy
            service: vnpy_core
        colour: blue
        """
        let error = try #require(throws: ConfigError.self) { try GatewayConfig.parse(yaml: yaml, environment: [:]) }
        let byPath = Dictionary(grouping: error.problems, by: \.path)
        #expect(byPath["shutdown_grace"]?.first?.message.contains("invalid duration") == true)
        #expect(byPath["shutdown_grace"]?.first?.line == 2)
        #expect(byPath["services.user_trading.strategy"]?.first?.message.contains("round_robin") == true)
        #expect(byPath["services.user_trading.instances[0].wieght"]?.first?.message.contains("unknown key") == true)
        #expect(byPath["services.user_trading.instances[0].wieght"]?.first?.message.contains("weight") == true)
        #expect(byPath["services.user_trading.instances[0].wieght"]?.first?.line == 8)
        #expect(byPath["services.user_trading.instances[1].url"] != nil)
        #expect(byPath["services.user_trading.health_check.interval"] != nil)
        #expect(byPath["services.user_trading.health_check.unhealthy_threshold"] != nil)
        #expect(byPath["services.vnpy_core.timeouts.connect"] != nil)
        #expect(byPath["routes[1].service"]?.first?.message.contains("strategy_data") == true)
        #expect(byPath["routes[2].prefix"] != nil)
        #expect(byPath["colour"]?.first?.message == "unknown key")
        #expect(error.problems.count == 10, "\(error)")
    }

    @Test func invalidYAMLReportsItsLine() {
        let error = #expect(throws: ConfigError.self) { try GatewayConfig.parse(yaml: "services:\n  a: [1, 2\nroutes: x\n", environment: [:]) }
        #expect(error?.problems.first?.line != nil)
        #expect(error?.problems.first?.message.contains("invalid YAML") == true)
    }

    @Test func duplicateInstanceIdsAndPrefixesAreRefused() {
        let yaml = """
        services:
          a: {instances: [{id: x, url: "http://127.0.0.1:1"}]}
          b: {instances: [{id: x, url: "http://127.0.0.1:2"}]}
        routes:
          - {prefix: /a, service: a}
          - {prefix: /a/, service: b}
        """
        let error = #expect(throws: ConfigError.self) { try GatewayConfig.parse(yaml: yaml, environment: [:]) }
        #expect(error?.problems.contains { $0.path == "services.b.instances" && $0.message.contains("already used") } == true)
        #expect(error?.problems.contains { $0.path == "routes[1].prefix" } == true)
    }

    @Test func adminAndTelemetrySettings() throws {
        let yaml = """
        admin: {token: "${ADMIN_TOKEN}"}
        telemetry: {retention: 30m}
        services: {svc: {instances: [{url: "http://127.0.0.1:1"}]}}
        routes: [{prefix: /a, service: svc}]
        """
        let config = try GatewayConfig.parse(yaml: yaml, environment: ["ADMIN_TOKEN": "0123456789abcdef0123"])
        #expect(config.adminToken == "0123456789abcdef0123")
        #expect(config.telemetryRetention == .seconds(1800))
        let error = #expect(throws: ConfigError.self) { try GatewayConfig.parse(yaml: yaml, environment: ["ADMIN_TOKEN": "short"]) }
        #expect(error?.problems.map(\.path) == ["admin.token"])
    }

    @Test func missingFileIsAClearError() {
        let error = #expect(throws: ConfigError.self) { try GatewayConfig.load(path: "/nonexistent/gateway.yaml") }
        #expect(error?.description.contains("does not exist") == true)
    }
}
