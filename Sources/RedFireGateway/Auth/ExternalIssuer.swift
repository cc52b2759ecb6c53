import AsyncHTTPClient
import Crypto
import CryptoExtras
import Foundation
import JWTKit
import Logging
import ServiceLifecycle
import Synchronization

/// One external issuer's key set: fetched at start and every `refresh_interval`, and again (at most
/// once per `min_refetch_interval`, one fetch shared by all waiting requests) when a token names a
/// `kid` it does not have. `jku`/`x5u` in tokens are never followed: keys come only from the configured URL.
final class ExternalIssuer: Service, Sendable {
    let config: ExternalIssuerConfig
    let logger: Logger
    private struct State {
        /// nil until a fetch has succeeded.
        var keys: [String: VerificationKey]?
        /// The last fetch triggered by an unknown `kid` (background refreshes do not count).
        var lastOnDemand: ContinuousClock.Instant?
        var inFlight: Task<Void, Never>?
    }
    private let state = Mutex(State())
    private let fetchCounter = Atomic<Int>(0)

    init(config: ExternalIssuerConfig, logger: Logger) {
        self.config = config
        self.logger = logger
    }

    var keys: [String: VerificationKey]? { state.withLock { $0.keys } }
    var fetchCount: Int { fetchCounter.load(ordering: .relaxed) }

    /// Refetches unless the last on-demand fetch was too recent; concurrent callers share one fetch,
    /// and a request arriving while any fetch runs (the first one at start included) waits for it.
    func refetchIfAllowed() async {
        await sharedFetch(onDemand: true)?.value
    }

    /// The fetch in flight, or a new one (nil when an on-demand fetch is not allowed yet).
    private func sharedFetch(onDemand: Bool) -> Task<Void, Never>? {
        state.withLock { state in
            if let running = state.inFlight { return running }
            if onDemand {
                if let last = state.lastOnDemand, ContinuousClock.now - last < config.minRefetchInterval { return nil }
                state.lastOnDemand = .now
            }
            let task = Task { await self.fetch() }
            state.inFlight = task
            return task
        }
    }

    /// Fetches the key set; on failure the previous keys stay in use. Runs as the shared fetch.
    private func fetch() async {
        fetchCounter.add(1, ordering: .relaxed)
        defer { state.withLock { $0.inFlight = nil } }
        do {
            guard config.jwksURLIsAcceptable else { throw FetchError(reason: "jwks_url must be https:// (http:// only on a loopback address with allow_http_loopback)") }
            var request = HTTPClientRequest(url: config.jwksURL)
            request.headers.add(name: "Accept", value: "application/json")
            let response = try await Self.client.execute(request, timeout: .seconds(3))
            let body = try await response.body.collect(upTo: 1 << 20)
            guard response.status == .ok else { throw FetchError(reason: "HTTP \(response.status.code)") }
            let set = try JSONDecoder().decode(JWKS.self, from: Data(buffer: body))
            let keys = Self.verificationKeys(set)
            guard !keys.isEmpty else { throw FetchError(reason: "no usable key (RS256, ES256 on P-256, EdDSA on Ed25519, each with a kid)") }
            state.withLock { $0.keys = keys }
            logger.debug("fetched JWKS", metadata: ["issuer": .string(config.issuer), "keys": .stringConvertible(keys.count)])
        } catch {
            logger.warning("cannot fetch the JWKS of an external issuer; its tokens are refused with 503 until a fetch succeeds",
                           metadata: ["issuer": .string(config.issuer), "jwks_url": .string(config.jwksURL), "error": .string("\(error)")])
        }
    }

    /// The client key sets are fetched with: never `HTTPClient.shared`, which follows up to 20 redirects,
    /// https→http included — a redirect could hand the gateway an attacker's keys. No redirects, no
    /// decompression, bounded time. One for the process (it lives as long as the process, so it needs
    /// no shutdown).
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(3), read: .seconds(3)),
                                                     decompression: .disabled)
        configuration.tracing.tracer = nil
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    struct FetchError: Error, CustomStringConvertible {
        var reason: String
        var description: String { reason }
    }

    /// The keys of a JWKS that the gateway can use; others are skipped.
    static func verificationKeys(_ set: JWKS) -> [String: VerificationKey] {
        var result: [String: VerificationKey] = [:]
        for jwk in set.keys {
            guard let kid = jwk.keyIdentifier?.string else { continue }
            let algorithm = jwk.algorithm?.rawValue
            switch jwk.keyType.rawValue {
            case "RSA":
                guard algorithm == nil || algorithm == "RS256", let n = jwk.modulus.flatMap({ Base64URL.decode($0.utf8) }),
                      let e = jwk.exponent.flatMap({ Base64URL.decode($0.utf8) }),
                      let key = try? _RSA.Signing.PublicKey(n: n, e: e) else { continue }
                result[kid] = .rsa(key)
            case "EC":
                guard algorithm == nil || algorithm == "ES256", jwk.curve?.rawValue == "P-256",
                      let x = jwk.x.flatMap({ Base64URL.decode($0.utf8) }), let y = jwk.y.flatMap({ Base64URL.decode($0.utf8) }),
                      x.count == 32, y.count == 32,
                      let key = try? P256.Signing.PublicKey(x963Representation: [4] + x + y) else { continue }
                result[kid] = .p256(key)
            case "OKP":
                guard algorithm == nil || algorithm == "EdDSA", jwk.curve?.rawValue == "Ed25519",
                      let x = jwk.x.flatMap({ Base64URL.decode($0.utf8) }),
                      let key = try? Curve25519.Signing.PublicKey(rawRepresentation: x) else { continue }
                result[kid] = .ed25519(key)
            default:
                continue
            }
        }
        return result
    }

    /// Fetches at start, then every `refresh_interval` (every 5 s while no fetch has succeeded).
    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            await sharedFetch(onDemand: false)?.value
            let wait = keys == nil ? .seconds(5) : config.refreshInterval
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: wait) }
        }
    }
}
