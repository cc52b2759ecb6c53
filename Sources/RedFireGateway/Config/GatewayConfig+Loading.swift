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
        if let file = config.console.logFile, !file.hasPrefix("/") {
            config.console.logFile = ((directory.isEmpty ? "." : directory) as NSString).appendingPathComponent(file)
        }
        if config.console.theme.contains("/") && !config.console.theme.hasPrefix("/") {
            config.console.theme = ((directory.isEmpty ? "." : directory) as NSString).appendingPathComponent(config.console.theme)
        }
        if let file = config.auth.gatewayTokenKeyFile, !file.hasPrefix("/") {
            config.auth.gatewayTokenKeyFile = ((directory.isEmpty ? "." : directory) as NSString).appendingPathComponent(file)
        }
        if let database = config.auth.database, !database.hasPrefix("/") {
            config.auth.database = ((directory.isEmpty ? "." : directory) as NSString).appendingPathComponent(database)
        }
        if let relative = config.dataDirectory, !relative.hasPrefix("/") {
            config.dataDirectory = ((directory.isEmpty ? "." : directory) as NSString).appendingPathComponent(relative)
        } else if config.dataDirectory == nil {
            config.dataDirectory = ((directory.isEmpty ? "." : directory) as NSString).appendingPathComponent("data")
        }
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
        if let auth = top.object("auth") {
            if let database = auth.string("database") {
                if database.isEmpty { reader.report(auth.childPath("database"), auth.node("database"), "must not be empty") } else { config.auth.database = database }
            }
            if let cost = auth.int("bcrypt_cost", in: 4...31) { config.auth.bcryptCost = cost }
            if let lifetime = auth.duration("max_token_lifetime", atLeast: .seconds(60)) { config.auth.maxTokenLifetime = lifetime }
            if let secret = auth.string("jwt_secret") {
                if secret.utf8.count >= 32 { config.auth.jwtSecret = secret }
                else { reader.report(auth.childPath("jwt_secret"), auth.node("jwt_secret"), "must be at least 32 bytes (use ${JWT_SECRET} and a long random value)") }
            }
            if let file = auth.string("jwt_secret_file") {
                if let data = FileManager.default.contents(atPath: reader.resolve(file)), let text = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines) {
                    if text.utf8.count >= 32 { config.auth.jwtSecret = text }
                    else { reader.report(auth.childPath("jwt_secret_file"), auth.node("jwt_secret_file"), "the secret in \(file) must be at least 32 bytes") }
                } else {
                    reader.report(auth.childPath("jwt_secret_file"), auth.node("jwt_secret_file"), "cannot read \(file)")
                }
            }
            if let kid = auth.string("key_id") {
                if GatewayConfig.isValidName(kid) { config.auth.keyID = kid } else { reader.report(auth.childPath("key_id"), auth.node("key_id"), "use letters, digits, '_', '.' and '-'") }
            }
            if let spec = auth.object("signing_key") {
                if let key = decodeKey(spec, reader: reader, requirePrivate: true) { config.auth.signingKey = key }
            }
            if let keys = auth.list("verification_keys") {
                for (path, node) in keys {
                    guard let spec = reader.object(node, path: path) else { continue }
                    if let key = decodeKey(spec, reader: reader, requirePrivate: false) {
                        if config.auth.verificationKeys.contains(where: { $0.keyID == key.keyID }) || config.auth.signingKey?.keyID == key.keyID {
                            reader.report(spec.childPath("key_id"), spec.node("key_id"), "key id \(key.keyID) is used by another key")
                        }
                        config.auth.verificationKeys.append(key)
                    }
                }
            }
            if let issuers = auth.list("external_issuers") {
                for (path, node) in issuers {
                    guard let spec = reader.object(node, path: path) else { continue }
                    defer { spec.finish() }
                    let issuer = spec.require(spec.string("issuer"), "issuer")
                    let url = spec.require(spec.string("jwks_url"), "jwks_url")
                    guard let issuer, let url else { continue }
                    var external = ExternalIssuerConfig(issuer: issuer, jwksURL: url)
                    external.allowHTTPLoopback = spec.bool("allow_http_loopback") ?? false
                    guard external.jwksURLIsAcceptable else {
                        reader.report(spec.childPath("jwks_url"), spec.node("jwks_url"),
                                      "must be an https:// URL (http:// only on a loopback address, with allow_http_loopback: true)")
                        continue
                    }
                    external.audience = spec.string("audience")
                    if let claim = spec.string("roles_claim"), !claim.isEmpty { external.rolesClaim = claim }
                    if let interval = spec.duration("refresh_interval", atLeast: .seconds(10)) { external.refreshInterval = interval }
                    if let interval = spec.duration("min_refetch_interval", atLeast: .seconds(1)) { external.minRefetchInterval = interval }
                    if config.auth.externalIssuers.contains(where: { $0.issuer == issuer }) {
                        reader.report(spec.childPath("issuer"), spec.node("issuer"), "issuer \(issuer) is listed twice")
                    }
                    config.auth.externalIssuers.append(external)
                }
            }
            if let issuer = auth.string("issuer"), !issuer.isEmpty { config.auth.issuer = issuer }
            if let audience = auth.string("audience"), !audience.isEmpty { config.auth.audience = audience }
            if let ttl = auth.duration("access_token_ttl", atLeast: .seconds(10)) { config.auth.accessTokenTTL = ttl }
            if let ttl = auth.duration("refresh_token_ttl", atLeast: .seconds(60)) { config.auth.refreshTokenTTL = ttl }
            if let leeway = auth.duration("leeway") { config.auth.leeway = leeway }
            if let registration = auth.bool("registration") { config.auth.registration = registration }
            if let roles = auth.stringList("default_roles") { config.auth.defaultRoles = roles }
            if let failures = auth.int("max_login_failures", in: 1...1000) { config.auth.maxLoginFailures = failures }
            if let failures = auth.int("max_credential_failures", in: 1...100_000) { config.auth.maxCredentialFailures = failures }
            if let lockout = auth.duration("lockout", atLeast: .milliseconds(10)) { config.auth.lockout = lockout }
            if let lockout = auth.duration("max_lockout", atLeast: .seconds(1)) { config.auth.maxLockout = lockout }
            if let paths = auth.stringList("public_paths") {
                for path in paths {
                    let normalized = try? RequestTarget.parse(path, mergeSlashes: config.mergeSlashes)
                    if normalized?.path != path || normalized?.query != nil {
                        reader.report(auth.childPath("public_paths"), auth.node("public_paths"),
                                      "\"\(path)\" is not a normalized path (starts with /, no query, escapes, dot segments or repeated slashes)")
                    }
                }
                config.auth.publicPaths = paths
            }
            if let file = auth.string("gateway_token_key_file") {
                if file.isEmpty { reader.report(auth.childPath("gateway_token_key_file"), auth.node("gateway_token_key_file"), "must not be empty") }
                else { config.auth.gatewayTokenKeyFile = file }
            }
            if let ttl = auth.duration("gateway_token_ttl", atLeast: .seconds(5)) {
                if ttl <= .seconds(3600) { config.auth.gatewayTokenTTL = ttl }
                else { reader.report(auth.childPath("gateway_token_ttl"), auth.node("gateway_token_ttl"), "must be at most 1h") }
            }
            if let roles = auth.object("roles") {
                for role in roles.keys {
                    guard let permissions = roles.stringList(role) else { continue }
                    if !GatewayConfig.isValidName(role) {
                        reader.report(roles.childPath(role), roles.node(role), "role names use letters, digits, '_', '.' and '-' only")
                    }
                    for permission in permissions where !GatewayConfig.isValidPermission(permission) {
                        reader.report(roles.childPath(role), roles.node(role), "\"\(permission)\" is not a permission: use AREA:ACTION, e.g. trading:read")
                    }
                    config.auth.roles[role] = permissions
                }
                roles.finish()
            }
            auth.finish()
            for role in config.auth.defaultRoles where config.auth.roles[role] == nil {
                reader.report("auth.default_roles", nil, "no role \(role) in auth.roles")
            }
        }
        if let limits = top.object("rate_limits") {
            if let spec = limits.object("default") { config.rateLimits.defaultPolicy = decodePolicy(spec, name: "default", reader: reader) }
            if let roles = limits.object("roles") {
                for role in roles.keys {
                    guard let spec = roles.object(role) else { continue }
                    if let policy = decodePolicy(spec, name: role, reader: reader) { config.rateLimits.rolePolicies[role] = policy }
                }
                roles.finish()
            }
            if let style = limits.string("headers", oneOf: RateLimitConfig.HeaderStyle.allCases.map(\.rawValue)) {
                config.rateLimits.headers = RateLimitConfig.HeaderStyle(rawValue: style) ?? .ietf
            }
            limits.finish()
        }
        if let limits = top.object("limits") {
            if let value = limits.int("max_uri_length", in: 256...1_048_576) { config.limits.maxURILength = value }
            if let value = limits.int("max_header_bytes", in: 1024...1_048_576) { config.limits.maxHeaderBytes = value }
            if let value = limits.int("max_header_count", in: 8...10_000) { config.limits.maxHeaderCount = value }
            if let value = limits.int("max_body_size", in: 0...Int(Int32.max)) { config.limits.maxBodySize = value }
            if let value = limits.duration("header_timeout", atLeast: .milliseconds(100)) { config.limits.headerTimeout = value }
            if let value = limits.duration("idle_timeout", atLeast: .milliseconds(100)) { config.limits.idleTimeout = value }
            if let value = limits.duration("body_timeout", atLeast: .milliseconds(100)) { config.limits.bodyTimeout = value }
            if let value = limits.int("connection_buffer", in: 4096...(64 << 20)) { config.limits.connectionBuffer = value }
            if let value = limits.int("min_body_rate", in: 0...(1 << 30)) { config.limits.minBodyRate = value }
            limits.finish()
        }
        if let log = top.object("access_log") {
            if let enabled = log.bool("enabled") { config.accessLog.enabled = enabled }
            if let path = log.string("path") {
                if path.isEmpty { reader.report(log.childPath("path"), log.node("path"), "must not be empty (stdout or a file)") }
                else { config.accessLog.path = path == "stdout" ? path : reader.resolve(path) }
            }
            if let buffer = log.int("buffer", in: 100...10_000_000) { config.accessLog.buffer = buffer }
            log.finish()
        }
        if let cors = top.object("cors") {
            if let origins = cors.stringList("allowed_origins") {
                for origin in origins {
                    let valid = origin == "null" || ((origin.hasPrefix("https://") || origin.hasPrefix("http://"))
                        && !origin.hasSuffix("/") && origin.filter { $0 == "*" }.count <= 1 && !origin.contains("*.*"))
                    if !valid || origin == "*" {
                        reader.report(cors.childPath("allowed_origins"), cors.node("allowed_origins"),
                                      "\"\(origin)\" is not an origin (scheme://host[:port], no path; one * for a subdomain label, e.g. https://*.redfire.example)")
                    }
                }
                config.cors.allowedOrigins = origins
            }
            if let methods = cors.stringList("allowed_methods") { config.cors.allowedMethods = methods.map { $0.uppercased() } }
            if let headers = cors.stringList("allowed_headers") { config.cors.allowedHeaders = headers }
            if let headers = cors.stringList("expose_headers") { config.cors.exposeHeaders = headers }
            if let credentials = cors.bool("allow_credentials") { config.cors.allowCredentials = credentials }
            if let age = cors.duration("max_age") { config.cors.maxAge = age }
            cors.finish()
        }
        if let proxies = top.stringList("trusted_proxies") {
            for text in proxies {
                if let cidr = CIDR(parsing: text) { config.trustedProxies.append(cidr) }
                else { reader.report("trusted_proxies", top.node("trusted_proxies"), "\"\(text)\" is not an address or CIDR (10.0.0.0/8, ::1/128)") }
            }
        }
        if let headers = top.object("client_headers") {
            let builtIn = Set(ClientHeadersConfig.builtIn.map(ClientHeadersConfig.normalize))
            for (key, target) in [("strip", \ClientHeadersConfig.strip), ("keep", \ClientHeadersConfig.keep)] {
                guard let names = headers.stringList(key) else { continue }
                for name in names {
                    if HTTPField.Name(name) == nil {
                        reader.report(headers.childPath(key), headers.node(key), "\"\(name)\" is not a header field name")
                    } else if key == "keep", !builtIn.contains(ClientHeadersConfig.normalize(name)) {
                        reader.report(headers.childPath(key), headers.node(key), "\"\(name)\" is not in the built-in list of removed fields")
                    } else {
                        config.clientHeaders[keyPath: target].append(name)
                    }
                }
            }
            headers.finish()
        }
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
        if let console = top.object("console") {
            if let theme = console.string("theme") {
                if theme.isEmpty { reader.report(console.childPath("theme"), console.node("theme"), "must not be empty") } else { config.console.theme = theme }
            }
            if let rate = console.double("refresh_rate", in: 1...30) { config.console.refreshRate = rate }
            if let file = console.string("log_file") {
                if file.isEmpty { reader.report(console.childPath("log_file"), console.node("log_file"), "must not be empty") } else { config.console.logFile = file }
            }
            if let readOnly = console.bool("read_only") { config.console.readOnly = readOnly }
            console.finish()
        }

        var instanceIDs: [String: String] = [:]
        if let entries = top.namedEntries("services") {
            for entry in entries {
                if let service = decodeService(name: entry.name, path: entry.path, node: entry.node, reader: reader) {
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

        if let routes = top.list("routes") {
            var prefixes: Set<String> = []
            for (path, node) in routes {
                guard let (route, keyNodes) = decodeRoute(path: path, node: node, reader: reader) else { continue }
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

    private static func decodeService(name: String, path: String, node: Node, reader: ConfigReader) -> ServiceConfig? {
        guard isValidName(name) else {
            reader.report(path, node, "service names may use letters, digits, '_' and '-' only")
            return nil
        }
        guard let object = reader.object(node, path: path) else { return nil }
        var service = ServiceConfig(name: name)
        if let limit = object.int("max_in_flight", in: 1...1_000_000) { service.maxInFlight = limit }
        if let text = object.string("strategy", oneOf: BalancingStrategyKind.allCases.map(\.rawValue)) {
            service.strategy = BalancingStrategyKind(rawValue: text)!
        }
        if let text = object.string("hash_key") {
            if let key = HashKey(parsing: text) { service.hashKey = key }
            else { reader.report(object.childPath("hash_key"), object.node("hash_key"), "expected client_ip or header:NAME, found \"\(text)\"") }
        }
        if let panic = object.bool("panic_routing") { service.panicRouting = panic }

        if let instances = object.list("instances") {
            for (index, element) in instances.enumerated() {
                if let instance = decodeInstance(service: name, index: index, path: element.path, node: element.node, reader: reader) {
                    service.instances.append(instance)
                }
            }
        }
        if let check = object.object("health_check") {
            var health = HealthCheckConfig()
            if let enabled = check.bool("enabled") { health.enabled = enabled }
            if let path = check.string("path") {
                if path.hasPrefix("/") { health.path = path }
                else { reader.report(check.childPath("path"), check.node("path"), "must start with /") }
            }
            if let value = check.duration("interval", atLeast: .milliseconds(10)) { health.interval = value }
            if let value = check.duration("jitter") { health.jitter = value }
            if let value = check.duration("timeout", atLeast: .milliseconds(1)) { health.timeout = value }
            if let value = check.int("healthy_threshold", in: 1...100) { health.healthyThreshold = value }
            if let value = check.int("unhealthy_threshold", in: 1...100) { health.unhealthyThreshold = value }
            if let statuses = check.stringList("expected_status") {
                var ranges: [ClosedRange<Int>] = []
                for text in statuses {
                    if let range = parseStatusRange(text) { ranges.append(range) }
                    else { reader.report(check.childPath("expected_status"), check.node("expected_status"), "expected a status code (200) or a range (200-399), found \"\(text)\"") }
                }
                if !ranges.isEmpty { health.expectedStatus = ranges }
            }
            check.finish()
            service.healthCheck = health
        }
        if let object = object.object("timeouts") {
            var timeouts = TimeoutConfig()
            if let value = object.duration("connect", atLeast: .milliseconds(1)) { timeouts.connect = value }
            if let value = object.duration("response_headers", atLeast: .milliseconds(1)) { timeouts.responseHeaders = value }
            if let value = object.duration("idle", atLeast: .milliseconds(1)) { timeouts.idle = value }
            object.finish()
            service.timeouts = timeouts
        }
        if let object = object.object("retries") {
            var retries = RetryConfig()
            if let value = object.int("attempts", in: 1...10) { retries.attempts = value }
            if let value = object.double("budget_ratio", in: 0...1) { retries.budgetRatio = value }
            if let value = object.int("min_retries", in: 0...10_000) { retries.minRetries = value }
            object.finish()
            service.retries = retries
        }
        if let object = object.object("passive_ejection") {
            var ejection = PassiveEjectionConfig()
            if let value = object.bool("enabled") { ejection.enabled = value }
            if let value = object.int("consecutive_failures", in: 1...1000) { ejection.consecutiveFailures = value }
            if let value = object.duration("base_time", atLeast: .milliseconds(1)) { ejection.baseTime = value }
            if let value = object.duration("max_time", atLeast: .milliseconds(1)) { ejection.maxTime = value }
            if ejection.maxTime < ejection.baseTime {
                reader.report(object.childPath("max_time"), object.node, "must not be shorter than base_time")
            }
            object.finish()
            service.passiveEjection = ejection
        }
        object.finish()
        return service
    }

    private static func decodeInstance(service: String, index: Int, path: String, node: Node, reader: ConfigReader) -> InstanceConfig? {
        guard let object = reader.object(node, path: path) else { return nil }
        defer { object.finish() }
        let id = object.string("id") ?? "\(service)-\(index + 1)"
        if !isValidName(id) {
            reader.report(object.childPath("id"), object.node("id"), "instance ids may use letters, digits, '_', '.' and '-' only")
        }
        guard let urlText = object.require(object.string("url"), "url") else { return nil }
        guard let url = UpstreamURL(parsing: urlText) else {
            reader.report(object.childPath("url"), object.node("url"), "expected http://HOST:PORT (no path), found \"\(urlText)\"")
            return nil
        }
        var instance = InstanceConfig(id: id, url: url)
        if let weight = object.int("weight", in: 1...1000) { instance.weight = weight }
        instance.version = object.string("version")
        if let metadata = object.object("metadata") {
            for key in metadata.keys {
                if let value = metadata.string(key) { instance.metadata[key] = value }
            }
            metadata.finish()
        }
        return instance
    }

    private static func decodeRoute(path: String, node: Node, reader: ConfigReader) -> (RouteConfig, (prefix: Node?, service: Node?, permissions: Node?))? {
        guard let object = reader.object(node, path: path) else { return nil }
        defer { object.finish() }
        let prefix = object.require(object.string("prefix"), "prefix")
        let service = object.require(object.string("service"), "service")
        let methods = object.stringList("methods")
        let strip = object.bool("strip_prefix")
        let version = object.string("version")
        let name = object.string("name")
        var permissions: RoutePermissions?
        if let rules = object.object("permissions") {
            func permission(_ key: String) -> String? {
                guard let value = rules.string(key) else { return nil }
                if GatewayConfig.isValidPermission(value) { return value }
                reader.report(rules.childPath(key), rules.node(key), "\"\(value)\" is not a permission: use AREA:ACTION, e.g. trading:read")
                return nil
            }
            permissions = RoutePermissions(read: permission("read"), write: permission("write"))
            rules.finish()
        }
        let forwardAuthorization = object.bool("forward_authorization") ?? false
        let corsOwner = object.string("cors", oneOf: ["gateway", "service"])
        let rateLimit = object.object("rate_limit").flatMap { decodePolicy($0, name: "route", reader: reader) }
        let maxBodySize = object.int("max_body_size", in: 0...Int(Int32.max))
        guard var prefix, let service else { return nil }
        if !prefix.hasPrefix("/") {
            reader.report(object.childPath("prefix"), object.node("prefix"), "must start with /")
            return nil
        }
        if prefix.contains("?") || prefix.contains("%") || prefix.contains("//") || prefix.split(separator: "/").contains(where: { $0 == "." || $0 == ".." }) {
            reader.report(object.childPath("prefix"), object.node("prefix"), "must be a plain path (no query, percent-encoding, empty or dot segments)")
            return nil
        }
        while prefix.count > 1 && prefix.hasSuffix("/") { prefix.removeLast() }
        var normalizedMethods: [String]?
        if let methods {
            normalizedMethods = []
            for method in methods {
                let upper = method.uppercased()
                if upper.isEmpty || !upper.allSatisfy({ $0.isASCII && $0.isLetter }) {
                    reader.report(object.childPath("methods"), object.node("methods"), "\"\(method)\" is not an HTTP method")
                } else if !normalizedMethods!.contains(upper) {
                    normalizedMethods!.append(upper)
                }
            }
        }
        let route = RouteConfig(prefix: prefix, service: service, methods: normalizedMethods, stripPrefix: strip ?? false, version: version, name: name,
                                permissions: permissions, forwardAuthorization: forwardAuthorization)
        var limited = route
        limited.rateLimit = rateLimit
        limited.maxBodySize = maxBodySize
        limited.corsByService = corsOwner == "service"
        return (limited, (object.node("prefix"), object.node("service"), object.node("permissions")))
    }

    /// `{algorithm, key_id, key_file | secret | secret_file}`: the material is read and parsed now, so a
    /// bad key is a configuration problem with its key path, not a failure at start.
    private static func decodeKey(_ spec: ConfigObject, reader: ConfigReader, requirePrivate: Bool) -> JWTKeyConfig? {
        defer { spec.finish() }
        let choices = JWSAlgorithm.allCases.map(\.rawValue)
        let algorithmText = spec.require(spec.string("algorithm", oneOf: choices), "algorithm")
        let keyID = spec.require(spec.string("key_id"), "key_id")
        let keyFile = spec.string("key_file")
        let secret = spec.string("secret")
        let secretFile = spec.string("secret_file")
        guard let algorithmText, let algorithm = JWSAlgorithm(rawValue: algorithmText), let keyID else { return nil }
        guard GatewayConfig.isValidName(keyID) else {
            reader.report(spec.childPath("key_id"), spec.node("key_id"), "use letters, digits, '_', '.' and '-'")
            return nil
        }
        var material: String?
        if algorithm == .hs256 {
            if let secret { material = secret }
            else if let secretFile {
                material = FileManager.default.contents(atPath: reader.resolve(secretFile)).flatMap { String(data: $0, encoding: .utf8) }?
                    .trimmingCharacters(in: .whitespacesAndNewlines)
                if material == nil { reader.report(spec.childPath("secret_file"), spec.node("secret_file"), "cannot read \(secretFile)"); return nil }
            } else {
                reader.report(spec.path, nil, "HS256 needs secret or secret_file")
                return nil
            }
        } else {
            guard let keyFile else { reader.report(spec.path, nil, "\(algorithm.rawValue) needs key_file (a PEM key)"); return nil }
            material = FileManager.default.contents(atPath: reader.resolve(keyFile)).flatMap { String(data: $0, encoding: .utf8) }
            if material == nil { reader.report(spec.childPath("key_file"), spec.node("key_file"), "cannot read \(keyFile)"); return nil }
        }
        let key = JWTKeyConfig(keyID: keyID, algorithm: algorithm, material: material ?? "")
        do {
            if requirePrivate { _ = try key.signingKey() } else { _ = try key.verificationKey() }
        } catch {
            let field = algorithm == .hs256 ? (secret != nil ? "secret" : "secret_file") : "key_file"
            reader.report(spec.childPath(field), spec.node(field), error.description)
            return nil
        }
        return key
    }

    /// `{rate: 100/s, burst: 50}`; burst defaults to the per-second rate (at least 1).
    static func decodePolicy(_ spec: ConfigObject, name: String, reader: ConfigReader) -> RateLimitPolicy? {
        defer { spec.finish() }
        guard let text = spec.require(spec.string("rate"), "rate") else { return nil }
        guard let (count, period) = RateLimitPolicy.parseRate(text) else {
            reader.report(spec.childPath("rate"), spec.node("rate"), "expected COUNT/UNIT with unit s, m or h (e.g. 100/s, 6000/m), found \"\(text)\"")
            return nil
        }
        let burst = spec.int("burst", in: 1...1_000_000) ?? max(1, Int((Double(count) / period.secondsDouble).rounded(.up)))
        return RateLimitPolicy(name: name, count: count, period: period, burst: burst)
    }

    private static func parseStatusRange(_ text: String) -> ClosedRange<Int>? {
        let parts = text.split(separator: "-", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        guard let low = Int(parts[0]), (100...599).contains(low) else { return nil }
        if parts.count == 1 { return low...low }
        guard let high = Int(parts[1]), (low...599).contains(high) else { return nil }
        return low...high
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
