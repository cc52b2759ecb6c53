import AsyncHTTPClient
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// `UpstreamTransport` over AsyncHTTPClient, configured as a proxy: no redirects, no decompression,
/// HTTP/1 only, pooled keep-alive connections sized for concurrency, no connection-establishment retry
/// loop (a refused connection fails at once so the gateway can fail over), no tracing.
///
/// AsyncHTTPClient's timeouts and TLS settings are per client, so there is one client per distinct
/// `timeouts` and `tls` setting. (It cannot send another SNI than the URL's host: `server_name` needs
/// the `nio` transport, which configuration loading checks.)
final class HTTPClientTransport: UpstreamTransport {
    private struct ClientKey: Hashable {
        var timeouts: TimeoutConfig
        var tls: UpstreamTLSConfig?
    }

    private let eventLoopGroup: any EventLoopGroup
    private let clients = Mutex<[ClientKey: HTTPClient]>([:])
    private let logger: Logger
    /// AsyncHTTPClient cannot carry a 101 (it closes the connection): upgrades take the gateway's own.
    private let upgrades: NIOUpstreamTransport

    /// Connections kept per upstream instance; AsyncHTTPClient opens more when needed and parks the rest.
    static let connectionsPerHost = 512

    init(eventLoopGroup: any EventLoopGroup, logger: Logger) {
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.upgrades = NIOUpstreamTransport(eventLoopGroup: eventLoopGroup, logger: logger)
    }

    nonisolated(nonsending) func upgrade(_ request: UpstreamRequest, timeouts: TimeoutConfig) async throws(UpstreamFailure) -> UpstreamResponse {
        try await upgrades.upgrade(request, timeouts: timeouts)
    }

    private func client(for timeouts: TimeoutConfig, tls: UpstreamTLSConfig?) throws(UpstreamFailure) -> HTTPClient {
        let key = ClientKey(timeouts: timeouts, tls: tls)
        if let client = clients.withLock({ $0[key] }) { return client }
        var tlsConfiguration: TLSConfiguration?
        if let tls {
            do { tlsConfiguration = try tls.clientConfiguration() } catch { throw .tlsFailed }
        }
        return clients.withLock { clients in
            if let client = clients[key] { return client }
            var configuration = HTTPClient.Configuration(
                redirectConfiguration: .disallow,
                timeout: .init(connect: .nanoseconds(timeouts.connect.nanosecondsClamped),
                               read: .nanoseconds(timeouts.idle.nanosecondsClamped)),
                connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: Self.connectionsPerHost),
                decompression: .disabled
            )
            configuration.httpVersion = .http1Only
            configuration.connectionPool.retryConnectionEstablishment = false
            configuration.tracing.tracer = nil
            configuration.tlsConfiguration = tlsConfiguration
            let client = HTTPClient(eventLoopGroupProvider: .shared(eventLoopGroup), configuration: configuration, backgroundActivityLogger: logger)
            clients[key] = client
            return client
        }
    }

    nonisolated(nonsending) func execute(_ request: UpstreamRequest, timeouts: TimeoutConfig) async throws(UpstreamFailure) -> UpstreamResponse {
        var outbound = HTTPClientRequest(url: request.url)
        outbound.method = HTTPMethod(rawValue: request.method.rawValue)
        outbound.headers = HTTPHeaders(upstream: request.headers.fields)
        if let traceparent = request.traceparent { outbound.headers.add(name: "traceparent", value: traceparent) }
        if let body = request.body {
            outbound.body = .stream(body.stream, length: body.length.map { .known(Int64($0)) } ?? .unknown)
        }
        let client = try client(for: timeouts, tls: request.tls)
        let response: HTTPClientResponse
        do {
            response = try await client.execute(outbound, deadline: .now() + .nanoseconds(timeouts.responseHeaders.nanosecondsClamped))
        } catch {
            throw UpstreamFailure(classifying: error)
        }
        return UpstreamResponse(status: HTTPResponse.Status(code: Int(response.status.code), reasonPhrase: response.status.reasonPhrase),
                                headers: HTTPFields(nioHeaders: response.headers),
                                body: .stream(response.body))
    }

    func shutdown() async {
        let all = clients.withLock { clients in
            defer { clients.removeAll() }
            return Array(clients.values)
        }
        for client in all { try? await client.shutdown() }
        await upgrades.shutdown()
    }
}
