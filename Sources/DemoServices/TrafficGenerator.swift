import AsyncHTTPClient
import NIOSSL
import Atomics
import Foundation
import HTTPTypes
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import WSClient

/// Synthetic client traffic through the gateway: a steady mix of reads across the five services, some
/// order submissions, and a trickle of requests to unknown paths, so every panel has something to show.
/// It also holds a few long-lived subscriptions, as trading terminals do: WebSocket tick streams on
/// `vnpy_core` and Server-Sent Event alert streams on `monitor`, each reconnecting a second after it ends
/// (so draining an instance visibly moves them).
///
/// With users, it logs in as each (`POST /api/v1/auth/login`), sends every request with a user's access
/// token, refreshes the tokens before they expire (`POST /api/v1/auth/refresh`, logging in again if
/// that fails), and mixes in a few requests without a token (401) and writes the trader may not make
/// (403), so authentication shows live on the dashboard.
public final class TrafficGenerator: Service, Sendable {
    let rate: Int
    let maxConcurrent: Int
    let users: [DemoUser]
    private let sent = ManagedAtomic<Int>(0)
    private let failed = ManagedAtomic<Int>(0)
    private let running = ManagedAtomic<Int>(0)
    private let logins = ManagedAtomic<Int>(0)
    private let refreshes = ManagedAtomic<Int>(0)
    private let streamsOpen = ManagedAtomic<Int>(0)
    private let streamMessages = ManagedAtomic<Int>(0)
    /// Current access token per username.
    private let tokens = Mutex<[String: String]>([:])
    private let target: @Sendable () async throws -> String
    /// How to trust an `https://` gateway (the demo's self-signed certificate).
    private let tls: TLSConfiguration?

    /// - Parameters:
    ///   - baseURL: the gateway, e.g. `http://127.0.0.1:8080`.
    ///   - rate: requests per second; 0 sends nothing.
    ///   - users: log in as these and send requests with their tokens; none sends no credentials.
    public convenience init(baseURL: String, rate: Int, users: [DemoUser] = [], maxConcurrent: Int = 64) {
        self.init(rate: rate, users: users, maxConcurrent: maxConcurrent) { baseURL }
    }

    /// - Parameter target: awaited before the first request, returns the gateway's base URL (e.g. once
    ///   the gateway listens, on the port it was given); throwing sends nothing.
    public init(rate: Int, users: [DemoUser] = [], maxConcurrent: Int = 64, tls: TLSConfiguration? = nil,
                target: @escaping @Sendable () async throws -> String) {
        self.target = target
        self.tls = tls
        self.rate = rate
        self.users = users
        self.maxConcurrent = maxConcurrent
    }

    public var requestsSent: Int { sent.load(ordering: .relaxed) }
    /// Requests that got no HTTP answer at all (connection errors).
    public var requestsFailed: Int { failed.load(ordering: .relaxed) }
    /// Successful logins and token refreshes.
    public var loginCount: Int { logins.load(ordering: .relaxed) }
    public var refreshCount: Int { refreshes.load(ordering: .relaxed) }
    /// Subscriptions open now, and the ticks and alerts they received so far.
    public var openStreams: Int { streamsOpen.load(ordering: .relaxed) }
    public var streamMessagesReceived: Int { streamMessages.load(ordering: .relaxed) }

    /// Subscriptions held at once: tick streams (WebSocket) and alert streams (Server-Sent Events).
    public static let tickStreams = 4
    public static let alertStreams = 2

    struct TokenReply: Decodable {
        var access_token: String
        var refresh_token: String
        var expires_in: Int
    }

