import Foundation
import Testing

@testable import RedFireGateway

/// The user store on a real SQLite file.
@Suite("User store")
struct UserStoreTests {
    static func store() throws -> UserStore {
        let path = TemporaryPath.make("redfire-users", "/auth.sqlite")
        // Cost 4 keeps the suite fast; production defaults to 12.
        return try UserStore(path: path, bcryptCost: 4)
    }

    @Test func addAuthenticateAndNeverExposeTheHash() async throws {
        let users = try Self.store()
        let alice = try await users.addUser(username: "alice", password: "correct-horse-battery", email: "alice@example.com", roles: ["trader"])
        #expect(alice.roles == ["trader"])
        #expect(try await users.authenticate(username: "alice", password: "correct-horse-battery")?.id == alice.id)
        #expect(try await users.authenticate(username: "alice", password: "wrong-password-1") == nil)
        #expect(try await users.authenticate(username: "nobody", password: "correct-horse-battery") == nil)
        // Usernames compare without case; the hash is bcrypt, never the password.
        #expect(try await users.user(named: "ALICE")?.id == alice.id)
        let stored = try await users.database.read { db in try String.fetchOne(db, sql: "SELECT password_hash FROM users") }
        #expect(stored?.hasPrefix("$2") == true)
        #expect(stored?.contains("correct-horse") == false)
    }

    @Test func takenUsernameAndWeakInputAreRefusedWithFieldProblems() async throws {
        let users = try Self.store()
        try await users.addUser(username: "alice", password: "correct-horse-battery")
        await #expect(throws: UserStoreError.usernameTaken("Alice")) {
            try await users.addUser(username: "Alice", password: "another-good-one")
        }
        do {
            try await users.addUser(username: "b", password: "short", email: "not-an-email")
            Issue.record("accepted weak input")
        } catch let UserStoreError.invalid(problems) {
            #expect(Set(problems.map(\.field)) == ["username", "password", "email"])
        }
        await #expect(throws: UserStoreError.self) { try await users.addUser(username: "carol", password: "carolcarol") }
        await #expect(throws: UserStoreError.self) { try await users.addUser(username: "dave", password: "aaaaaaaaaaaa") }
    }

    @Test func disabledUsersCannotAuthenticateAndPasswordsChange() async throws {
        let users = try Self.store()
        try await users.addUser(username: "alice", password: "correct-horse-battery")
        try await users.setDisabled("alice", true)
        #expect(try await users.authenticate(username: "alice", password: "correct-horse-battery") == nil)
        try await users.setDisabled("alice", false)
        try await users.setPassword("alice", "a-brand-new-secret")
        #expect(try await users.authenticate(username: "alice", password: "correct-horse-battery") == nil)
        #expect(try await users.authenticate(username: "alice", password: "a-brand-new-secret") != nil)
        await #expect(throws: UserStoreError.noSuchUser("zed")) { try await users.setDisabled("zed", true) }
    }

    @Test func rolesGrantPermissionsThroughConfig() async throws {
        let users = try Self.store()
        try await users.addUser(username: "alice", password: "correct-horse-battery", roles: ["trader"])
        try await users.grant("alice", role: "admin")
        try await users.grant("alice", role: "admin")  // idempotent
        #expect(try await users.user(named: "alice")?.roles == ["admin", "trader"])
        try await users.revoke("alice", role: "trader")
        #expect(try await users.user(named: "alice")?.roles == ["admin"])
        var auth = AuthConfig()
        auth.roles = ["trader": ["trading:read", "trading:write"], "admin": ["gateway:admin", "trading:read"]]
        #expect(auth.permissions(of: ["trader", "admin", "ghost"]) == ["gateway:admin", "trading:read", "trading:write"])
    }

    @Test func theStoreSurvivesReopeningAndMigratesOnce() async throws {
        let first = try Self.store()
        try await first.addUser(username: "alice", password: "correct-horse-battery")
        let second = try UserStore(path: first.path, bcryptCost: 4)
        #expect(try await second.users().map(\.username) == ["alice"])
    }

    @Test func authSectionIsReadAndChecked() throws {
        let base = ConfigTests.minimalYAML
        let config = try GatewayConfig.parse(yaml: base + """
        auth:
          bcrypt_cost: 10
          roles:
            trader: [trading:read, trading:write]
            admin: ["gateway:admin", "trading:*"]
        """, environment: [:])
        #expect(config.auth.bcryptCost == 10)
        #expect(config.auth.roles["admin"] == ["gateway:admin", "trading:*"])
        #expect(config.auth.databasePath(dataDirectory: "/srv/gw") == "/srv/gw/auth.sqlite")
        let error = #expect(throws: ConfigError.self) {
            try GatewayConfig.parse(yaml: base + "auth: {bcrypt_cost: 40, roles: {trader: [trading]}}", environment: [:])
        }
        let text = error?.description ?? ""
        #expect(text.contains("auth.bcrypt_cost"))
        #expect(text.contains("\"trading\" is not a permission"))
    }
}
