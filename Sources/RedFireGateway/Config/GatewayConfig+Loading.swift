import HTTPTypes
import Foundation
import Yams

extension GatewayConfig {
    /// Loads and validates a configuration file. Throws `ConfigError` listing every problem found.
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> GatewayConfig {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot be read (check its permissions and encoding)" : "does not exist"
            throw ConfigError(source: path, problems: [ConfigProblem(path: "", line: nil, message: "the file \(reason)")])
        }
        let directory = (path as NSString).deletingLastPathComponent
        var config = try parse(yaml: text, source: path, environment: environment, baseDirectory: directory)
        // Relative file paths in the configuration are relative to the configuration file.
        let files = ConfigReader(environment: environment, baseDirectory: directory)
        config.console.logFile = config.console.logFile.map(files.resolve)
        if config.console.theme.contains("/") { config.console.theme = files.resolve(config.console.theme) }
        config.auth.gatewayTokenKeyFile = config.auth.gatewayTokenKeyFile.map(files.resolve)
        config.auth.database = config.auth.database.map(files.resolve)
        config.dataDirectory = files.resolve(config.dataDirectory ?? "data")
        return config
    }

    /// Parses and validates YAML text. Throws `ConfigError` listing every problem found.
    /// - Parameter baseDirectory: what relative key and secret files are relative to (the file's directory).
    public static func parse(yaml: String, source: String = "config", environment: [String: String] = ProcessInfo.processInfo.environment,
                             baseDirectory: String? = nil) throws -> GatewayConfig {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: yaml) else {
                throw ConfigError(source: source, problems: [ConfigProblem(path: "", line: nil, message: "the file is empty")])
            }
            root = node
        } catch let error as ConfigError {
            throw error
        } catch let error as YamlError {
            throw ConfigError(source: source, problems: [Self.problem(from: error)])
        }
        let reader = ConfigReader(environment: environment, baseDirectory: baseDirectory)
        let config = decode(root, reader: reader)
        if reader.problems.isEmpty, let config {
            return config
        }
        throw ConfigError(source: source, problems: reader.problems)
    }

    private static func problem(from error: YamlError) -> ConfigProblem {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return ConfigProblem(path: "", line: mark.line, message: "invalid YAML: \(problem)")
        default:
            return ConfigProblem(path: "", line: nil, message: "invalid YAML: \(error)")
        }
    }

    private static func decode(_ root: Node, reader: ConfigReader) -> GatewayConfig? {
        guard let top = reader.object(root, path: "") else { return nil }
        var config = GatewayConfig()
        if let text = top.string("listen") {
            if let address = ListenAddress(parsing: text) { config.listen = address }
            else { reader.report("listen", top.node("listen"), "expected HOST:PORT, found \"\(text)\"") }
        }
        if let listeners = config.loadListeners(top, reader: reader) { config.listeners = listeners }
        if let grace = top.duration("shutdown_grace") { config.shutdownGrace = grace }
        if let merge = top.bool("merge_slashes") { config.mergeSlashes = merge }
        if let threads = top.int("event_loop_threads", in: 1...256) { config.eventLoopThreads = threads }
        if let kind = top.string("upstream_transport", oneOf: UpstreamTransportKind.allCases.map(\.rawValue)) {
            config.upstreamTransport = UpstreamTransportKind(rawValue: kind) ?? .nio
        }
        if let directory = top.string("data_dir") {
            if directory.isEmpty { reader.report("data_dir", top.node("data_dir"), "must not be empty") } else { config.dataDirectory = directory }
        }
        if let admin = top.object("admin") {
            if let token = admin.string("token") {
                if token.utf8.count >= 16 { config.adminToken = token }
                else { reader.report(admin.childPath("token"), admin.node("token"), "must be at least 16 characters") }
            }
            admin.finish()
        }
        if let telemetry = top.object("telemetry") {
            if let retention = telemetry.duration("retention", atLeast: .seconds(60)) {
                if retention <= .seconds(86_400) { config.telemetryRetention = retention }
                else { reader.report(telemetry.childPath("retention"), telemetry.node("retention"), "must be at most 24h") }
            }
            if let open = telemetry.bool("public_metrics") { config.publicMetrics = open }
            if let token = telemetry.string("metrics_token") {
                if token.utf8.count >= 16 { config.metricsToken = token }
                else { reader.report(telemetry.childPath("metrics_token"), telemetry.node("metrics_token"), "must be at least 16 characters") }
            }
            telemetry.finish()
        }
        if let auth = top.object("auth") { config.auth.load(auth, reader: reader, mergeSlashes: config.mergeSlashes) }
        if let limits = top.object("rate_limits") { config.rateLimits.load(limits, reader: reader) }
        if let limits = top.object("limits") { config.limits.load(limits) }
        if let log = top.object("access_log") { config.accessLog.load(log, reader: reader) }
        if let cors = top.object("cors") { config.cors.load(cors, reader: reader) }
        if let tracing = top.object("tracing") {
            if let enabled = tracing.bool("enabled") { config.tracing.enabled = enabled }
            if let endpoint = tracing.string("endpoint") {
                if endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://") { config.tracing.endpoint = endpoint }
                else { reader.report(tracing.childPath("endpoint"), tracing.node("endpoint"), "must be an http:// or https:// URL, e.g. http://otel-collector:4318/v1/traces") }
            }
            config.tracing.serviceName = tracing.string("service_name")
            config.tracing.sampleRatio = tracing.double("sample_ratio", in: 0...1)
            if let errors = tracing.bool("sample_errors") { config.tracing.sampleErrors = errors }
            config.tracing.exportInterval = tracing.duration("export_interval", atLeast: .milliseconds(10))
            if let trust = tracing.string("trust_incoming", oneOf: TracingConfig.TrustIncoming.allCases.map(\.rawValue)) {
                config.tracing.trustIncoming = TracingConfig.TrustIncoming(rawValue: trust) ?? .trustedProxies
            }
            tracing.finish()
        }
        if let proxies = top.stringList("trusted_proxies") {
            for text in proxies {
                if let cidr = CIDR(parsing: text) { config.trustedProxies.append(cidr) }
                else { reader.report("trusted_proxies", top.node("trusted_proxies"), "\"\(text)\" is not an address or CIDR (10.0.0.0/8, ::1/128)") }
            }
        }
        if let headers = top.object("client_headers") { config.clientHeaders.load(headers, reader: reader) }
        if let names = top.stringList("server_names") {
            for name in names {
                let host = name.lowercased()
                if host.isEmpty || host.contains("/") || host.contains(" ") || host.contains("@") {
                    reader.report("server_names", top.node("server_names"), "\"\(name)\" is not a host name (api.redfire.example)")
                } else {
                    config.serverNames.append(host)
                }
            }
        }
        if let console = top.object("console") { config.console.load(console, reader: reader) }
        if let cluster = top.object("cluster") { config.cluster.load(cluster, reader: reader) }

        var instanceIDs: [String: String] = [:]
        if let entries = top.namedEntries("services") {
            for entry in entries {
                if let service = ServiceConfig.decode(name: entry.name, path: entry.path, node: entry.node, reader: reader) {
                    for instance in service.instances {
                        if let other = instanceIDs[instance.id] {
                            reader.report("\(entry.path).instances", entry.node, "instance id \"\(instance.id)\" is already used by service \(other)")
                        }
                        instanceIDs[instance.id] = service.name
                    }
                    config.services.append(service)
                }
            }
        } else if !top.has("services") {
            reader.report("services", root, "is required: at least one service")
        }

        if config.upstreamTransport == .asyncHTTPClient {
            for service in config.services where service.tls?.serverName != nil {
                reader.report("services.\(service.name).tls.server_name", nil, "needs upstream_transport: nio (AsyncHTTPClient sends the instance's host as SNI)")
            }
        }

        if let routes = top.list("routes") {
            var prefixes: Set<String> = []
            for (path, node) in routes {
                guard let (route, keyNodes) = RouteConfig.decode(path: path, node: node, reader: reader) else { continue }
                if !config.services.contains(where: { $0.name == route.service }) {
                    let known = config.services.map(\.name).joined(separator: ", ")
                    reader.report("\(path).service", keyNodes.service ?? node, "no service named \"\(route.service)\" (known: \(known.isEmpty ? "none" : known))")
                }
                if !prefixes.insert(route.prefix).inserted {
                    reader.report("\(path).prefix", keyNodes.prefix ?? node, "prefix \"\(route.prefix)\" is already routed")
                }
                if route.permissions != nil && !config.auth.isEnabled {
                    reader.report("\(path).permissions", keyNodes.permissions ?? node,
                                  "needs auth (auth.jwt_secret or auth.jwt_secret_file): without it the gateway authenticates no one")
                }
                config.routes.append(route)
            }
        } else if !top.has("routes") {
            reader.report("routes", root, "is required: at least one route")
        }
        top.finish()
        return config
    }







    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 128 && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == ".") }
    }

    /// `area:action`, each a name; the action may be `*` (every action of the area).
    static func isValidPermission(_ permission: String) -> Bool {
        let parts = permission.split(separator: ":", omittingEmptySubsequences: false)
        return parts.count == 2 && isValidName(String(parts[0])) && (parts[1] == "*" || isValidName(String(parts[1])))
    }
}
