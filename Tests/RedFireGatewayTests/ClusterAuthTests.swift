import DemoServices
import Foundation
import NIOCore
import Testing

@testable import RedFireGateway

/// Users, refresh-token families and API keys in the cluster's PostgreSQL: what one node (or the
/// command line) changes holds on every node within a second, refresh rotation stays exact across
/// nodes, and a node without its store refuses to issue what it cannot store.
@Suite("Cluster credentials", .cleansUp, .timeLimit(.minutes(2)),
       .enabled(if: TestPostgres.available || TestPostgres.required, "needs PostgreSQL's server binaries (apt-get install postgresql)"))
struct ClusterAuthTests {
    static func config(_ name: String, store: PostgresURL, instances: [DemoInstance]) -> GatewayConfig {
        var config = ClusterTests.config(name, store: store, instances: instances)
        config.routes = [RouteConfig(prefix: "/api/v1/trading", service: ClusterTests.service,
                                     permissions: RoutePermissions(read: "trading:read", write: "trading:write"))]
        config.auth.jwtSecret = AuthFlowTests.secret
        config.auth.bcryptCost = 4
        config.auth.roles = ["trader": ["trading:read", "trading:write"]]
        config.auth.defaultRoles = ["trader"]
        return config
    }

    static func node(_ name: String, store: PostgresURL, instances: [DemoInstance]) async throws -> GatewayHarness {
        try await ClusterTests.start(config(name, store: store, instances: instances))
    }

    static func post(_ gateway: GatewayHarness, _ path: String, _ json: String, token: String? = nil) async throws -> GatewayHarness.Reply {
        try await gateway.send(.POST, path, headers: [("Content-Type", "application/json")] + (token.map { [("Authorization", "Bearer \($0)")] } ?? []),
                               body: ByteBuffer(string: json))
    }

