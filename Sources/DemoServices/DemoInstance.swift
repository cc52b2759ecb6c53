import Atomics
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import Synchronization

/// One instance of a demo service: a real HTTP server on loopback that answers the service's resources,
/// `/health`, and a few test helpers on any path:
/// - `…/_echo`: reports method, path, query, headers, body length and checksum of what it received;
/// - `…/_download?bytes=N`: streams N deterministic bytes (`&chunk_ms=M`: M ms between 64 KiB chunks);
/// - `?sleep_ms=N` on any request: waits before answering; `?status=N`: answers with that status.
/// Every response carries `X-Demo-Instance`. Behaviour can be switched (slow, failing) to show failover,
/// and `stop()` takes the instance down.
public final class DemoInstance: Sendable {
    public let service: DemoServiceKind
    public let id: String
    public let host: String
    /// Served over TLS (`https://`) with this configuration.
    private let tlsConfiguration: TLSConfiguration?
    public var tls: Bool { tlsConfiguration != nil }
    private let behaviourState = Mutex(DemoBehaviour.normal)
    private let requestCounter = ManagedAtomic<Int>(0)
    private let echoCounter = ManagedAtomic<Int>(0)
    private let inFlightCounter = ManagedAtomic<Int>(0)
    private let streamCounter = ManagedAtomic<Int>(0)
    private let upgradeCounter = ManagedAtomic<Int>(0)
    private let server = Mutex<LoopbackServer?>(nil)
    private let boundPort = ManagedAtomic<Int>(0)
    /// Set while the instance stops: requests waiting on purpose (`sleep_ms`, `slow`) stop waiting.
    private let stopping = ManagedAtomic<Bool>(false)
    /// Holds the port while the instance is stopped.
    private let reserved = Mutex<PortReservation?>(nil)

    private init(service: DemoServiceKind, id: String, host: String, tls: TLSConfiguration?) {
        self.service = service
        self.id = id
        self.host = host
        self.tlsConfiguration = tls
    }

    /// Starts an instance on `host:port` (port 0: any free port) and returns once it accepts connections;
    /// with `tls`, it speaks HTTPS with that server configuration.
    public static func start(service: DemoServiceKind, id: String, host: String = "127.0.0.1", port: Int = 0,
                             tls: TLSConfiguration? = nil) async throws -> DemoInstance {
        let instance = DemoInstance(service: service, id: id, host: host, tls: tls)
        try await instance.launch(port: port)
        return instance
    }

    private func launch(port: Int) async throws {
        let base = DemoStreams.builder(instance: self)
        let builder: HTTPServerBuilder = try tlsConfiguration.map { try .tls(base, tlsConfiguration: $0) } ?? base
        var logger = Logger(label: "redfire.demo.\(id)")
        logger.logLevel = .critical
        let started = try await LoopbackServer.start(logger: logger) { onServerRunning in
            Application(
                responder: DemoResponder(instance: self),
                server: builder,
                configuration: .init(address: .hostname(host, port: port), serverName: nil),
                onServerRunning: onServerRunning,
                logger: logger
            )
        }
        server.withLock { $0 = started }
        boundPort.store(started.port, ordering: .releasing)
    }

    /// The port the instance listens on.
    public var port: Int { boundPort.load(ordering: .acquiring) }
    public var url: String { "\(tls ? "https" : "http")://\(host):\(port)" }
    /// Requests answered so far (health checks excluded).
    public var requestCount: Int { requestCounter.load(ordering: .relaxed) }
    /// `…/_echo` requests whose body was received whole and answered.
    public var completedEchoes: Int { echoCounter.load(ordering: .relaxed) }
    /// Requests being answered right now (health checks excluded).
    public var inFlight: Int { inFlightCounter.load(ordering: .relaxed) }

    public var behaviour: DemoBehaviour {
        get { behaviourState.withLock { $0 } }
    }

    public func setBehaviour(_ behaviour: DemoBehaviour) {
        behaviourState.withLock { $0 = behaviour }
    }

