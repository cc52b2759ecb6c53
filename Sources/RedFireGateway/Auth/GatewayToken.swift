import HTTPTypes
import Crypto
import Foundation
import Synchronization

/// Mints `X-Gateway-Token`: a short-lived JWT, signed with the gateway's own P-256 key (ES256), whose
/// `aud` is the service the request goes to. A service verifies it with the package key from
/// `/gateway/jwks.json` and so knows the call came through the gateway (and for whom), whatever
/// reached its port. See `docs/service-integration.md`.
///
/// Tokens are cached per service and caller and reused for the first half of their lifetime, so the
/// signature is not computed per request.
final class GatewayTokenIssuer: Sendable {
    let key: P256.Signing.PrivateKey
    /// RFC 7638 thumbprint of the package key: stable across restarts, new with a new key.
    let keyID: String
    let issuer: String
    let lifetime: Duration

    struct Claims: Encodable {
        var iss: String
        var aud: String
        var sub: String?
        var name: String?
        var roles: [String]?
        var iat: NumericDate
        var exp: NumericDate
        var typ = "gateway"
    }

    private struct CacheKey: Hashable {
        var service: String
        var tokenID: String?
    }

    private struct Cached {
        /// `X-Gateway-Token` with the token: its value checked once, when minted, not per request.
        var field: HTTPField
        var renewAt: TimeInterval
    }

    /// Minted tokens per service and caller, reused for the first half of their lifetime.
    private let cache = ShardedCache<CacheKey, Cached>()

    init(key: P256.Signing.PrivateKey, issuer: String, lifetime: Duration) {
        self.key = key
        self.issuer = issuer
        self.lifetime = lifetime
        self.keyID = Self.thumbprint(key.publicKey)
    }

    /// Loads the key from `path`, creating it (mode 0600) on first start; in memory only without a path.
    static func loadOrCreateKey(path: String?) throws -> P256.Signing.PrivateKey {
        guard let path else { return P256.Signing.PrivateKey() }
        if let data = FileManager.default.contents(atPath: path) {
            return try P256.Signing.PrivateKey(pemRepresentation: String(decoding: data, as: UTF8.self))
        }
        let key = P256.Signing.PrivateKey()
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        guard FileManager.default.createFile(atPath: path, contents: Data(key.pemRepresentation.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw CocoaError(.fileWriteUnknown)
        }
        return key
    }

    /// `X-Gateway-Token` for a request to `service` on behalf of `identity` (anonymous on package paths).
    func field(service: String, identity: Identity?) -> HTTPField {
        let now = Date().timeIntervalSince1970
        let cacheKey = CacheKey(service: service, tokenID: identity?.tokenID)
        if let cached = cache[cacheKey], cached.renewAt > now { return cached.field }
        let seconds = Double(lifetime.components.seconds)
        let claims = Claims(iss: issuer, aud: service, sub: identity?.userID, name: identity?.username, roles: identity?.roles,
                            iat: NumericDate(seconds: now.rounded(.down)), exp: NumericDate(seconds: (now + seconds).rounded(.down)))
        // Signing a fixed, small payload with a valid key cannot fail; an empty token is refused by services.
        let token = (try? JWS.sign(payload: claims, key: .p256(key), keyID: keyID)) ?? ""
        let field = HTTPField(name: .gatewayToken, value: token)
        cache.set(Cached(field: field, renewAt: now + seconds / 2), for: cacheKey)
        return field
    }

    /// The package key as a JWK.
    var jwk: [String: String] {
        VerificationKey.p256(key.publicKey).jwk(keyID: keyID) ?? [:]
    }

    /// RFC 7638 JWK thumbprint (SHA-256, base64url) of a P-256 package key.
    static func thumbprint(_ key: P256.Signing.PublicKey) -> String {
        let point = Array(key.x963Representation)
        let x = Base64URL.encode(Array(point[1..<33]))
        let y = Base64URL.encode(Array(point[33..<65]))
        let canonical = #"{"crv":"P-256","kty":"EC","x":"\#(x)","y":"\#(y)"}"#
        return Base64URL.encode(Array(SHA256.hash(data: Array(canonical.utf8))))
    }
}
