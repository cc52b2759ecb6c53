import Foundation
import HTTPTypes
import NIOCore

/// Renders the gateway's telemetry in the Prometheus text format (version 0.0.4) at scrape time, from
/// the same series the console and `/gateway/stats` read. Nothing extra happens per request: the
/// series keep totals since start beside their rings. Label values are bounded: route names, service
/// names, instance ids, standard methods (others are `OTHER`) and status codes — never raw paths or
/// user ids.
enum PrometheusExposition {
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// Upper bounds (`le`) of the duration histograms, in microseconds.
    static func methodLabel(_ method: HTTPRequest.Method) -> String {
        switch method {
        case .get, .head, .post, .put, .delete, .patch, .options, .connect, .trace: return method.rawValue
        default: return "OTHER"
        }
    }

    /// - Parameter cluster: in cluster mode, the store and membership: `gateway_cluster_info{node=…}`
    ///   names the node (join on it: every series here is this node's), with the store's reachability
    ///   and the nodes alive.
    static func render(registry: ServiceRegistry, reloads: (succeeded: Int, failed: Int), listener: ListenerTelemetry? = nil,
                       cluster: (store: ClusterStore, membership: ClusterMembership?)? = nil, tracing: RequestTracing? = nil) -> ByteBuffer {
        var out = ""
        out.reserveCapacity(16 * 1024)
        let state = registry.state

        if let cluster {
            header(&out, "gateway_cluster_info", "gauge", "This node's name in the cluster (1).")
            sample(&out, "gateway_cluster_info", [("node", cluster.store.nodeName), ("version", GatewayVersion.current)], 1)
            header(&out, "gateway_cluster_store_reachable", "gauge", "1 while the cluster store answers, 0 while this node serves on its last state.")
            sample(&out, "gateway_cluster_store_reachable", [("node", cluster.store.nodeName)], cluster.store.isReachable ? 1 : 0)
            if let membership = cluster.membership {
                header(&out, "gateway_cluster_nodes_alive", "gauge", "Nodes whose heartbeat is recent, this one included.")
                sample(&out, "gateway_cluster_nodes_alive", [("node", cluster.store.nodeName)], membership.aliveCount)
            }
        }

        header(&out, "gateway_requests_total", "counter", "Requests answered by the gateway, by route, service, method and status code.")
        var routeTotals: [(RouteEntry, MetricSeries.Totals)] = []
        for route in state.routes {
            let totals = route.metrics.totals()
            routeTotals.append((route, totals))
            for (key, count) in totals.byMethodAndCode.sorted(by: order) {
                sample(&out, "gateway_requests_total", [("route", route.name), ("service", route.pool.name), ("method", key.method), ("code", String(key.code))], count)
            }
        }
        // Requests no route matched (404) carry empty route and service labels.
        for (key, count) in registry.telemetry.unrouted.totals().byMethodAndCode.sorted(by: order) {
            sample(&out, "gateway_requests_total", [("route", ""), ("service", ""), ("method", key.method), ("code", String(key.code))], count)
        }

        header(&out, "gateway_request_duration_seconds", "histogram", "Time from receiving a request to the end of its response, by route.")
        for (route, totals) in routeTotals {
            histogram(&out, "gateway_request_duration_seconds", [("route", route.name), ("service", route.pool.name)], totals)
        }

        header(&out, "gateway_ratelimit_rejections_total", "counter", "Requests refused with 429, by route.")
        for (route, totals) in routeTotals {
            let rejected = totals.byMethodAndCode.reduce(0) { $0 + ($1.key.code == 429 ? $1.value : 0) }
            sample(&out, "gateway_ratelimit_rejections_total", [("route", route.name)], rejected)
        }

        var instanceTotals: [(ServicePool, PoolMember, MetricSeries.Totals)] = []
        for pool in state.services {
            for member in pool.members { instanceTotals.append((pool, member, member.runtime.metrics.totals())) }
        }
        header(&out, "gateway_upstream_requests_total", "counter", "Attempts sent to instances, by status code (502/504 for attempts that got no response).")
        for (pool, member, totals) in instanceTotals {
            var byCode: [Int: Int] = [:]
            for (key, count) in totals.byMethodAndCode { byCode[key.code, default: 0] += count }
            for (code, count) in byCode.sorted(by: { $0.key < $1.key }) {
                sample(&out, "gateway_upstream_requests_total", [("service", pool.name), ("instance", member.id), ("code", String(code))], count)
            }
        }
        header(&out, "gateway_upstream_truncated_total", "counter", "Responses the instance broke off after their head (fewer bytes than Content-Length, no last chunk).")
        for (pool, member, totals) in instanceTotals {
            sample(&out, "gateway_upstream_truncated_total", [("service", pool.name), ("instance", member.id)], totals.truncated)
        }
        header(&out, "gateway_upstream_duration_seconds", "histogram", "Time spent waiting on an instance per attempt, to the end of its response.")
        for (pool, member, totals) in instanceTotals {
            histogram(&out, "gateway_upstream_duration_seconds", [("service", pool.name), ("instance", member.id)], totals)
        }

        renderStreams(&out, state: state)
        if let tracing {
            header(&out, "gateway_tracing_spans_exported_total", "counter", "Spans the collector accepted.")
            sample(&out, "gateway_tracing_spans_exported_total", [], tracing.exportedSpans)
            header(&out, "gateway_tracing_spans_dropped_total", "counter",
                   "Spans lost on the way to the collector: its queue was full, or the export failed (the collector slow or down).")
            sample(&out, "gateway_tracing_spans_dropped_total", [], tracing.droppedSpans)
        }

        header(&out, "gateway_instance_healthy", "gauge", "1 when the instance may receive new requests (healthy or not yet checked, not ejected, not draining).")
        for pool in state.services {
            for member in pool.members {
                sample(&out, "gateway_instance_healthy", [("service", pool.name), ("instance", member.id)], member.runtime.isEligible ? 1 : 0)
            }
        }
        header(&out, "gateway_instance_inflight", "gauge", "Requests dispatched to the instance whose response has not finished.")
        for pool in state.services {
            for member in pool.members {
                sample(&out, "gateway_instance_inflight", [("service", pool.name), ("instance", member.id)], member.runtime.inFlight)
            }
        }
        header(&out, "gateway_health_checks_total", "counter", "Active health checks, by result.")
        for pool in state.services {
            for member in pool.members {
                let labels = [("service", pool.name), ("instance", member.id)]
                let checks = member.runtime.checkCounts
                sample(&out, "gateway_health_checks_total", labels + [("result", "pass")], checks.passed)
                sample(&out, "gateway_health_checks_total", labels + [("result", "fail")], checks.failed)
            }
        }
        header(&out, "gateway_config_reloads_total", "counter", "Configuration reloads, by result.")
        sample(&out, "gateway_config_reloads_total", [("result", "success")], reloads.succeeded)
        sample(&out, "gateway_config_reloads_total", [("result", "failure")], reloads.failed)
        if let listener {
            header(&out, "gateway_client_connections", "gauge", "Open client connections.")
            sample(&out, "gateway_client_connections", [], listener.connections.open)
            header(&out, "gateway_accept_failures_total", "counter", "Connections the listener could not accept for want of file descriptors (EMFILE/ENFILE).")
            sample(&out, "gateway_accept_failures_total", [], listener.acceptPressure.failures)
            header(&out, "gateway_accepting", "gauge", "0 while accepting is paused because the process ran out of file descriptors.")
            sample(&out, "gateway_accepting", [], listener.acceptPressure.exhaustedSince == nil ? 1 : 0)
            if let open = OpenFileLimit.openDescriptors() {
                header(&out, "gateway_open_files", "gauge", "File descriptors the process has open.")
                sample(&out, "gateway_open_files", [], open)
            }
            header(&out, "gateway_open_files_limit", "gauge", "The process's soft open-file limit (RLIMIT_NOFILE).")
            sample(&out, "gateway_open_files_limit", [], OpenFileLimit.current.soft)
            renderListeners(&out, listener.listeners)
        }
        return ByteBuffer(string: out)
    }

