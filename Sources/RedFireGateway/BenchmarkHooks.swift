import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1

/// Entry points for the micro-benchmarks in `Benchmarks/` (a separate package, so that `swift build`
/// and `swift test` never build the benchmark dependency). Not part of the gateway's API.
@_spi(Benchmarks) public enum BenchmarkHooks {
    /// A metric series, opaque to the benchmarks.
    public struct Series: Sendable {
        let series: MetricSeries
    }

    /// A route table snapshot, opaque to the benchmarks.
    public struct Routes: Sendable {
        let state: GatewayState
    }

    /// A fresh metric series with the default retention.
    public static func metricSeries() -> Series {
        Series(series: MetricSeries(name: "bench"))
    }

    /// Records one request into `series`, exactly as the request path does.
    public static func record(_ series: Series, status: Int, totalMicros: UInt64, upstreamMicros: UInt64, second: Int64) {
        series.series.record(RequestSample(status: status, method: "GET", totalMicros: totalMicros, upstreamMicros: upstreamMicros,
                                    bytesIn: 0, bytesOut: 512), second: second)
    }

    /// A snapshot with the given route prefixes over one service.
    public static func state(prefixes: [String]) -> Routes {
        var config = GatewayConfig()
        var service = ServiceConfig(name: "svc")
        service.instances = [InstanceConfig(id: "svc-1", url: UpstreamURL(host: "127.0.0.1", port: 9001))]
        config.services = [service]
        config.routes = prefixes.map { RouteConfig(prefix: $0, service: "svc") }
        return Routes(state: ServiceRegistry(config: config).state)
    }

    /// Route matching as the request path does it; returns the matched route's prefix.
    public static func match(_ routes: Routes, path: Substring) -> String? {
        routes.state.route(for: path)?.config.prefix
    }

    /// A picker for a strategy over `weights.count` instances; returns the picked instance id.
    public static func picker(_ strategy: BalancingStrategyKind, weights: [Int]) -> @Sendable (String?) -> String? {
        let members = weights.enumerated().map { index, weight in
            PoolMember(runtime: InstanceRuntime(id: "i\(index)", serviceName: "svc"), url: UpstreamURL(host: "127.0.0.1", port: 9000 + index),
                       weight: weight, version: nil, metadata: [:])
        }
        let balancer = strategy.makeBalancer(members: members)
        return { key in balancer.pick(hashKey: key, excluding: [])?.id }
    }

    /// The header rewriting of a forwarded request, as its head is written for the instance; returns the
    /// head's size.
    public static func upstreamHead(_ fields: HTTPFields) -> Int {
        let upstream = HeaderPolicy.upstreamFields(fields, clientIP: "127.0.0.1", clientHost: "gateway.example",
                                                   requestID: "0123456789abcdef0123456789abcdef")
        var buffer = ByteBuffer()
        HTTP1RequestWriter.writeHead(method: .get, target: "/orders", authority: "127.0.0.1:9000", fields: upstream, framing: .none, to: &buffer)
        return buffer.readableBytes
    }

    /// The header rewriting of a response on its way to the client.
    public static func downstreamHeaders(_ fields: HTTPFields) -> HTTPFields {
        HeaderPolicy.downstreamHeaders(fields, requestID: "0123456789abcdef0123456789abcdef")
    }

    /// Request-target normalization as the request path does it; returns the normalized path.
    public static func normalize(_ target: String) -> String? {
        try? RequestTarget.parse(target).path
    }

    /// Verification of one HS256 access token as the request path does it (signature, then claims).
    public static func accessTokenVerifier() -> @Sendable () -> Bool {
        let key = SigningKey.hmac(.init(data: Array("benchmark-secret-0123456789abcdef".utf8)))
        let now = Date()
        let claims = AccessClaims(sub: "1", name: "bench", roles: ["trader"], permissions: ["trading:read"], iat: NumericDate(now), nbf: NumericDate(now),
                                  exp: NumericDate(now.addingTimeInterval(3600)), iss: "redfire-gateway", aud: Audience(["redfire-api"]),
                                  jti: "bench", typ: "access", sid: "s")
        let token = (try? JWS.sign(payload: claims, key: key, keyID: "k1")) ?? ""
        let keys = ["k1": key.verificationKey]
        let decoder = JSONDecoder()
        return {
            guard let payload = try? JWS.verify(token, keys: keys) else { return false }
            return (try? decoder.decode(AccessClaims.self, from: Data(payload))) != nil
        }
    }
}
