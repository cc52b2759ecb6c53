import Foundation
import HTTPTypes
import Yams

extension ServiceConfig {
    static func decode(name: String, path: String, node: Node, reader: ConfigReader) -> ServiceConfig? {
        guard GatewayConfig.isValidName(name) else {
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
                if let instance = InstanceConfig.decode(service: name, index: index, path: element.path, node: element.node, reader: reader) {
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
                    if let range = HealthCheckConfig.parseStatusRange(text) { ranges.append(range) }
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
        if let tls = object.object("tls") {
            service.tls = UpstreamTLSConfig.load(tls, reader: reader)
            if service.tls != nil, !service.instances.isEmpty, !service.instances.contains(where: { $0.url.scheme == "https" }) {
                reader.report(tls.path, tls.node, "applies to https:// instances; this service has none")
            }
        }
        object.finish()
        return service
    }
}

extension InstanceConfig {
    static func decode(service: String, index: Int, path: String, node: Node, reader: ConfigReader) -> InstanceConfig? {
        guard let object = reader.object(node, path: path) else { return nil }
        defer { object.finish() }
        let id = object.string("id") ?? "\(service)-\(index + 1)"
        if !GatewayConfig.isValidName(id) {
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
}

extension HealthCheckConfig {
    static func parseStatusRange(_ text: String) -> ClosedRange<Int>? {
        let parts = text.split(separator: "-", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        guard let low = Int(parts[0]), (100...599).contains(low) else { return nil }
        if parts.count == 1 { return low...low }
        guard let high = Int(parts[1]), (low...599).contains(high) else { return nil }
        return low...high
    }
}
