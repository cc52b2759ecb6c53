import Foundation
import HTTPTypes
import Yams

extension RouteConfig {
    static func decode(path: String, node: Node, reader: ConfigReader) -> (RouteConfig, (prefix: Node?, service: Node?, permissions: Node?))? {
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
        let rateLimit = object.object("rate_limit").flatMap { RateLimitPolicy.decode($0, name: "route", reader: reader) }
        let maxBodySize = object.int("max_body_size", in: 0...Int(Int32.max))
        let websocket = WebSocketRouteConfig.decode(object, reader: reader)
        let streamIdleTimeout = object.duration("stream_idle_timeout", atLeast: .milliseconds(1))
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
        limited.websocket = websocket
        limited.streamIdleTimeout = streamIdleTimeout
        return (limited, (object.node("prefix"), object.node("service"), object.node("permissions")))
    }
}

extension WebSocketRouteConfig {
    /// `websocket: true|false`, or a mapping of its settings.
    static func decode(_ route: ConfigObject, reader: ConfigReader) -> WebSocketRouteConfig? {
        guard let node = route.node("websocket") else { return nil }
        if case .scalar = node {
            return route.bool("websocket") == true ? WebSocketRouteConfig() : nil
        }
        guard let object = route.object("websocket") else { return nil }
        defer { object.finish() }
        var config = WebSocketRouteConfig()
        if let bytes = object.int("max_message_size", in: 1...Int(Int32.max)) { config.maxClientMessage = bytes }
        if let bytes = object.int("max_upstream_message_size", in: 1...Int(Int32.max)) { config.maxUpstreamMessage = bytes }
        if let idle = object.duration("idle_timeout", atLeast: .milliseconds(1)) { config.idleTimeout = idle }
        config.maxDuration = object.duration("max_duration", atLeast: .milliseconds(1))
        if let grace = object.duration("token_grace") { config.tokenGrace = grace }
        if let origins = object.stringList("origins") {
            for origin in origins where !(origin.hasPrefix("https://") || origin.hasPrefix("http://")) || origin.hasSuffix("/") {
                reader.report(object.childPath("origins"), object.node("origins"), "\"\(origin)\" is not an origin (scheme://host[:port], no path)")
            }
            config.origins = origins
        }
        return config
    }
}

extension CORSConfig {
    /// `cors:`
    mutating func load(_ cors: ConfigObject, reader: ConfigReader) {
        if let origins = cors.stringList("allowed_origins") {
            for origin in origins {
                let valid = origin == "null" || ((origin.hasPrefix("https://") || origin.hasPrefix("http://"))
                    && !origin.hasSuffix("/") && origin.filter { $0 == "*" }.count <= 1 && !origin.contains("*.*"))
                if !valid || origin == "*" {
                    reader.report(cors.childPath("allowed_origins"), cors.node("allowed_origins"),
                                  "\"\(origin)\" is not an origin (scheme://host[:port], no path; one * for a subdomain label, e.g. https://*.redfire.example)")
                }
            }
            self.allowedOrigins = origins
        }
        if let methods = cors.stringList("allowed_methods") { self.allowedMethods = methods.map { $0.uppercased() } }
        if let headers = cors.stringList("allowed_headers") { self.allowedHeaders = headers }
        if let headers = cors.stringList("expose_headers") { self.exposeHeaders = headers }
        if let credentials = cors.bool("allow_credentials") { self.allowCredentials = credentials }
        if let age = cors.duration("max_age") { self.maxAge = age }
        cors.finish()
    }
}

extension ClientHeadersConfig {
    /// `client_headers:`
    mutating func load(_ headers: ConfigObject, reader: ConfigReader) {
        let builtIn = Set(ClientHeadersConfig.builtIn.map(ClientHeadersConfig.normalize))
        for (key, target) in [("strip", \ClientHeadersConfig.strip), ("keep", \ClientHeadersConfig.keep)] {
            guard let names = headers.stringList(key) else { continue }
            for name in names {
                if HTTPField.Name(name) == nil {
                    reader.report(headers.childPath(key), headers.node(key), "\"\(name)\" is not a header field name")
                } else if key == "keep", !builtIn.contains(ClientHeadersConfig.normalize(name)) {
                    reader.report(headers.childPath(key), headers.node(key), "\"\(name)\" is not in the built-in list of removed fields")
                } else {
                    self[keyPath: target].append(name)
                }
            }
        }
        headers.finish()
    }
}
