import AsyncHTTPClient
import DemoServices
import Foundation
import ServiceLifecycle
import Testing

@testable import RedFireGateway

@Suite("Demo wiring")
struct DemoTests {
    /// The same wiring `redfire-gateway demo` uses: every one of the five services answers through the
    /// gateway, on every instance, and the traffic generator gets answers.
    @Test func everyDemoServiceIsReachableThroughTheGateway() async throws {
        let cluster = try await DemoCluster.start()
        #expect(cluster.instances.count == 10)
        let gateway = try await GatewayHarness.start(cluster.gatewayConfig(listen: ListenAddress(host: "127.0.0.1", port: 0)))
        await waitUntil("ready") { gateway.registry.state.isReady }

        for kind in DemoServiceKind.allCases {
            var seen: Set<String> = []
            for resource in kind.resources {
                for _ in 0..<4 {
                    let reply = try await gateway.send(kind.prefix + resource, headers: [("X-Account-Id", "acct-\(seen.count)-\(resource)")])
                    #expect(reply.status == 200, "\(kind.prefix + resource): \(reply.status)")
                    let json = try reply.json()
                    #expect(json["service"] as? String == kind.rawValue)
                    #expect(json["path"] as? String == kind.prefix + resource)
                    if let instance = reply.instance { seen.insert(instance) }
                }
            }
            #expect(!seen.isEmpty)
            #expect(seen.allSatisfy { $0.hasPrefix(kind.rawValue + "-") })
        }
        #expect(try await gateway.send(.POST, "/api/v1/trading/orders").status == 201)

        let traffic = TrafficGenerator(baseURL: gateway.baseURL, rate: 200)
        let group = ServiceGroup(configuration: .init(services: [traffic], logger: GatewayHarness.quietLogger))
        let run = Task { try await group.run() }
        await waitUntil("traffic flows") { traffic.requestsSent >= 100 }
        await group.triggerGracefulShutdown()
        try await run.value
        #expect(traffic.requestsFailed == 0)
        await waitUntil("every instance served") { cluster.instances.allSatisfy { $0.requestCount > 0 } }

        await gateway.shutdown()
        await cluster.stop()
    }
}