    static func login(_ gateway: GatewayHarness, _ username: String = "alice", _ password: String = "correct-horse-battery") async throws
        -> (access: String, refresh: String) {
        let reply = try await post(gateway, "/api/v1/auth/login", #"{"username":"\#(username)","password":"\#(password)"}"#)
        #expect(reply.status == 200, "\(reply.body)")
        let object = try reply.json()
        return (try #require(object["access_token"] as? String), try #require(object["refresh_token"] as? String))
    }

    static func status(_ gateway: GatewayHarness, _ path: String = "/api/v1/trading/orders", bearer: String? = nil, key: String? = nil) async throws -> Int {
        let headers = (bearer.map { [("Authorization", "Bearer \($0)")] } ?? []) + (key.map { [("X-API-Key", $0)] } ?? [])
        return try await gateway.send(path, headers: headers).status
    }

    @Test func aUserRegisteredOnOneNodeLogsInOnAnotherAndLogoutEndsTheSessionEverywhere() async throws {
        let store = try await TestPostgres.database()
        let instances = try await startInstances(.userTrading, count: 1, prefix: "creds")
        let a = try await Self.node("node-a", store: store, instances: instances)
        let b = try await Self.node("node-b", store: store, instances: instances)
        let c = try await Self.node("node-c", store: store, instances: instances)

        let registered = try await Self.post(a, "/api/v1/auth/register", #"{"username":"alice","password":"correct-horse-battery"}"#)
        #expect(registered.status == 201, "\(registered.body)")
        let taken = try await Self.post(b, "/api/v1/auth/register", #"{"username":"ALICE","password":"another-good-secret"}"#)
        #expect(taken.status == 409 && taken.errorCode == "username_taken", "one user store for every node: \(taken.body)")

        // Logged in on B; the tokens work on A and C.
        var delays: [Duration] = []
        for round in 0..<10 {
            let session = try await Self.login(b)
            #expect(try await Self.status(a, bearer: session.access) == 200)
            #expect(try await Self.status(c, bearer: session.access) == 200)
            // Logout on A: the access token is refused on B and C within a second, and so is the refresh token.
            let start = ContinuousClock.now
            #expect(try await Self.post(a, "/api/v1/auth/logout", "{}", token: session.access).status == 204)
            let ended = await waitUntil(timeout: .seconds(1), "round \(round): the session ended on B and C") {
                let onB = try? await Self.status(b, bearer: session.access)
                let onC = try? await Self.status(c, bearer: session.access)
                return onB == 401 && onC == 401
            }
            #expect(ended)
            delays.append(ContinuousClock.now - start)
            let refreshed = try await Self.post(c, "/api/v1/auth/refresh", #"{"refresh_token":"\#(session.refresh)"}"#)
            #expect(refreshed.status == 401, "\(refreshed.body)")
        }
        print("cluster logout propagation, 3 nodes, 10 sessions: p50 \(ClusterTests.percentile(delays, 0.5)), p99 \(ClusterTests.percentile(delays, 0.99))")

        // A node started now refuses the sessions that ended before it (read from the store on connect).
        let ended = try await Self.login(a)
        #expect(try await Self.post(a, "/api/v1/auth/logout", "{}", token: ended.access).status == 204)
        let d = try await Self.node("node-d", store: store, instances: instances)
        await waitUntil("D applied the snapshot") { d.control.cluster.map { _ in true } ?? false }
        let refusedOnD = await waitUntil(timeout: .seconds(2), "D refuses the ended session") { (try? await Self.status(d, bearer: ended.access)) == 401 }
        #expect(refusedOnD)
    }

    @Test func twoNodesRefreshingOneTokenAtOnceSucceedOnce() async throws {
        let store = try await TestPostgres.database()
        let instances = try await startInstances(.userTrading, count: 1, prefix: "rotate")
        let a = try await Self.node("node-a", store: store, instances: instances)
        let b = try await Self.node("node-b", store: store, instances: instances)
        #expect(try await Self.post(a, "/api/v1/auth/register", #"{"username":"alice","password":"correct-horse-battery"}"#).status == 201)
        for _ in 0..<8 {
            let session = try await Self.login(a)
            let body = #"{"refresh_token":"\#(session.refresh)"}"#
            async let onA = Self.post(a, "/api/v1/auth/refresh", body)
            async let onB = Self.post(b, "/api/v1/auth/refresh", body)
            let statuses = try await [onA.status, onB.status].sorted()
            #expect(statuses == [200, 401], "\(statuses)")
        }
        // Reuse of a rotated token revokes the family on every node: the winner's new tokens end too.
        let session = try await Self.login(a)
        let next = try await Self.post(a, "/api/v1/auth/refresh", #"{"refresh_token":"\#(session.refresh)"}"#)
        let rotated = try #require(try next.json()["access_token"] as? String)
        #expect(try await Self.status(b, bearer: rotated) == 200)
        #expect(try await Self.post(b, "/api/v1/auth/refresh", #"{"refresh_token":"\#(session.refresh)"}"#).status == 401)
        let revoked = await waitUntil(timeout: .seconds(1), "the family's access token ends on A") { (try? await Self.status(a, bearer: rotated)) == 401 }
        #expect(revoked)
    }

    /// `redfire-gateway users|keys` with a cluster configuration write to the cluster store; running
    /// nodes apply each change within a second.
    @Test func theCommandLineManagesTheClusterStoreAndNodesFollow() async throws {
        let store = try await TestPostgres.database()
        let instances = try await startInstances(.userTrading, count: 1, prefix: "cli")
        let a = try await Self.node("node-a", store: store, instances: instances)
        let b = try await Self.node("node-b", store: store, instances: instances)
        let path = try CommandLineTests.writeConfig("""
            services: {user_trading: {instances: [{url: "http://127.0.0.1:\(instances[0].port)"}]}}
            routes: [{prefix: /api/v1/trading, service: user_trading}]
            auth:
              jwt_secret: "\(AuthFlowTests.secret)"
              bcrypt_cost: 4
              roles: {trader: [trading:read, trading:write], viewer: [trading:read]}
            cluster: {store: "postgres://\(store.user)@\(store.host):\(store.port)/\(store.database)"}
            """)
        func cli(_ arguments: [String], input: String? = nil) async throws -> (status: Int32?, stdout: String, stderr: String) {
            try await GatewayProcess.run(arguments + ["--config", path], input: input)
        }
        var result = try await cli(["users", "add", "alice", "--role", "trader", "--password-stdin"], input: "correct-horse-battery\n")
        #expect(result.status == 0, "\(result.stderr)")
        let session = try await Self.login(a)
        #expect(try await Self.status(b, bearer: session.access) == 200)

        result = try await cli(["keys", "create", "--user", "alice"])
        #expect(result.status == 0, "\(result.stderr)")
        let key = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        var works = await waitUntil(timeout: .seconds(1), "the new key works on A and B") {
            let onA = try? await Self.status(a, key: key)
            let onB = try? await Self.status(b, key: key)
            return onA == 200 && onB == 200
        }
        #expect(works)
        result = try await cli(["keys", "list"])
        #expect(result.stdout.contains("user:alice"), "\(result.stdout)")

        // A role taken away: the access token and the key lose it within a second.
        result = try await cli(["users", "grant", "alice", "viewer"])
        #expect(result.status == 0, "\(result.stderr)")
        works = await waitUntil(timeout: .seconds(1), "the old access token ends on B") { (try? await Self.status(b, bearer: session.access)) == 401 }
        #expect(works, "\((try? TestPostgres.psql(store, "SELECT seq, node, actor, payload, at FROM redfire.cluster_events ORDER BY seq")) ?? "")")
        let fresh = try await Self.login(b)
        #expect(try await Self.status(a, bearer: fresh.access) == 200)

        // Disabled: every access token and key of the user ends on every node.
        result = try await cli(["users", "disable", "alice"])
        #expect(result.status == 0, "\(result.stderr)")
        works = await waitUntil(timeout: .seconds(1), "alice's token and key end on A and B") {
            let token = try? await Self.status(a, bearer: fresh.access)
            let keyed = try? await Self.status(b, key: key)
            return token == 401 && keyed == 401
        }
        #expect(works)
        #expect(try await Self.post(a, "/api/v1/auth/login", #"{"username":"alice","password":"correct-horse-battery"}"#).status == 401)

        // Enabled again, a key revoked from the command line ends on every node.
        #expect(try await cli(["users", "enable", "alice"]).status == 0)
        await waitUntil(timeout: .seconds(1), "the key works again") { (try? await Self.status(b, key: key)) == 200 }
        let keyID = String(key.split(separator: "_")[1])
        #expect(try await cli(["keys", "revoke", keyID]).status == 0)
        works = await waitUntil(timeout: .seconds(1), "the revoked key ends on A and B") {
            let onA = try? await Self.status(a, key: key)
            let onB = try? await Self.status(b, key: key)
            return onA == 401 && onB == 401
        }
        #expect(works)
        let events = try TestPostgres.psql(store, "SELECT count(*) FROM redfire.cluster_events WHERE actor = 'cli' AND channel = 'auth'")
        #expect((Int(events.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) >= 5, "\(events)")
    }

    /// Without its store a node verifies the access tokens it is shown (they need no store), but issues
    /// none: login, refresh and logout answer 503 `auth_unavailable` with Retry-After; API keys, never
    /// read, answer 503 too rather than 401.
    @Test func withoutTheStoreTokensVerifyAndNothingIsIssued() async throws {
        let store = try await TestPostgres.database()
        let instances = try await startInstances(.userTrading, count: 1, prefix: "nostore")
        let a = try await Self.node("node-a", store: store, instances: instances)
        #expect(try await Self.post(a, "/api/v1/auth/register", #"{"username":"alice","password":"correct-horse-battery"}"#).status == 201)
        let session = try await Self.login(a)

        let nowhere = PostgresURL(host: "127.0.0.1", port: try TestPostgres.freePort(), user: "redfire", database: "nowhere")
        let x = try await GatewayHarness.start(Self.config("node-x", store: nowhere, instances: instances))
        await waitUntil("X knows the store is unreachable") { x.control.cluster?.isKnownUnreachable == true }
        #expect(try await Self.status(x, bearer: session.access) == 200)
        for (path, body) in [("/api/v1/auth/login", #"{"username":"alice","password":"correct-horse-battery"}"#),
                             ("/api/v1/auth/refresh", #"{"refresh_token":"\#(session.refresh)"}"#)] {
            let reply = try await Self.post(x, path, body)
            #expect(reply.status == 503 && reply.errorCode == "auth_unavailable", "\(path): \(reply.body)")
            #expect(reply.headers.first(name: "Retry-After") != nil)
            #expect(reply.body.contains("\"request_id\""))
        }
        let logout = try await Self.post(x, "/api/v1/auth/logout", "{}", token: session.access)
        #expect(logout.status == 503 && logout.errorCode == "auth_unavailable", "\(logout.body)")
        let keyed = try await x.send("/api/v1/trading/orders", headers: [("X-API-Key", "rf_000000000000_" + String(repeating: "A", count: 43))])
        #expect(keyed.status == 503 && keyed.errorCode == "auth_unavailable", "\(keyed.body)")
        // The session is still alive: nothing was revoked where it could not be stored.
        #expect(try await Self.status(a, bearer: session.access) == 200)
    }
}
