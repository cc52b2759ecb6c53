import Crypto
import Foundation
import GRDB
import ServiceLifecycle
import Synchronization

/// A usable key, as held in memory for the request path.
struct ActiveAPIKey: Sendable {
    var id: String
    var hash: String
    var expiresAt: Date?
    var userID: String
    var name: String
    var roles: [String]
    /// A service account's permissions; nil for a user's key (derived from roles).
    var ownPermissions: [String]?
}

/// The usable keys in memory, reloaded from the store every couple of seconds (so `keys create` and
/// `keys revoke` in another process take effect without a restart). Checking a key is a dictionary
/// lookup and one SHA-256 — no database access on the request path.
final class APIKeyCache: Service, Sendable {
    private let keys = Mutex<[String: ActiveAPIKey]>([:])
    let store: UserStore
    let config: AuthConfig
    private let reloadHook = Mutex<(@Sendable () async throws -> Void)?>(nil)
    /// Runs after each periodic reload: the auth service reads user cutoffs with it.
    var onReload: (@Sendable () async throws -> Void)? {
        get { reloadHook.withLock { $0 } }
        set { reloadHook.withLock { $0 = newValue } }
    }

    init(store: UserStore, config: AuthConfig) {
        self.store = store
        self.config = config
    }

    func reload() async throws {
        let active = try await store.activeAPIKeys()
        let byID = Dictionary(active.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        keys.withLock { $0 = byID }
    }

    /// Reloads every two seconds until the gateway shuts down.
    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(2)) }
            guard !Task.isShuttingDownGracefully && !Task.isCancelled else { break }
            try? await reload()
            try? await onReload?()
        }
    }

    /// The identity of a valid key; nil for a malformed, unknown, revoked or expired one.
    func identity(for presented: String) -> Identity? {
        let parts = presented.split(separator: "_", maxSplits: 2, omittingEmptySubsequences: false)
        guard presented.utf8.count <= 128, parts.count == 3, parts[0] == "rf" else { return nil }
        guard let key = keys.withLock({ $0[String(parts[1])] }) else { return nil }
        let hash = UserStore.tokenHash(presented)
        guard ConstantTime.equals(hash, key.hash) else { return nil }
        if let expiresAt = key.expiresAt, expiresAt <= Date() { return nil }
        let permissions = key.ownPermissions?.sorted() ?? config.permissions(of: key.roles)
        return Identity(userID: key.userID, username: key.name, roles: key.roles, permissions: permissions,
                        tokenID: "key:\(key.id)", session: "", expiresAt: key.expiresAt ?? .distantFuture)
    }
}
