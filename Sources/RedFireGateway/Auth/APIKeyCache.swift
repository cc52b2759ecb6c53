import Crypto
import Foundation
import Logging
import GRDB
import ServiceLifecycle
import Synchronization

/// A usable key, as held in memory for the request path.
package struct ActiveAPIKey: Sendable {
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
    private let loaded = Atomic<Bool>(false)
    private let reloading = Mutex<(running: Bool, again: Bool)>((false, false))
    private let logger = Logger(label: "redfire.auth")
    let store: any CredentialStore
    let config: AuthConfig
    private let reloadHook = Mutex<(@Sendable () async throws -> Void)?>(nil)
    /// Runs after each periodic reload: the auth service reads user cutoffs with it.
    var onReload: (@Sendable () async throws -> Void)? {
        get { reloadHook.withLock { $0 } }
        set { reloadHook.withLock { $0 = newValue } }
    }

    init(store: any CredentialStore, config: AuthConfig) {
        self.store = store
        self.config = config
    }

    package func reload() async throws {
        let active = try await store.activeAPIKeys()
        let byID = Dictionary(active.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        keys.withLock { $0 = byID }
        loaded.store(true, ordering: .releasing)
    }

    /// Reloads in the background (a cluster event said keys changed); requests that come while one
    /// runs fold into one more reload after it.
    package func reloadSoon() {
        let start = reloading.withLock { state -> Bool in
            if state.running { state.again = true; return false }
            state.running = true
            return true
        }
        guard start else { return }
        Task {
            while true {
                do { try await reload() } catch { logger.warning("cannot reload API keys", metadata: ["error": .string("\(error)")]) }
                let again = reloading.withLock { state -> Bool in
                    if state.again { state.again = false; return true }
                    state.running = false
                    return false
                }
                if !again { return }
            }
        }
    }

    /// Whether the keys were read at least once (the cluster's store may be unreachable at start: an
    /// unknown key then means "cannot tell", 503, not "invalid", 401).
    var isLoaded: Bool { loaded.load(ordering: .acquiring) }

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
        let hash = CredentialRules.tokenHash(presented)
        guard ConstantTime.equals(hash, key.hash) else { return nil }
        if let expiresAt = key.expiresAt, expiresAt <= Date() { return nil }
        let permissions = key.ownPermissions?.sorted() ?? config.permissions(of: key.roles)
        return Identity(userID: key.userID, username: key.name, roles: key.roles, permissions: permissions,
                        tokenID: "key:\(key.id)", session: "", expiresAt: key.expiresAt ?? .distantFuture)
    }
}
