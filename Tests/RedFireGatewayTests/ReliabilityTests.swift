import DemoServices
import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOPosix
import Testing

#if canImport(Glibc)
import Glibc
#endif

@testable import RedFireGateway

/// What the gateway does when clients and instances misbehave under load: connections closed by the
/// client, descriptor exhaustion, instances that break responses off.
@Suite("Reliability", .cleansUp, .timeLimit(.minutes(2)))
struct ReliabilityTests {
    // MARK: Graceful shutdown

    /// On graceful shutdown a listener stops accepting, closes its idle keep-alive connections at once,
    /// answers the request in flight (its response says the connection closes) and the gateway stops
    /// once that connection has closed.
    @Test func gracefulShutdownAnswersWhatIsInFlightAndClosesIdleConnections() async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        let gateway = try await tradingGateway(instances)
        let idle = try await RawConnection(port: gateway.port)
        try await idle.write("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try await idle.readResponse().status == 200)
        let busy = try await RawConnection(port: gateway.port)
        try await busy.write("GET /api/v1/trading/orders?sleep_ms=1500 HTTP/1.1\r\nHost: x\r\n\r\n")
        let member = gateway.registry.state.services[0].members[0].runtime
        await waitUntil("the request is in flight") { member.inFlight == 1 }
        let stopping = Task { await gateway.shutdown() }
        #expect(try await idle.waitForClose(timeoutSeconds: 5).closed, "an idle connection closes at once")
        let refused = await waitUntil(timeout: .seconds(5), "the listener stops accepting") { (try? RawHTTP.connectedSocket(port: gateway.port)).map { close($0); return false } ?? true }
        #expect(refused)
        let reply = try await busy.readResponse()
        #expect(reply.status == 200)
        #expect(reply.headers.first(name: "Connection")?.lowercased() == "close")
        #expect(try await busy.waitForClose(timeoutSeconds: 5).closed)
        await stopping.value
        await stopAll(instances)
    }