    /// Stops the server: the port refuses connections afterwards. The port stays reserved (bound, not
    /// listening), so no other server — in this process or another — can take it before `restart()`.
    /// Requests already received are answered (those waiting on purpose at once, with 503), as a
    /// service shutting down cleanly does.
    public func stop() async {
        guard let running = server.withLock({ server -> LoopbackServer? in defer { server = nil }; return server }) else { return }
        stopping.store(true, ordering: .releasing)
        await running.stop()
        // Closed sockets can hold the port a moment longer under load: keep trying. Giving up early
        // would leave the port free for any other server to be given.
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if let reservation = PortReservation(host: host, port: port) {
                reserved.withLock { $0 = reservation }
                return
            }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Starts a stopped instance again on the same port.
    public func restart() async throws {
        reserved.withLock { $0 = nil }
        stopping.store(false, ordering: .releasing)
        // If the port could not be reserved, the old listener may still be closing: retry briefly.
        let deadline = ContinuousClock.now + .seconds(2)
        while true {
            do {
                try await launch(port: port)
                return
            } catch let error as IOError where error.errnoCode == EADDRINUSE && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    /// Waits `duration`, or less if the instance starts stopping; true if it is stopping.
    fileprivate func pause(_ duration: Duration) async throws -> Bool {
        let end = ContinuousClock.now + duration
        while !isStopping {
            let now = ContinuousClock.now
            guard now < end else { return false }
            try await Task.sleep(for: min(end - now, .milliseconds(20)))
        }
        return true
    }

    fileprivate var isStopping: Bool { stopping.load(ordering: .acquiring) }

    fileprivate func countRequest() { requestCounter.wrappingIncrement(ordering: .relaxed) }
    fileprivate func countEcho() { echoCounter.wrappingIncrement(ordering: .relaxed) }
    /// WebSockets and event streams open on this instance right now.
    public var openStreams: Int { streamCounter.load(ordering: .relaxed) }
    /// WebSocket upgrade requests that reached this instance.
    public var upgradeAttempts: Int { upgradeCounter.load(ordering: .relaxed) }
    func upgradeRequested() { upgradeCounter.wrappingIncrement(ordering: .relaxed) }
    func streamOpened() { streamCounter.wrappingIncrement(ordering: .relaxed) }
    func streamClosed() { streamCounter.wrappingDecrement(ordering: .relaxed) }
    fileprivate func enter() { inFlightCounter.wrappingIncrement(ordering: .relaxed) }
    fileprivate func leave() { inFlightCounter.wrappingDecrement(ordering: .relaxed) }
}

/// A socket bound to a port without listening: connections to it are refused, and the port cannot
/// be handed to anyone else while it is held. Closed when released.
final class PortReservation: Sendable {
    let descriptor: Int32

    init?(host: String, port: Int) {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { return nil }
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        var on: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            close(descriptor)
            return nil
        }
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }
}

/// What `…/_echo` reports.
public struct EchoReport: Codable, Sendable {
    public var instance: String
    public var method: String
    public var path: String
    public var query: String?
    /// Header names lowercased, each with all its values.
    public var headers: [String: [String]]
    public var bodyLength: Int
    public var bodyChecksum: String

    enum CodingKeys: String, CodingKey {
        case instance, method, path, query, headers
        case bodyLength = "body_length"
        case bodyChecksum = "body_checksum"
    }
}

struct DemoResponder: HTTPResponder {
    typealias Context = BasicRequestContext
    let instance: DemoInstance

    func respond(to request: Request, context: Context) async throws -> Response {
        let target = request.head.path ?? "/"
        let path = String(target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "/")
        let query = target.contains("?") ? String(target[target.index(after: target.firstIndex(of: "?")!)...]) : nil
        let parameters = Self.parameters(query)
        let isHealth = path == "/health"
        if !isHealth {
            instance.countRequest()
            instance.enter()
        }
        defer { if !isHealth { instance.leave() } }

        var stopping = false
        switch instance.behaviour {
        case .normal: break
        case .slow(let delay): stopping = try await instance.pause(delay)
        case .failing: return json(.internalServerError, ["error": "instance \(instance.id) is failing on purpose"])
        }
        if !stopping, let sleep = parameters["sleep_ms"].flatMap(Int.init), sleep > 0 {
            stopping = try await instance.pause(.milliseconds(sleep))
        }
        if stopping {
            return json(.serviceUnavailable, ["error": "instance \(instance.id) is stopping"])
        }
        if isHealth {
            return json(.ok, ["status": "ok", "service": instance.service.rawValue, "instance": instance.id])
        }
        if path.hasSuffix("/_echo") {
            return try await echo(request, path: path, query: query)
        }
        if path.hasSuffix("/_events") || (instance.service == .monitor && path.hasSuffix("/alerts/stream")) {
            return DemoStreams.events(count: parameters["count"].flatMap(Int.init) ?? 0,
                                      interval: .milliseconds(max(1, parameters["interval_ms"].flatMap(Int.init) ?? 1000)), instance: instance)
        }
        if path.hasSuffix("/_download") {
            return download(bytes: parameters["bytes"].flatMap(Int.init) ?? 0, chunked: parameters["chunked"] == "1",
                            pause: parameters["chunk_ms"].flatMap(Int.init).map { .milliseconds($0) })
        }
        // Drain any body so the connection stays reusable.
        var body = request.body.makeAsyncIterator()
        while try await body.next() != nil {}
        let status = parameters["status"].flatMap(Int.init).map { HTTPResponse.Status(code: $0) } ?? (request.method == .post ? .created : .ok)
        return json(status, resource(path: path, method: request.method))
    }

    private func resource(path: String, method: HTTPRequest.Method) -> [String: String] {
        var payload = ["service": instance.service.rawValue, "instance": instance.id, "path": path, "method": method.rawValue]
        let relative = path.hasPrefix(instance.service.prefix) ? String(path.dropFirst(instance.service.prefix.count)) : path
        switch (instance.service, relative) {
        case (.userTrading, "/orders"): payload["data"] = method == .post ? "order accepted" : "2 open orders: BUY 10 rb2501 @ 3650, SELL 5 IF2412 @ 3920"
        case (.userTrading, "/positions"): payload["data"] = "rb2501 long 10, IF2412 short 5"
        case (.userTrading, "/accounts"): payload["data"] = "balance 1000000.00 CNY, available 812345.67"
        case (.vnpyCore, "/ticks"): payload["data"] = "rb2501 last 3652 bid 3651 ask 3653"
        case (.vnpyCore, "/contracts"): payload["data"] = "rb2501, IF2412, au2502"
        case (.strategyData, "/strategies"): payload["data"] = "momentum-1 running, meanrev-2 stopped"
        case (.gatewayAdapter, "/adapters"): payload["data"] = "ctp connected, ib disconnected"
        case (.monitor, "/status"): payload["data"] = "all systems nominal"
        case (.monitor, "/alerts"): payload["data"] = "no active alerts"
        default: break
        }
        return payload
    }

    private func echo(_ request: Request, path: String, query: String?) async throws -> Response {
        var checksum = StreamChecksum()
        for try await chunk in request.body { checksum.update(chunk) }
        var headers: [String: [String]] = [:]
        for field in request.head.headerFields { headers[field.name.canonicalName, default: []].append(field.value) }
        if let authority = request.head.authority { headers["host", default: []].append(authority) }
        let report = EchoReport(instance: instance.id, method: request.method.rawValue, path: path, query: query,
                                headers: headers, bodyLength: checksum.count, bodyChecksum: checksum.hex)
        let data = try JSONEncoder().encode(report)
        instance.countEcho()
        return Response(status: .ok, headers: [.contentType: "application/json", .demoInstance: instance.id], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// `bytes` of a fixed pattern; `chunked` leaves the length undeclared (the body goes out chunked);
    /// `pause` paces it (a long download).
    private func download(bytes: Int, chunked: Bool, pause: Duration? = nil) -> Response {
        let total = max(0, bytes)
        let write: @Sendable (inout any ResponseBodyWriter) async throws -> Void = { writer in
            var offset = 0
            while offset < total {
                let length = min(StreamChecksum.patternChunkSize, total - offset)
                try await writer.write(StreamChecksum.patternChunk(offset: offset, length: length))
                offset += length
                if let pause, offset < total { try await Task.sleep(for: pause) }
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "application/octet-stream", .demoInstance: instance.id],
                        body: ResponseBody(contentLength: chunked ? nil : total, write))
    }

    private func json(_ status: HTTPResponse.Status, _ payload: [String: String]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: payload, options: [.sortedKeys])) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json", .demoInstance: instance.id], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func parameters(_ query: String?) -> [String: String] {
        guard let query else { return [:] }
        var result: [String: String] = [:]
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            result[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        return result
    }
}

extension HTTPField.Name {
    /// The instance that answered, on every demo response.
    public static let demoInstance = Self("X-Demo-Instance")!
}
