import AsyncHTTPClient
import DemoServices
import Foundation
import NIOCore
import Testing

@testable import RedFireGateway

typealias EventStreamTests = BulkTraffic.EventStreamTests

/// Server-Sent Events read as a browser's `EventSource` reads them: each event with the time it arrived.
struct ReceivedEvents {
    var events: [(id: Int, sentMicros: Int, receivedMicros: Int)] = []
    var completed = false
    var error: String?

    static func read(port: Int, path: String, limit: Int = .max) async -> ReceivedEvents {
        var result = ReceivedEvents()
        do {
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
            request.headers.add(name: "Accept", value: "text/event-stream")
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
            var pending = ""
            for try await chunk in response.body {
                let now = Int(Date().timeIntervalSince1970 * 1_000_000)
                pending += String(buffer: chunk)
                while let end = pending.range(of: "\n\n") {
                    let event = String(pending[..<end.lowerBound])
                    pending = String(pending[end.upperBound...])
                    let data = event.split(separator: "\n").first { $0.hasPrefix("data: ") }.map { $0.dropFirst(6) } ?? ""
                    let object = (try? JSONSerialization.jsonObject(with: Data(data.utf8))) as? [String: Any]
                    result.events.append((object?["seq"] as? Int ?? -1, object?["sent_us"] as? Int ?? 0, now))
                }
                if result.events.count >= limit { return result }
            }
            result.completed = true
        } catch {
            result.error = "\(error)"
        }
        return result
    }
}

extension BulkTraffic {
@Suite("Event streams", .serialized, .cleansUp, .timeLimit(.minutes(2)))
struct EventStreamTests {
    static func gateway(_ instances: [DemoInstance], serviceIdle: Duration? = nil, streamIdle: Duration? = nil) async throws -> GatewayHarness {
        var route = RouteConfig(prefix: "/api/v1/monitor", service: "monitor")
        route.streamIdleTimeout = streamIdle
        var service = serviceConfig("monitor", instances)
        if let serviceIdle { service.timeouts.idle = serviceIdle }
        var config = GatewayConfig()
        config.services = [service]
        config.routes = [route]
        let harness = try await GatewayHarness.start(config)
        await waitUntil("instances checked") { harness.registry.state.services[0].members.allSatisfy { $0.runtime.health == .healthy } }
        return harness
    }

    /// `REDFIRE_SSE_SECONDS` runs it longer (the issue's 60 s check); the suite runs it for one second.
    @Test("Events reach the client as the instance writes them, one by one, unbuffered")
    func unbuffered() async throws {
        let instances = try await startInstances(.monitor, count: 1)
        let harness = try await Self.gateway(instances)
        defer { Task { await harness.shutdown() } }
        let seconds = ProcessInfo.processInfo.environment["REDFIRE_SSE_SECONDS"].flatMap(Int.init) ?? 1
        let count = seconds * 50
        let received = await ReceivedEvents.read(port: harness.port, path: "/api/v1/monitor/alerts/stream?interval_ms=20&count=\(count)")
        #expect(received.error == nil, "\(received.error ?? "")")
        #expect(received.completed)
        #expect(received.events.map(\.id) == Array(1...count))
        let delays = received.events.map { $0.receivedMicros - $0.sentMicros }.sorted()
        let median = delays[delays.count / 2]
        print("event stream delay over \(count) events: median \(median) µs, p99 \(delays[delays.count * 99 / 100]) µs, max \(delays.last ?? 0) µs")
        #expect(median < 10_000, "median delay \(median) µs")
        #expect((delays.last ?? 0) < 250_000, "max delay \(delays.last ?? 0) µs")
        let telemetry = harness.registry.state.routes[0].metrics.streams
        await waitUntil("counted") { telemetry.totals().closes[.init(kind: .eventStream, code: 1000)] == 1 }
        #expect(telemetry.totals().messagesOut == count)
    }

    @Test("A drain deadline ends an open event stream as a complete response; the other instance's stream stays, and shutdown ends it the same way")
    func drainDeadline() async throws {
        let instances = try await startInstances(.monitor, count: 2)
        let harness = try await Self.gateway(instances)
        defer { Task { await harness.shutdown() } }
        async let first = ReceivedEvents.read(port: harness.port, path: "/api/v1/monitor/_events?interval_ms=50")
        async let second = ReceivedEvents.read(port: harness.port, path: "/api/v1/monitor/_events?interval_ms=50")
        await waitUntil("both streams open") { instances.allSatisfy { $0.openStreams == 1 } }
        try harness.control.drain(service: "monitor", instance: "monitor-1", deadline: .milliseconds(500), actor: "test")
        #expect(await waitUntil("monitor-1's stream ended") { instances[0].openStreams == 0 })
        #expect(instances[1].openStreams == 1)
        // The instance-2 stream is untouched: ended by the test (shutdown) below.
        let runtime = try #require(harness.registry.runtime(id: "monitor-1"))
        await waitUntil("counted") { runtime.metrics.streams.totals().closes[.init(kind: .eventStream, code: 1001)] == 1 }
        await harness.shutdown()
        let results = await [first, second]
        #expect(results.allSatisfy { $0.completed && $0.error == nil }, "\(results.map(\.error))")
        #expect(results.allSatisfy { $0.events.count >= 5 })
    }

    @Test("stream_idle_timeout lets a route's event stream be quieter than the service's idle timeout")
    func streamIdleTimeout() async throws {
        let instances = try await startInstances(.monitor, count: 1)
        let strict = try await Self.gateway(instances, serviceIdle: .milliseconds(300))
        let cut = await ReceivedEvents.read(port: strict.port, path: "/api/v1/monitor/_events?interval_ms=700&count=3")
        #expect(!cut.completed, "the service's idle timeout ends a stream quieter than it")
        await strict.shutdown()
        let relaxed = try await Self.gateway(instances, serviceIdle: .milliseconds(300), streamIdle: .seconds(5))
        defer { Task { await relaxed.shutdown() } }
        let whole = await ReceivedEvents.read(port: relaxed.port, path: "/api/v1/monitor/_events?interval_ms=700&count=3")
        #expect(whole.completed && whole.events.count == 3, "\(whole.error ?? "")")
    }
}
}