    private func authPost(_ client: HTTPClient, _ baseURL: String, _ path: String, _ body: [String: String]) async throws -> TokenReply? {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(body)))
        let response = try await client.execute(request, timeout: .seconds(10))
        let bytes = try await response.body.collect(upTo: 1 << 16)
        guard response.status == .ok else { return nil }
        return try JSONDecoder().decode(TokenReply.self, from: Data(buffer: bytes))
    }

    /// Keeps one user's access token fresh for as long as the generator runs.
    private func keepSession(_ user: DemoUser, client: HTTPClient, baseURL: String) async {
        var refreshToken: String?
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            var reply: TokenReply?
            if let current = refreshToken, let refreshed = try? await authPost(client, baseURL, "/api/v1/auth/refresh", ["refresh_token": current]) {
                reply = refreshed
                refreshes.wrappingIncrement(ordering: .relaxed)
            } else if let loggedIn = try? await authPost(client, baseURL, "/api/v1/auth/login", ["username": user.username, "password": user.password]) {
                reply = loggedIn
                logins.wrappingIncrement(ordering: .relaxed)
            }
            guard let reply else {
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(2)) }
                continue
            }
            refreshToken = reply.refresh_token
            tokens.withLock { $0[user.username] = reply.access_token }
            // Refresh at 80% of the lifetime.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(max(1000, reply.expires_in * 800))) }
        }
    }

    public func run() async throws {
        guard rate > 0, let baseURL = try? await target() else {
            try? await gracefulShutdown()
            return
        }
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, decompression: .disabled)
        configuration.tracing.tracer = nil
        configuration.tlsConfiguration = tls
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let interval = Duration.nanoseconds(1_000_000_000 / Int64(rate))
        var next = ContinuousClock.now
        await withDiscardingTaskGroup { group in
            for user in users {
                group.addTask { [self] in await keepSession(user, client: client, baseURL: baseURL) }
            }
            for index in 0..<Self.tickStreams {
                group.addTask { [self] in await holdTicks(index, baseURL: baseURL) }
            }
            for _ in 0..<Self.alertStreams {
                group.addTask { [self] in await holdAlerts(client: client, baseURL: baseURL) }
            }
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                next += interval
                if running.load(ordering: .relaxed) < maxConcurrent {
                    running.wrappingIncrement(ordering: .relaxed)
                    let request = makeRequest(baseURL)
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

    private var traderToken: String? {
        guard let trader = users.first(where: { $0.role == "trader" }) ?? users.first else { return nil }
        return tokens.withLock { $0[trader.username] }
    }

    /// One tick subscription, renewed a second after it ends, until the generator stops.
    private func holdTicks(_ index: Int, baseURL: String) async {
        let symbols = ["rb2501,IF2412", "au2502", "IF2412,au2502", "rb2501"][index % 4]
        let url = baseURL.replacingOccurrences(of: "http", with: "ws", options: .anchored) + "/api/v1/vnpy/ws/ticks?symbols=\(symbols)&interval_ms=250"
        let logger = { var logger = Logger(label: "redfire.demo.traffic"); logger.logLevel = .critical; return logger }()
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let headers: HTTPFields = traderToken.map { [.authorization: "Bearer \($0)"] } ?? [:]
            _ = try? await cancelWhenGracefulShutdown { [self] in
                try await WebSocketClient.connect(url: url, configuration: .init(additionalHeaders: headers), tlsConfiguration: tls,
                                                  logger: logger) { [self] inbound, _, _ in
                    streamsOpen.wrappingIncrement(ordering: .relaxed)
                    defer { streamsOpen.wrappingDecrement(ordering: .relaxed) }
                    for try await _ in inbound.messages(maxSize: 1 << 16) { streamMessages.wrappingIncrement(ordering: .relaxed) }
                }
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
        }
    }

    /// One alert subscription (`text/event-stream`), renewed a second after it ends.
    private func holdAlerts(client: HTTPClient, baseURL: String) async {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            var request = HTTPClientRequest(url: baseURL + "/api/v1/monitor/alerts/stream?interval_ms=2000")
            request.headers.add(name: "Accept", value: "text/event-stream")
            if let token = traderToken { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
            _ = try? await cancelWhenGracefulShutdown { [self, request] in
                let response = try await client.execute(request, timeout: .hours(24))
                guard response.status == .ok else { return }
                streamsOpen.wrappingIncrement(ordering: .relaxed)
                defer { streamsOpen.wrappingDecrement(ordering: .relaxed) }
                for try await _ in response.body { streamMessages.wrappingIncrement(ordering: .relaxed) }
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
        }
    }

    private func makeRequest(_ baseURL: String) -> HTTPClientRequest {
        let roll = Int.random(in: 0..<100)
        var request: HTTPClientRequest
        // Trader for most requests, admin for one in ten.
        var user = users.first { $0.role == "trader" } ?? users.first
        if roll >= 90, let admin = users.first(where: { $0.role == "admin" }) { user = admin }
        let kind = DemoServiceKind.allCases.randomElement()!
        if roll < 2 {
            request = HTTPClientRequest(url: baseURL + "/api/v1/unknown/resource")
        } else if kind == .userTrading && roll < 12 {
            request = HTTPClientRequest(url: baseURL + kind.prefix + "/orders")
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: #"{"symbol":"rb2501","side":"BUY","volume":1,"price":3650}"#))
        } else if !users.isEmpty && kind == .vnpyCore && roll < 14 {
            // A write the trader's role does not allow: 403 (the admin's goes through).
            request = HTTPClientRequest(url: baseURL + kind.prefix + "/contracts")
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: #"{"symbol":"rb2501"}"#))
        } else {
            request = HTTPClientRequest(url: baseURL + kind.prefix + kind.resources.randomElement()!)
            request.headers.add(name: "X-Account-Id", value: "acct-\(Int.random(in: 1...50))")
        }
        // One request in a hundred carries no token (401).
        if let user, roll != 50, let token = tokens.withLock({ $0[user.username] }) {
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
        }
        return request
    }
}