    /// A client that pipelines many requests and does not read the answers: the gateway forwards only
    /// what the connection can hold — the socket's buffers and `connection_buffer` — and waits, instead of
    /// answering everything into memory. Once the client reads, every response arrives whole, in order.
    /// A response that arrives whole with its head and fills more than half the connection's buffer
    /// (32–64 KiB by default) pauses reading the instance's socket; taking it whole must resume reading,
    /// or the pooled connection holds the next response unread until `response_headers` runs out.
    @Test func aResponseReadWholeLeavesItsConnectionReusable() async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        let gateway = try await tradingGateway(instances)
        let connection = try await RawConnection(port: gateway.port)
        for index in 0..<10 {
            try await connection.write("GET /api/v1/trading/_download?bytes=36000 HTTP/1.1\r\nHost: x\r\n\r\n")
            let reply = try await connection.readResponse(timeoutSeconds: 5, decodingBody: false)
            #expect(reply.status == 200 && reply.headers.first(name: "Content-Length") == "36000", "response \(index)")
        }
        #expect(gateway.registry.state.services[0].members[0].runtime.failuresInARow == 0)
        await gateway.shutdown()
        await stopAll(instances)
    }

    @Test func aPipeliningClientThatDoesNotReadIsAnsweredAsItReads() async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        let gateway = try await tradingGateway(instances)
        let count = 400
        let size = 64 * 1024
        let connection = try await RawConnection(port: gateway.port)
        let request = "GET /api/v1/trading/_download?bytes=\(size) HTTP/1.1\r\nHost: x\r\n\r\n"
        // Sent on the side: once the gateway stops reading, the requests wait in the socket's buffers.
        let sending = Task { try await connection.write(String(repeating: request, count: count)) }
        // The instance's count settles while nothing is read: no forwarding into memory.
        var last = -1
        var steady = 0
        await waitUntil(timeout: .seconds(30), "forwarding pauses") {
            let now = instances[0].requestCount
            steady = now == last && now > 0 ? steady + 1 : 0
            last = now
            return steady >= 50
        }
        // 400 × 64 KiB would be 25 MB; the two sockets' buffers hold 10 MB of it at most.
        #expect(last < count * 3 / 4, "\(last) responses forwarded to a client that reads nothing")
        for index in 0..<count {
            let reply: GatewayHarness.Reply
            do {
                reply = try await connection.readResponse(decodingBody: false)
            } catch {
                Issue.record("response \(index): \(error); the instance had \(instances[0].requestCount) requests")
                break
            }
            // The bytes are binary and skipped: the framing says how many there were.
            guard reply.status == 200, reply.headers.first(name: "Content-Length") == String(size) else {
                Issue.record("response \(index): \(reply.status), \(reply.headers)")
                break
            }
        }
        _ = try await sending.value
        #expect(instances[0].requestCount == count)
        await gateway.shutdown()
        await stopAll(instances)
    }

    /// A response that ends its connection (here: a body of unknown length to an HTTP/1.0 client) is the
    /// last one: a request pipelined behind it is neither answered nor forwarded — the client repeats it
    /// on a new connection, so an order is never placed without its answer reaching anyone.
    @Test func aRequestPipelinedBehindAClosingResponseIsNotForwarded() async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        let gateway = try await tradingGateway(instances)
        let connection = try await RawConnection(port: gateway.port)
        // Two chunks 20 ms apart: the body streams (a body whole with its head would get a Content-Length).
        try await connection.write("GET /api/v1/trading/_download?bytes=70000&chunked=1&chunk_ms=20 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
            + "POST /api/v1/trading/_echo HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi")
        let (closed, bytes) = try await connection.waitForClose()
        #expect(closed && bytes.hasPrefix("HTTP/1.1 200 OK\r\n") && bytes.contains("Connection: close\r\n") && bytes.utf8.count > 70000,
                "\(bytes.prefix(200))")
        #expect(!bytes.contains("\"body_checksum\"") && bytes.components(separatedBy: "HTTP/1.1 ").count == 2, "one response only")
        // A later request on a new connection is answered; only it reached the instance.
        let echo = try await gateway.send(.POST, "/api/v1/trading/_echo", body: ByteBuffer(string: "hi"))
        #expect(echo.status == 200)
        #expect(instances[0].completedEchoes == 1, "the pipelined POST was forwarded without its answer reaching the client")
        await gateway.shutdown()
        await stopAll(instances)
    }

    // MARK: Connections the client closes

    /// Every way a client can close its side — after a response on a kept-alive connection, right after
    /// connecting, in the middle of a header section, in the middle of a body — closes the gateway's side
    /// at once, not after the idle or header timeout (60 s and 10 s by default).
    @Test func aClientsCloseClosesTheConnectionPromptly() async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        let gateway = try await tradingGateway(instances)
        let opened = ContinuousClock.now
        var connections: [RawConnection] = []
        let afterResponse = try await RawConnection(port: gateway.port)
        try await afterResponse.write("GET /api/v1/trading/orders HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try await afterResponse.readResponse().status == 200)
        connections.append(afterResponse)
        connections.append(try await RawConnection(port: gateway.port))
        let partialHead = try await RawConnection(port: gateway.port)
        try await partialHead.write("GET /api/v1/trading/orders HTTP/1.1\r\nHost: x\r\nX-Half: ")
        connections.append(partialHead)
        let partialBody = try await RawConnection(port: gateway.port)
        try await partialBody.write("POST /api/v1/trading/_echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        connections.append(partialBody)
        await waitUntil("four connections open") { gateway.gateway.connections.open == 4 }
        for connection in connections { connection.closeWrite() }
        await waitUntil(timeout: .seconds(2), "every connection closed by the gateway") { gateway.gateway.connections.open == 0 }
        #expect(ContinuousClock.now - opened < .seconds(5), "well before any timeout")
        for connection in connections {
            let (closed, _) = try await connection.waitForClose(timeoutSeconds: 2)
            #expect(closed)
        }
        let runtime = try #require(gateway.registry.runtime(id: "user_trading-1"))
        await waitUntil("nothing in flight") { runtime.inFlight == 0 }
        #expect(runtime.state == .healthy, "a client's abort is not the instance's failure")
        await gateway.shutdown()
        await stopAll(instances)
    }

    /// A client that disconnects while its idempotent request waits for the instance: the request is
    /// abandoned at once (the instance's connection is closed, nothing stays in flight), and the access
    /// log says 499 `client_closed_request`. A client that only half-closed still reads that answer.
    @Test(arguments: UpstreamTransportKind.allCases)
    func anAbandonedIdempotentRequestIsCancelled(_ transport: UpstreamTransportKind) async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        let (gateway, logPath) = try await Self.loggedGateway(instances, transport: transport)
        let runtime = try #require(gateway.registry.runtime(id: "user_trading-1"))

        let connection = try await RawConnection(port: gateway.port)
        try await connection.write("GET /api/v1/trading/orders?sleep_ms=5000 HTTP/1.1\r\nHost: x\r\nX-Request-ID: abandoned-get\r\n\r\n")
        await waitUntil("the request reached the instance") { instances[0].inFlight == 1 }
        let closedAt = ContinuousClock.now
        connection.closeWrite()
        let reply = try await connection.readResponse(timeoutSeconds: 4)
        #expect(reply.status == 499 && reply.errorCode == "client_closed_request", "\(reply.status) \(reply.body)")
        #expect(ContinuousClock.now - closedAt < .seconds(2), "abandoned at once, not after the instance's 5 s")
        await waitUntil("nothing in flight") { runtime.inFlight == 0 }
        #expect(runtime.failuresInARow == 0, "not the instance's failure")
        await gateway.shutdown()
        await stopAll(instances)

        let line = try #require(try Self.accessLogLines(logPath).first { $0["request_id"] as? String == "abandoned-get" })
        #expect(line["status"] as? Int == 499 && line["error"] as? String == "client_closed_request", "\(line)")
    }

    /// A client that disconnects while its order (a POST, not idempotent) is with the instance: the
    /// order runs to completion — it may already be placed — and the access log keeps its outcome (the
    /// instance's status) with `client_closed_request`.
    @Test func anAbandonedOrderRunsToCompletionAndIsLogged() async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        let (gateway, logPath) = try await Self.loggedGateway(instances)

        let before = instances[0].requestCount
        let connection = try await RawConnection(port: gateway.port)
        try await connection.write("POST /api/v1/trading/orders?sleep_ms=600 HTTP/1.1\r\nHost: x\r\nX-Request-ID: abandoned-order\r\n"
                                   + "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
        await waitUntil("the order reached the instance") { instances[0].inFlight == 1 }
        connection.closeWrite()
        let reply = try await connection.readResponse(timeoutSeconds: 5)
        #expect(reply.status == 201, "the order's own answer: \(reply.status) \(reply.body)")
        #expect(instances[0].requestCount == before + 1)
        await gateway.shutdown()
        await stopAll(instances)

        let line = try #require(try Self.accessLogLines(logPath).first { $0["request_id"] as? String == "abandoned-order" })
        #expect(line["status"] as? Int == 201 && line["error"] as? String == "client_closed_request", "\(line)")
    }

    /// In a gateway process whose open-file limit is 1,024 (soft and hard: nothing to raise), 3,000
    /// connect–request–close cycles, each a new connection: every request is answered, and the
    /// process's open descriptors return to where they were within a second.
    @Test func connectRequestCloseCyclesReturnDescriptorsToBaseline() async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        // No health checks: under the whole suite's load the instance (in the test process) can miss a
        // check's one-second timeout, and its one instance would leave rotation for ten seconds —
        // descriptors are what this test is about.
        let config = CommandLineTests.config(upstreamPort: instances[0].port)
            .replacingOccurrences(of: "    instances: [", with: "    health_check: {enabled: false}\n    instances: [")
        try #require(config.contains("health_check: {enabled: false}"))
        let path = try CommandLineTests.writeConfig(config)
        let child = try GatewayProcess(["serve", "--config", path], openFileLimit: 1024)
        let port = try await child.listeningPort()
        let pid = child.pid
        let request = Array("GET /api/v1/trading/orders HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        // Warm up: the upstream connection exists before the baseline is taken.
        #expect(try await Self.oneRequestThenClose(port: port, request: request) == 200)
        try await Task.sleep(for: .milliseconds(200))
        let baseline = try #require(Self.openDescriptors(pid: pid))

        var statuses: [Int: Int] = [:]
        for _ in 0..<3000 {
            let status = (try? await Self.oneRequestThenClose(port: port, request: request)) ?? 0
            statuses[status, default: 0] += 1
        }
        #expect(statuses == [200: 3000], "\(statuses)\n\(child.output.suffix(2000))")
        let returned = await waitUntil(timeout: .seconds(1), "descriptors back to \(baseline)") {
            (Self.openDescriptors(pid: pid) ?? .max) <= baseline + 2
        }
        #expect(returned, "open descriptors: \(Self.openDescriptors(pid: pid) ?? -1), baseline \(baseline)")
        kill(pid, SIGTERM)
        #expect(await child.waitForExit() == 0)
        await stopAll(instances)
    }

    /// A gateway process out of descriptors (hard limit 256, held open by idle keep-alive connections)
    /// stays up, keeps answering the connections it has, does not spin on failing accepts, reports it
    /// (log, `/metrics`), and accepts again once descriptors free up.
    @Test func descriptorExhaustionDegradesAndRecovers() async throws {
        let path = try CommandLineTests.writeConfig(CommandLineTests.config(upstreamPort: 1))
        let child = try GatewayProcess(["serve", "--config", path], openFileLimit: 256)
        let port = try await child.listeningPort()
        let pid = child.pid

        // Hold connections until accepting fails: each answered once, then left open and idle.
        var held: [RawConnection] = []
        while held.count < 400 {
            let connection = try await RawConnection(port: port)
            try await connection.write("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            guard (try? await connection.readResponse(timeoutSeconds: 2)) != nil else { break }
            held.append(connection)
        }
        #expect(held.count > 100 && held.count < 256, "held \(held.count) before the limit")
        await waitUntil("the exhaustion is logged") { child.output.contains("out of file descriptors") }

        // Held connections are still served, and say so.
        try await held[0].write("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        let metrics: GatewayHarness.Reply
        do {
            metrics = try await held[0].readResponse()
        } catch {
            try? await Task.sleep(for: .milliseconds(200))
            Issue.record("a held connection was not answered (gateway running: \(child.isRunning))\n\(child.output.suffix(3000))")
            throw error
        }
        #expect(metrics.status == 200)
        #expect(metrics.body.contains("gateway_accepting 0"), "\(metrics.body.suffix(800))")
        let failures = metrics.body.split(separator: "\n").first { $0.hasPrefix("gateway_accept_failures_total ") }
        #expect((failures?.split(separator: " ").last.flatMap { Int($0) } ?? 0) > 0)
        // The process keeps descriptors of its own while out of them for clients: the reserve was released.
        func value(_ name: String) -> Int? {
            metrics.body.split(separator: "\n").first { $0.hasPrefix(name + " ") }?.split(separator: " ").last.flatMap { Int($0) }
        }
        if value("gateway_open_files") != nil, let limit = value("gateway_open_files_limit") {
            // While clients still queue in the backlog the listener takes its reserve back, accepts until it
            // is out again and gives the reserve up at once; between those rounds the process has room.
            let room = await waitUntil(timeout: .seconds(3), "descriptors left for the process itself") {
                (Self.openDescriptors(pid: pid) ?? .max) <= limit - AcceptPressure.reserveSize / 2
            }
            #expect(room, "open \(Self.openDescriptors(pid: pid) ?? -1) of \(limit): no descriptors left for the process itself")
        } else {
            Issue.record("gateway_open_files and gateway_open_files_limit are missing from /metrics")
        }

        // No busy loop on failing accepts: well under a quarter of a core over two seconds.
        let cpuBefore = try #require(Self.cpuSeconds(pid: pid))
        try await Task.sleep(for: .seconds(2))
        let cpuUsed = try #require(Self.cpuSeconds(pid: pid)) - cpuBefore
        #expect(cpuUsed < 0.5, "CPU while out of descriptors: \(cpuUsed) s in 2 s")
        #expect(child.isRunning)

        // Descriptors free up: new clients are answered again.
        held.removeLast(60)
        let recovered = try await Self.waitForAnswer(port: port)
        #expect(recovered, "a new connection is answered once descriptors are free\n\(child.output.suffix(1500))")
        await waitUntil("recovery logged") { child.output.contains("accepting connections again") }
        held.removeAll()
        kill(pid, SIGTERM)
        #expect(await child.waitForExit() == 0)
    }

    // MARK: Instances that break responses off

    enum Truncation: String, CaseIterable, Sendable {
        case shortContentLength, missingLastChunk
        var reply: String {
            switch self {
            case .shortContentLength: "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + String(repeating: "x", count: 100)
            case .missingLastChunk: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n" + String(repeating: "x", count: 100) + "\r\n"
            }
        }
    }

    /// An instance that sends a 200 head and then closes early — fewer bytes than its `Content-Length`,
    /// or a chunked body without its last chunk — fails those requests. The gateway counts each as an
    /// upstream failure: passive health ejects the instance after `consecutive_failures`, and the
    /// failures show in `/gateway/stats`, `/metrics`, the access log and the console's figures.
    @Test(arguments: UpstreamTransportKind.allCases, Truncation.allCases)
    func aTruncatingInstanceIsCountedAndEjected(_ transport: UpstreamTransportKind, _ truncation: Truncation) async throws {
        let server = try await ScriptedServer.start { (truncation.reply, close: true) }
        let directory = TemporaryPath.make("redfire-truncate")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let log = CapturedLog()
        let gateway = try await rawInstanceGateway(port: server.port, id: "truncating", transport: transport, service: {
            $0.passiveEjection.consecutiveFailures = 3
        }, gateway: {
            $0.adminToken = AdminAPITests.token
            $0.accessLog.enabled = true
            $0.accessLog.path = directory + "/access.log"
        }, logger: log.logger)
        let runtime = try #require(gateway.registry.runtime(id: "truncating"))
        for index in 0..<3 {
            let connection = try await RawConnection(port: gateway.port)
            try await connection.write("GET /api/v1/trading/orders HTTP/1.1\r\nHost: x\r\nX-Request-ID: truncated-\(index)\r\n\r\n")
            let (closed, bytes) = try await connection.waitForClose(timeoutSeconds: 5)
            #expect(closed && bytes.hasPrefix("HTTP/1.1 200") && bytes.utf8.count < 1000, "\(bytes.prefix(200))")
        }
        await waitUntil("ejected by passive health") { runtime.state == .ejected }
        #expect(try await gateway.send("/api/v1/trading/orders").status == 503, "no instance left in rotation")

        let stats = try await gateway.send("/gateway/stats?window=1m", headers: AdminAPITests.auth).json()
        let instance = try #require((stats["instances"] as? [String: Any])?["truncating"] as? [String: Any], "\(stats)")
        #expect(instance["upstream_truncated"] as? Int == 3 && instance["upstream_errors"] as? Int == 3, "\(instance)")
        let metrics = try await gateway.send("/metrics").body
        #expect(metrics.contains(#"gateway_upstream_truncated_total{service="user_trading",instance="truncating"} 3"#))
        let figures = try #require(gateway.gateway.snapshot(windowSeconds: 60).instance(id: "truncating")?.figures)
        #expect(figures.upstreamTruncated == 3 && figures.errorRatio > 0.7, "the console's ERR% counts them: \(figures.errorRatio)")
        #expect(log.text.contains("upstream response truncated"), "\(log.text)")
        await gateway.shutdown()
        try await server.close()

        let lines = try Self.accessLogLines(directory + "/access.log").filter { ($0["request_id"] as? String)?.hasPrefix("truncated-") == true }
        #expect(lines.count == 3 && lines.allSatisfy { $0["error"] as? String == "upstream_truncated" && $0["status"] as? Int == 200 }, "\(lines)")
    }

    // MARK: Bounded buffering

    /// A response waiting for a slow reader is held up to half of `limits.connection_buffer` bytes (the
    /// other half is the client's write buffer), not a number of parts: the instance's connection stops
    /// being read once that much is buffered, whatever the size of each read (8 KiB parts against a
    /// 64 KiB buffer, then 100-byte parts).
    @Test func anUpstreamResponseIsBufferedUpToTheByteBound() throws {
        func handler() throws -> (EmbeddedChannel, UpstreamConnectionHandler) {
            let channel = EmbeddedChannel()
            let handler = UpstreamConnectionHandler(idleTimeout: .seconds(60))
            try channel.pipeline.syncOperations.addHandler(handler)
            handler.beginExchange(method: .get, bufferLimit: 64 * 1024)
            try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"))
            return (channel, handler)
        }
        /// One chunk of `count` bytes, as the instance sends it.
        func chunk(_ count: Int) -> ByteBuffer {
            var bytes = ByteBuffer(string: String(count, radix: 16) + "\r\n")
            bytes.writeRepeatingByte(0, count: count)
            bytes.writeString("\r\n")
            return bytes
        }
        let (channel, large) = try handler()
        for _ in 0..<3 { try channel.writeInbound(chunk(8 * 1024)) }
        #expect(!large.isReadingPaused, "24 KiB buffered")
        try channel.writeInbound(chunk(8 * 1024))
        #expect(large.isReadingPaused, "32 KiB buffered: reading pauses")

        // The head is a part too.
        let (other, small) = try handler()
        for _ in 0..<(UpstreamConnectionStateMachine.highWatermark - 2) { try other.writeInbound(chunk(100)) }
        #expect(!small.isReadingPaused)
        try other.writeInbound(chunk(100))
        #expect(small.isReadingPaused, "many small parts pause too")
        _ = try channel.finish(acceptAlreadyClosed: true)
        _ = try other.finish(acceptAlreadyClosed: true)
    }

    // MARK: Helpers

    /// A gateway with one route over `instances` (no health checks) writing its access log to a file.
    static func loggedGateway(_ instances: [DemoInstance], transport: UpstreamTransportKind = .nio) async throws -> (GatewayHarness, logPath: String) {
        let directory = TemporaryPath.make("redfire-logged")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var service = serviceConfig("user_trading", instances)
        service.healthCheck.enabled = false
        var config = GatewayConfig()
        config.upstreamTransport = transport
        config.services = [service]
        config.routes = [RouteConfig(prefix: "/api/v1/trading", service: "user_trading")]
        config.accessLog.enabled = true
        config.accessLog.path = directory + "/access.log"
        return (try await GatewayHarness.start(config), directory + "/access.log")
    }

    static func accessLogLines(_ path: String) throws -> [[String: Any]] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
            .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    /// One connection: the request, its response's status, then the client closes first.
    static func oneRequestThenClose(port: Int, request: [UInt8]) async throws -> Int {
        try await RawHTTP.pool.runIfActive {
            let fd = try RawHTTP.connectedSocket(port: port)
            defer { close(fd) }
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            guard request.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == request.count else { return 0 }
            var received: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 16384)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                guard count > 0 else { return 0 }
                received.append(contentsOf: buffer[0..<count])
                if let (reply, _) = RawConnection.complete(received) { return reply.status }
            }
        }
    }

    /// Whether a new connection gets `/health` answered within 10 s (retrying while the listener pauses).
    static func waitForAnswer(port: Int) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let request = Array("GET /health HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
            if (try? await oneRequestThenClose(port: port, request: request)) == 200 { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    static func openDescriptors(pid: Int32) -> Int? {
        try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count
    }

    /// User plus system CPU time of a process, in seconds (`/proc/PID/stat` fields 14 and 15).
    static func cpuSeconds(pid: Int32) -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
