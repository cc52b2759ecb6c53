import AsyncHTTPClient
import DemoServices
import Foundation
import Testing

@testable import RedFireGateway

@Suite("Configuration reload", .serialized, .cleansUp, .timeLimit(.minutes(2)))
struct ReloadTests {
    static let token = "reload-test-token-0123456789"

    static func yaml(_ instances: [DemoInstance], weights: [Int], interval: String = "100ms") -> String {
        var text = """
        listen: 127.0.0.1:0
        admin: {token: \(token)}
        services:
          user_trading:
            health_check: {interval: \(interval), jitter: 10ms, healthy_threshold: 1}
            instances:

        """
        for (instance, weight) in zip(instances, weights) {
            text += "      - {id: \(instance.id), url: \"http://127.0.0.1:\(instance.port)\", weight: \(weight)}\n"
        }
        text += "routes:\n  - {prefix: /api/v1/trading, service: user_trading}\n"
        return text
    }

    @Test func reloadUnderLoadFailsNothingAppliesChangesAndRefusesBrokenFiles() async throws {
        let instances = try await startInstances(.userTrading, count: 2)
        let path = try CommandLineTests.writeConfig(Self.yaml(instances, weights: [1, 1]))
        let gateway = try await GatewayHarness.start(try GatewayConfig.load(path: path), configPath: path)
        await waitUntil("healthy") { gateway.registry.state.services[0].members.allSatisfy { $0.runtime.health == .healthy } }
        try gateway.control.drain(service: "user_trading", instance: "user_trading-1", actor: "test")
        let drainedRuntime = try #require(gateway.registry.runtime(id: "user_trading-1"))
        _ = try await gateway.send("/api/v1/trading/orders")
        let metricsBefore = gateway.registry.state.routes[0].metrics.window(seconds: 60).counters.requests

        let load = LoadLoop(gateway: gateway, path: "/api/v1/trading/orders", concurrency: 6)
        for round in 0..<20 {
            try Self.yaml(instances, weights: [1, round % 2 == 0 ? 3 : 1]).write(toFile: path, atomically: true, encoding: .utf8)
            let reply = try await gateway.send(.POST, "/gateway/config/reload", headers: [("Authorization", "Bearer \(Self.token)")])
            #expect(reply.status == 200, "\(reply.body)")
            let target = load.total + 10
            await waitUntil("traffic after reload \(round)") { load.total >= target }
        }
        let result = await load.stop()
        #expect(result.errors.isEmpty, "\(result.errors.prefix(3))")
        #expect(result.statuses.keys.sorted() == [200], "\(result.statuses) \(result.unexpected)")
        #expect(gateway.control.reloadCounts.succeeded == 20)

        // Health, drain and metrics survived 20 reloads; the last weight took effect.
        #expect(gateway.registry.runtime(id: "user_trading-1") === drainedRuntime)
        #expect(drainedRuntime.state == .drained)
        #expect(gateway.registry.state.services[0].members.map(\.weight) == [1, 1])
        #expect(gateway.registry.state.routes[0].metrics.window(seconds: 60).counters.requests > metricsBefore)

        try gateway.control.undrain(service: "user_trading", instance: "user_trading-1", actor: "test")
        try Self.yaml(instances, weights: [1, 2]).write(toFile: path, atomically: true, encoding: .utf8)
        #expect(gateway.control.reload(actor: "test").applied)
        var counts: [String: Int] = [:]
        for _ in 0..<30 { counts[try await gateway.send("/api/v1/trading/orders").instance ?? "?", default: 0] += 1 }
        // 1:2 (a health check finishing mid-way may restart the round-robin cycle once: ±1).
        #expect((9...11).contains(counts["user_trading-1"] ?? 0) && (19...21).contains(counts["user_trading-2"] ?? 0), "\(counts)")

        // A broken file is refused with its problems; nothing changes.
        let generation = gateway.registry.state.generation
        try "services:\n  user_trading:\n    strategy: fastest\nroutes: []\n".write(toFile: path, atomically: true, encoding: .utf8)
        let refused = try await gateway.send(.POST, "/gateway/config/reload", headers: [("Authorization", "Bearer \(Self.token)")])
        #expect(refused.status == 422)
        #expect(refused.errorCode == "invalid_config")
        #expect(refused.body.contains("services.user_trading.strategy"))
        // The problem list sits inside the envelope's error object, as every error's details do.
        let error = try #require(try refused.json()["error"] as? [String: Any])
        let problems = try #require((error["details"] as? [String: Any])?["problems"] as? [[String: Any]], "\(refused.body)")
        #expect(problems.contains { $0["path"] as? String == "services.user_trading.strategy" })
        #expect(error["request_id"] as? String == refused.headers.first(name: "X-Request-ID"))
        #expect(gateway.registry.state.generation == generation)
        #expect(gateway.registry.state.services[0].members.map(\.weight) == [1, 2])
        #expect(try await gateway.send("/api/v1/trading/orders").status == 200)
        #expect(gateway.control.audit.recent().last?.result == "invalid_config")
        await gateway.shutdown()
        await stopAll(instances)
    }

