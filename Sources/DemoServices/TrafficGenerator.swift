import AsyncHTTPClient
import Atomics
import Logging
import NIOCore
import ServiceLifecycle

/// Synthetic client traffic through the gateway: a steady mix of reads across the five services, some
/// order submissions, and a trickle of requests to unknown paths, so every panel has something to show.
public final class TrafficGenerator: Service, Sendable {
    let baseURL: String
    let rate: Int
    let maxConcurrent: Int
    private let sent = ManagedAtomic<Int>(0)
    private let failed = ManagedAtomic<Int>(0)
    private let running = ManagedAtomic<Int>(0)
    private let waitForTarget: @Sendable () async throws -> Void

    /// - Parameters:
    ///   - baseURL: the gateway, e.g. `http://127.0.0.1:8080`.
    ///   - rate: requests per second; 0 sends nothing.
    ///   - waitForTarget: awaited before the first request (e.g. until the gateway listens).
    public init(baseURL: String, rate: Int, maxConcurrent: Int = 64, waitForTarget: @escaping @Sendable () async throws -> Void = {}) {
        self.waitForTarget = waitForTarget
        self.baseURL = baseURL
        self.rate = rate
        self.maxConcurrent = maxConcurrent
    }

    public var requestsSent: Int { sent.load(ordering: .relaxed) }
    /// Requests that got no HTTP answer at all (connection errors).
    public var requestsFailed: Int { failed.load(ordering: .relaxed) }

    public func run() async throws {
        guard rate > 0, (try? await waitForTarget()) != nil else {
            try? await gracefulShutdown()
            return
        }
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, decompression: .disabled)
        configuration.tracing.tracer = nil
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let interval = Duration.nanoseconds(1_000_000_000 / Int64(rate))
        var next = ContinuousClock.now
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                next += interval
                if running.load(ordering: .relaxed) < maxConcurrent {
                    running.wrappingIncrement(ordering: .relaxed)
                    let request = makeRequest()
                    group.addTask { [self] in
                        defer { running.wrappingDecrement(ordering: .relaxed) }
                        sent.wrappingIncrement(ordering: .relaxed)
                        do {
                            let response = try await client.execute(request, timeout: .seconds(10))
                            _ = try await response.body.collect(upTo: 1 << 20)
                        } catch {
                            failed.wrappingIncrement(ordering: .relaxed)
                        }
                    }
                }
                try? await Task.sleep(until: next, clock: .continuous)
            }
        }
        try? await client.shutdown()
    }

    private func makeRequest() -> HTTPClientRequest {
        let roll = Int.random(in: 0..<100)
        if roll < 2 {
            return HTTPClientRequest(url: baseURL + "/api/v1/unknown/resource")
        }
        let kind = DemoServiceKind.allCases.randomElement()!
        if kind == .userTrading && roll < 12 {
            var request = HTTPClientRequest(url: baseURL + kind.prefix + "/orders")
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: #"{"symbol":"rb2501","side":"BUY","volume":1,"price":3650}"#))
            return request
        }
        var request = HTTPClientRequest(url: baseURL + kind.prefix + kind.resources.randomElement()!)
        request.headers.add(name: "X-Account-Id", value: "acct-\(Int.random(in: 1...50))")
        return request
    }
}