    private static func order(_ a: (key: MetricSeries.MethodCode, value: Int), _ b: (key: MetricSeries.MethodCode, value: Int)) -> Bool {
        (a.key.method, a.key.code) < (b.key.method, b.key.code)
    }

    /// Connections by listener and protocol; TLS handshakes, their failures by reason, certificate expiry.
    private static func renderListeners(_ out: inout String, _ listeners: [ListenerRuntime]) {
        guard !listeners.isEmpty else { return }
        header(&out, "gateway_listener_connections", "gauge", "Open client connections by listener and protocol (tls: none, TLSv1.2, TLSv1.3, or handshake while it runs).")
        for listener in listeners {
            let name = listener.config.address.description
            let open = listener.open.open
            if listener.tls == nil {
                sample(&out, "gateway_listener_connections", [("listener", name), ("protocol", "http/1.1"), ("tls", "none")], open)
            } else {
                let tls12 = listener.openTLS12.open, tls13 = listener.openTLS13.open
                let h2tls12 = listener.openHTTP2TLS12.open, h2tls13 = listener.openHTTP2TLS13.open
                sample(&out, "gateway_listener_connections", [("listener", name), ("protocol", "http/1.1"), ("tls", "TLSv1.3")], max(0, tls13 - h2tls13))
                sample(&out, "gateway_listener_connections", [("listener", name), ("protocol", "http/1.1"), ("tls", "TLSv1.2")], max(0, tls12 - h2tls12))
                if listener.config.offersHTTP2 {
                    sample(&out, "gateway_listener_connections", [("listener", name), ("protocol", "h2"), ("tls", "TLSv1.3")], h2tls13)
                    sample(&out, "gateway_listener_connections", [("listener", name), ("protocol", "h2"), ("tls", "TLSv1.2")], h2tls12)
                }
                sample(&out, "gateway_listener_connections", [("listener", name), ("protocol", "none"), ("tls", "handshake")], max(0, open - tls12 - tls13))
            }
        }
        let secure = listeners.compactMap { listener in listener.tls.map { (listener.config.address.description, $0) } }
        guard !secure.isEmpty else { return }
        header(&out, "gateway_tls_handshakes_total", "counter", "Completed TLS handshakes by listener.")
        for (name, tls) in secure { sample(&out, "gateway_tls_handshakes_total", [("listener", name)], tls.handshakeCount) }
        header(&out, "gateway_tls_handshake_failures_total", "counter", "Failed TLS handshakes by listener and reason.")
        for (name, tls) in secure {
            for (reason, count) in tls.failureCounts.sorted(by: { $0.key < $1.key }) {
                sample(&out, "gateway_tls_handshake_failures_total", [("listener", name), ("reason", reason)], count)
            }
        }
        let http2 = listeners.filter(\.config.offersHTTP2)
        if !http2.isEmpty {
            header(&out, "gateway_http2_connection_errors_total", "counter",
                   "HTTP/2 connections ended with GOAWAY for abuse or protocol errors, by reason (rapid_reset, continuation_flood, control_frame_flood, …).")
            for listener in http2 {
                for (reason, count) in listener.http2ErrorCounts.sorted(by: { $0.key < $1.key }) {
                    sample(&out, "gateway_http2_connection_errors_total", [("listener", listener.config.address.description), ("reason", reason)], count)
                }
            }
        }
        header(&out, "gateway_tls_certificate_reloads_total", "counter", "Times a listener's certificates were replaced (file change or reload).")
        for (name, tls) in secure { sample(&out, "gateway_tls_certificate_reloads_total", [("listener", name)], tls.reloadCount) }
        header(&out, "gateway_tls_certificate_expiry_seconds", "gauge", "Seconds until a listener's certificate expires (negative once expired).")
        let now = Date()
        for (name, tls) in secure {
            for certificate in tls.current.certificates {
                sample(&out, "gateway_tls_certificate_expiry_seconds",
                       [("listener", name), ("certificate", certificate.names.first ?? certificate.path)],
                       Int(certificate.notValidAfter.timeIntervalSince(now)))
            }
        }
    }