    @Test func sighupReloadsTheRunningProcess() async throws {
        let instances = try await startInstances(.userTrading, count: 2)
        let path = try CommandLineTests.writeConfig(Self.yaml([instances[0]], weights: [1]))
        let child = try GatewayProcess(["serve", "--config", path])
        await waitUntil("listening") { child.output.contains("listening on") }
        let line = try #require(child.output.split(separator: "\n").first { $0.contains("listening on") })
        let port = try #require(line.split(separator: ":").compactMap { Int($0.prefix { $0.isNumber }) }.last)
        try Self.yaml(instances, weights: [1, 1]).write(toFile: path, atomically: true, encoding: .utf8)
        kill(child.pid, SIGHUP)
        await waitUntil("reloaded") { child.output.contains("configuration reloaded by SIGHUP") }
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        await waitUntil("second instance serves") {
            let response = try? await client.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/api/v1/trading/orders"), timeout: .seconds(5))
            _ = try? await response?.body.collect(upTo: 1 << 20)
            return instances[1].requestCount > 0
        }
        try await client.shutdown()
        kill(child.pid, SIGTERM)
        #expect(await child.waitForExit() == 0)
        await stopAll(instances)
    }

}

@Suite("Operator state across restarts", .cleansUp, .timeLimit(.minutes(2)))
struct OperatorStateTests {
    @Test func drainAndStrategySurviveARestart() async throws {
        let instances = try await startInstances(.userTrading, count: 2)
        // No health checks: on a busy machine the first check timing out takes the one undrained instance
        // out of rotation until the next (an instance failing its first check leaves at once), which is
        // not what this test is about.
        let path = try CommandLineTests.writeConfig(ReloadTests.yaml(instances, weights: [1, 1])
            .replacingOccurrences(of: "health_check: {interval: 100ms, jitter: 10ms, healthy_threshold: 1}", with: "health_check: {enabled: false}"))
        let first = try await GatewayHarness.start(try GatewayConfig.load(path: path), configPath: path)
        try first.control.drain(service: "user_trading", instance: "user_trading-2", actor: "test")
        try first.control.setStrategy(service: "user_trading", strategy: .leastConnections, actor: "test")
        await first.shutdown()
        let saved = (path as NSString).deletingLastPathComponent + "/data/operator-state.json"
        #expect(FileManager.default.fileExists(atPath: saved))

        let second = try await GatewayHarness.start(try GatewayConfig.load(path: path), configPath: path)
        #expect(second.registry.runtime(id: "user_trading-2")?.state == .drained)
        #expect(second.registry.state.services[0].strategy == .leastConnections)
        for _ in 0..<5 {
            let reply = try await second.send("/api/v1/trading/orders")
            #expect(reply.instance == "user_trading-1", "\(reply.status) \(reply.body)")
        }
        try second.control.undrain(service: "user_trading", instance: "user_trading-2", actor: "test")
        await second.shutdown()

        let third = try await GatewayHarness.start(try GatewayConfig.load(path: path), configPath: path)
        #expect(third.registry.runtime(id: "user_trading-2")?.isDraining == false)
        await third.shutdown()
        await stopAll(instances)
    }
}
