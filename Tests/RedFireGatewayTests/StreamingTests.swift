import AsyncHTTPClient
import DemoServices
import Foundation
import NIOCore
import Testing

@testable import RedFireGateway

/// Resident memory of this process, from /proc (the gateway, the upstream and the client all live here,
/// so the bound covers all three).
func residentBytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        let kilobytes = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
        return kilobytes * 1024
    }
    return 0
}

/// Samples resident memory until stopped and reports the peak.
final class PeakMemory: Sendable {
    private let task: Task<Int, Never>

    init() {
        task = Task {
            var peak = residentBytes()
            while !Task.isCancelled {
                peak = max(peak, residentBytes())
                try? await Task.sleep(for: .milliseconds(20))
            }
            return max(peak, residentBytes())
        }
    }

    func stop() async -> Int {
        task.cancel()
        return await task.value
    }
}

extension BulkTraffic {
@Suite("Streaming", .serialized, .cleansUp, .timeLimit(.minutes(2)))
struct StreamingTests {
    static let size = 100 * 1024 * 1024

    /// The 100 MB upload: a 64 KiB chunk, how many of it, and the checksum of them all.
    static var upload: (chunk: ByteBuffer, count: Int, checksum: StreamChecksum) {
        var chunk = ByteBuffer()
        chunk.writeBytes((0..<(64 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        let count = size / chunk.readableBytes
        var checksum = StreamChecksum()
        for _ in 0..<count { checksum.update(chunk) }
        return (chunk, count, checksum)
    }

    /// The checksum of the demo's `_download?bytes=size` body.
    static var downloadChecksum: StreamChecksum {
        var pattern = StreamChecksum()
        var offset = 0
        while offset < size {
            let length = min(StreamChecksum.patternChunkSize, size - offset)
            pattern.update(StreamChecksum.patternChunk(offset: offset, length: length))
            offset += length
        }
        return pattern
    }

    @Test func hundredMegabytesEachWayOverOneHTTP2StreamWithFlowControlAndBoundedMemory() async throws {
        let files = try TLSListenerTests.Files()
        let tls = ListenerTLSConfig(certificates: [try files.server("api", names: ["api.redfire.test"])])
        let instances = try await startInstances(.userTrading, count: 1)
        var listener = ListenerConfig(address: TLSListenerTests.loopback, tls: tls)
        // Windows and frames as a bulk-transfer client would set them (fewer frames and window updates).
        listener.http2.initialWindowSize = 1 << 20
        listener.http2.connectionWindowSize = 4 << 20
        listener.http2.maxFrameSize = 1 << 18
        let gateway = try await TLSListenerTests.gateway([listener], instances: instances) { config in
            config.routes[0].maxBodySize = 2 * Self.size
        }
        let client = try await HTTP2TestClient.connect(port: gateway.port, trust: try files.trust, bulk: true)
        #expect(try await client.request(.get, "/api/v1/trading/orders").status == 200)  // warm up
        let baseline = residentBytes()
        let peak = PeakMemory()

        let (chunk, chunkCount, expected) = Self.upload
        // Upload without Content-Length: forwarded chunked, each DATA frame within the stream's window.
        let upload = try await client.upload("/api/v1/trading/_echo", chunk: chunk, chunks: chunkCount)
        #expect(upload.status == 200)
        let report = try JSONDecoder().decode(EchoReport.self, from: Data(upload.body.utf8))
        #expect(report.bodyLength == Self.size)
        #expect(report.bodyChecksum == expected.hex)

        let (status, received) = try await client.download("/api/v1/trading/_download?bytes=\(Self.size)")
        #expect(status == 200)
        #expect(received.count == Self.size)
        #expect(received.hex == Self.downloadChecksum.hex)

        let growth = await peak.stop() - baseline
        #expect(growth < 64 * 1024 * 1024, "resident memory grew by \(growth / 1024 / 1024) MB")
        print("streaming 2×100 MB over HTTP/2: resident memory grew by \(growth / 1024 / 1024) MB")
        await client.close()
        await gateway.shutdown()
    }

    @Test(arguments: UpstreamTransportKind.allCases)
    func hundredMegabyteUploadAndDownloadStreamWithBoundedMemory(_ transport: UpstreamTransportKind) async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        // Over the 10 MB default body limit: the route allows it explicitly.
        var route = RouteConfig(prefix: "/api/v1/trading", service: "user_trading")
        route.maxBodySize = 2 * Self.size
        let gateway = try await tradingGateway(instances, transport: transport, routes: [route])
        _ = try await gateway.send("/api/v1/trading/orders")  // warm up pools and buffers
        let baseline = residentBytes()
        let peak = PeakMemory()

        // Upload: 100 MB streamed from the client; the upstream checksums what it receives.
        let (chunk, chunkCount, expected) = Self.upload
        var upload = HTTPClientRequest(url: gateway.baseURL + "/api/v1/trading/_echo")
        upload.method = .PUT
        let sendChunk = chunk
        upload.body = .stream(AsyncStream<ByteBuffer> { continuation in
            for _ in 0..<chunkCount { continuation.yield(sendChunk) }
            continuation.finish()
        }, length: .known(Int64(Self.size)))
        let uploadResponse = try await gateway.client.execute(upload, timeout: .seconds(120))
        #expect(uploadResponse.status == .ok)
        let report = try JSONDecoder().decode(EchoReport.self, from: Data(buffer: try await uploadResponse.body.collect(upTo: 1 << 20)))
        #expect(report.bodyLength == Self.size)
        #expect(report.bodyChecksum == expected.hex)

        // Download: 100 MB streamed from the upstream; the client checksums what it receives.
        let download = try await gateway.client.execute(HTTPClientRequest(url: gateway.baseURL + "/api/v1/trading/_download?bytes=\(Self.size)"), timeout: .seconds(120))
        #expect(download.status == .ok)
        #expect(download.headers.first(name: "Content-Length") == String(Self.size))
        var received = StreamChecksum()
        for try await part in download.body { received.update(part) }
        #expect(received.count == Self.size)
        #expect(received.hex == Self.downloadChecksum.hex)

        let growth = await peak.stop() - baseline
        #expect(growth < 64 * 1024 * 1024, "resident memory grew by \(growth / 1024 / 1024) MB")
        print("streaming 2×100 MB (\(transport.rawValue)): resident memory grew by \(growth / 1024 / 1024) MB")
        #expect(gateway.registry.runtime(id: "user_trading-1")?.inFlight == 0)
        await gateway.shutdown()
        await stopAll(instances)
    }

    @Test(arguments: UpstreamTransportKind.allCases)
    func clientAbandoningAResponseReleasesTheInFlightCount(_ transport: UpstreamTransportKind) async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        let gateway = try await tradingGateway(instances, transport: transport)
        // A client of its own, which goes away mid-body (the harness's client is shared by all tests).
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let response = try await client.execute(HTTPClientRequest(url: gateway.baseURL + "/api/v1/trading/_download?bytes=\(Self.size)"), timeout: .seconds(30))
        var iterator = response.body.makeAsyncIterator()
        _ = try await iterator.next()
        let runtime = try #require(gateway.registry.runtime(id: "user_trading-1"))
        #expect(runtime.inFlight == 1)
        try await client.shutdown()
        await waitUntil("in-flight released") { runtime.inFlight == 0 }
        await gateway.shutdown()
        await stopAll(instances)
    }

    /// HTTP/1.0 has no chunked coding (RFC 9112 §6.1): a streamed response of unknown length reaches an
    /// HTTP/1.0 client unframed and ends with the connection; an HTTP/1.1 client gets it chunked. An
    /// HTTP/1.0 client asking for keep-alive is told so and keeps its connection.
    @Test func http10ClientsGetCloseDelimitedStreamsAndKeepAliveWhenAsked() async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        let gateway = try await tradingGateway(instances)
        let size = 300_000
        let expected = String(decoding: (0..<size).map { UInt8($0 % 251) }, as: UTF8.self)
        let target = "/api/v1/trading/_download?bytes=\(size)&chunked=1"

        let old = try await RawHTTP.exchange(port: gateway.port, bytes: Array("GET \(target) HTTP/1.0\r\nHost: x\r\n\r\n".utf8))
        #expect(old.status == 200)
        #expect(old.headers["Transfer-Encoding"].isEmpty && old.headers["Content-Length"].isEmpty, "unframed")
        #expect(old.headers["Connection"] == ["close"])
        #expect(old.body == expected, "the whole stream, \(old.body.utf8.count) bytes")

        let current = try await RawHTTP.exchange(port: gateway.port, bytes: Array("GET \(target) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        #expect(current.status == 200 && current.headers["Transfer-Encoding"] == ["chunked"])
        #expect(current.body == expected)

        let kept = try await RawConnection(port: gateway.port)
        for _ in 0..<2 {
            try await kept.write("GET /api/v1/trading/orders HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
            let reply = try await kept.readResponse()
            #expect(reply.status == 200 && reply.headers["Connection"] == ["keep-alive"] && !reply.headers["Content-Length"].isEmpty)
        }
        try await kept.write("GET /api/v1/trading/orders HTTP/1.0\r\nHost: x\r\n\r\n")
        let last = try await kept.readResponse()
        #expect(last.status == 200 && last.headers["Connection"] == ["close"])
        #expect(try await kept.waitForClose(timeoutSeconds: 5).closed, "HTTP/1.0 without keep-alive closes")
        await gateway.shutdown()
        await stopAll(instances)
    }

    /// A client slower than the service's idle timeout still gets the whole response: the timeout is
    /// the instance's silence, not the client's pace (reading from the instance merely pauses).
    @Test func aSlowClientIsNotCutOffByTheUpstreamIdleTimeout() async throws {
        let instances = try await startInstances(.userTrading, count: 1)
        let gateway = try await tradingGateway(instances) { $0.timeouts.idle = .milliseconds(300) }
        let size = 8 * 1024 * 1024
        let connection = try await RawConnection(port: gateway.port)
        try await connection.write("GET /api/v1/trading/_download?bytes=\(size) HTTP/1.1\r\nHost: x\r\n\r\n")
        let (head, received) = try await connection.readSlowly(pauseAfter: 256 * 1024, pauseSeconds: 1)
        #expect(head.hasPrefix("HTTP/1.1 200"), "\(head)")
        #expect(received == size, "the whole body arrived after a pause longer than the idle timeout")
        await gateway.shutdown()
        await stopAll(instances)
    }
}
}