    /// WebSockets and event streams, per route and per instance: open now, opened and closed (by close
    /// code), messages and bytes each way, durations.
    private static func renderStreams(_ out: inout String, state: GatewayState) {
        var series: [([(String, String)], StreamTelemetry)] = state.routes.map { ([("route", $0.name), ("service", $0.pool.name)], $0.metrics.streams) }
        for pool in state.services {
            for member in pool.members { series.append(([("service", pool.name), ("instance", member.id)], member.runtime.metrics.streams)) }
        }
        let totals = series.map { ($0.0, $0.1, $0.1.totals()) }
        header(&out, "gateway_streams_open", "gauge", "WebSockets and event streams open now, by route and by instance.")
        for (labels, telemetry, _) in totals {
            for kind in StreamTelemetry.Kind.allCases { sample(&out, "gateway_streams_open", labels + [("kind", kind.rawValue)], telemetry.open(kind)) }
        }
        header(&out, "gateway_streams_closed_total", "counter",
               "Streams ended, by WebSocket close code (event streams: 1000 ended by the instance, 1001 by the gateway or the client, 1014 broken off).")
        for (labels, _, total) in totals {
            for (key, count) in total.closes.sorted(by: { ($0.key.kind.rawValue, $0.key.code) < ($1.key.kind.rawValue, $1.key.code) }) {
                sample(&out, "gateway_streams_closed_total", labels + [("kind", key.kind.rawValue), ("code", String(key.code))], count)
            }
        }
        header(&out, "gateway_stream_messages_total", "counter", "WebSocket messages and events relayed, by direction (in: client to instance).")
        for (labels, _, total) in totals {
            sample(&out, "gateway_stream_messages_total", labels + [("direction", "in")], total.messagesIn)
            sample(&out, "gateway_stream_messages_total", labels + [("direction", "out")], total.messagesOut)
        }
        header(&out, "gateway_stream_bytes_total", "counter", "Payload bytes relayed on streams, as on the wire (compressed messages compressed), by direction.")
        for (labels, _, total) in totals {
            sample(&out, "gateway_stream_bytes_total", labels + [("direction", "in")], total.bytesIn)
            sample(&out, "gateway_stream_bytes_total", labels + [("direction", "out")], total.bytesOut)
        }
        header(&out, "gateway_stream_duration_seconds", "histogram", "How long streams lasted, by route and by instance.")
        for (labels, _, total) in totals {
            var cumulative = 0
            for (index, bound) in StreamTelemetry.durationBounds.enumerated() {
                cumulative += total.durationBuckets[index]
                sample(&out, "gateway_stream_duration_seconds_bucket", labels + [("le", String(Int(bound)))], cumulative)
            }
            sample(&out, "gateway_stream_duration_seconds_bucket", labels + [("le", "+Inf")], total.durationCount)
            out += "gateway_stream_duration_seconds_sum"
            appendLabels(&out, labels)
            out += " \(total.durationSumSeconds)\n"
            sample(&out, "gateway_stream_duration_seconds_count", labels, total.durationCount)
        }
    }

