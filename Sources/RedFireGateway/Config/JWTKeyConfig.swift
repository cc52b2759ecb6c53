import Crypto
import CryptoExtras

/// The signature algorithms the gateway signs and verifies tokens with (RFC 7518 names).
public enum JWSAlgorithm: String, Sendable, CaseIterable {
    case hs256 = "HS256"
    case rs256 = "RS256"
    case es256 = "ES256"
    case eddsa = "EdDSA"
}

/// Key material from the configuration: an HS256 secret, or a PEM key for RS256 / ES256 / EdDSA.
public struct JWTKeyConfig: Sendable, Equatable {
    /// `key_id` — the `kid` tokens carry.
    public var keyID: String
    public var algorithm: JWSAlgorithm
    /// The secret (HS256) or the PEM text of the key.
    public var material: String

    public init(keyID: String, algorithm: JWSAlgorithm, material: String) {
        self.keyID = keyID
        self.algorithm = algorithm
        self.material = material
    }

    public enum Problem: Error, CustomStringConvertible {
        case shortSecret
        case badKey(String)

        public var description: String {
            switch self {
            case .shortSecret: return "an HS256 secret must be at least 32 bytes"
            case .badKey(let expected): return "not a PEM \(expected)"
            }
        }
    }

    /// The key that signs (a private key, or the secret).
    public func signingKey() throws(Problem) -> SigningKey {
        do {
            switch algorithm {
            case .hs256:
                guard material.utf8.count >= 32 else { throw Problem.shortSecret }
                return .hmac(SymmetricKey(data: Array(material.utf8)))
            case .rs256: return .rsa(try _RSA.Signing.PrivateKey(pemRepresentation: material))
            case .es256: return .p256(try P256.Signing.PrivateKey(pemRepresentation: material))
            case .eddsa: return .ed25519(try Curve25519.Signing.PrivateKey(pemRepresentation: material))
            }
        } catch let problem as Problem {
            throw problem
        } catch {
            throw .badKey(algorithm == .rs256 ? "RSA private key of at least 2048 bits" : algorithm == .es256 ? "P-256 private key" : "Ed25519 private key")
        }
    }

    /// The key that verifies: a public key, or the public half of a private key, or the secret.
    public func verificationKey() throws(Problem) -> VerificationKey {
        if algorithm == .hs256 { return try signingKey().verificationKey }
        switch algorithm {
        case .rs256: if let key = try? _RSA.Signing.PublicKey(pemRepresentation: material) { return .rsa(key) }
        case .es256: if let key = try? P256.Signing.PublicKey(pemRepresentation: material) { return .p256(key) }
        case .eddsa: if let key = try? Curve25519.Signing.PublicKey(pemRepresentation: material) { return .ed25519(key) }
        case .hs256: break
        }
        do {
            return try signingKey().verificationKey
        } catch {
            throw .badKey(algorithm == .rs256 ? "RSA key of at least 2048 bits" : algorithm == .es256 ? "P-256 key" : "Ed25519 key")
        }
    }
}

/// A key that checks signatures. Each key has exactly one algorithm: a token is only ever verified
/// with the algorithm its key was configured for, whatever its header says (no HS/RS confusion).
public enum VerificationKey: Sendable {
    case hmac(SymmetricKey)
    case rsa(_RSA.Signing.PublicKey)
    case p256(P256.Signing.PublicKey)
    case ed25519(Curve25519.Signing.PublicKey)

    public var algorithm: JWSAlgorithm {
        switch self {
        case .hmac: return .hs256
        case .rsa: return .rs256
        case .p256: return .es256
        case .ed25519: return .eddsa
        }
    }
}

/// A key that signs tokens.
public enum SigningKey: Sendable {
    case hmac(SymmetricKey)
    case rsa(_RSA.Signing.PrivateKey)
    case p256(P256.Signing.PrivateKey)
    case ed25519(Curve25519.Signing.PrivateKey)

    public var algorithm: JWSAlgorithm { verificationKey.algorithm }

    /// The key that verifies this key's signatures.
    public var verificationKey: VerificationKey {
        switch self {
        case .hmac(let key): return .hmac(key)
        case .rsa(let key): return .rsa(key.publicKey)
        case .p256(let key): return .p256(key.publicKey)
        case .ed25519(let key): return .ed25519(key.publicKey)
        }
    }
}