    private static func header(_ out: inout String, _ name: String, _ type: String, _ help: String) {
        out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
    }

    private static func sample(_ out: inout String, _ name: String, _ labels: [(String, String)], _ value: Int) {
        out += name
        appendLabels(&out, labels)
        out += " \(value)\n"
    }

    private static func appendLabels(_ out: inout String, _ labels: [(String, String)]) {
        guard !labels.isEmpty else { return }
        out += "{"
        for (index, (name, value)) in labels.enumerated() {
            if index > 0 { out += "," }
            out += name + "=\""
            for character in value {
                switch character {
                case "\\": out += "\\\\"
                case "\"": out += "\\\""
                case "\n": out += "\\n"
                default: out.append(character)
                }
            }
            out += "\""
        }
        out += "}"
    }

    private static func histogram(_ out: inout String, _ name: String, _ labels: [(String, String)], _ totals: MetricSeries.Totals) {
        var cumulative = 0
        for (index, label) in DurationBuckets.labels.enumerated() {
            cumulative += totals.durationBuckets[index]
            sample(&out, name + "_bucket", labels + [("le", label)], cumulative)
        }
        out += name + "_sum"
        appendLabels(&out, labels)
        out += " \(Double(totals.durationSumMicros) / 1_000_000)\n"
        sample(&out, name + "_count", labels, totals.count)
    }
}
