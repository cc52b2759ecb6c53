import Crypto
import CryptoExtras
import Foundation

/// The signature algorithms the gateway signs and verifies tokens with (RFC 7518 names).
public enum JWSAlgorithm: String, Sendable, CaseIterable {
    case hs256 = "HS256"
    case rs256 = "RS256"
    case es256 = "ES256"
    case eddsa = "EdDSA"
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

    func isValid(signature: [UInt8], for signingInput: Substring.UTF8View) -> Bool {
        let data = Array(signingInput)
        switch self {
        case .hmac(let key):
            return HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: data, using: key)
        case .rsa(let key):
            return key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: data, padding: .insecurePKCS1v1_5)
        case .p256(let key):
            guard signature.count == 64, let parsed = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return key.isValidSignature(parsed, for: data)
        case .ed25519(let key):
            return key.isValidSignature(signature, for: data)
        }
    }

    /// The public JWK (RFC 7517) of an asymmetric key; nil for HMAC secrets, which are never published.
    func jwk(keyID: String) -> [String: String]? {
        var jwk = ["kid": keyID, "alg": algorithm.rawValue, "use": "sig"]
        switch self {
        case .hmac:
            return nil
        case .rsa(let key):
            guard let primitives = try? key.getKeyPrimitives() else { return nil }
            jwk["kty"] = "RSA"
            jwk["n"] = Base64URL.encode(Array(primitives.modulus))
            jwk["e"] = Base64URL.encode(Array(primitives.publicExponent))
        case .p256(let key):
            let point = Array(key.x963Representation)  // 0x04 || X || Y
            jwk["kty"] = "EC"
            jwk["crv"] = "P-256"
            jwk["x"] = Base64URL.encode(Array(point[1..<33]))
            jwk["y"] = Base64URL.encode(Array(point[33..<65]))
        case .ed25519(let key):
            jwk["kty"] = "OKP"
            jwk["crv"] = "Ed25519"
            jwk["x"] = Base64URL.encode(Array(key.rawRepresentation))
        }
        return jwk
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

    func sign(_ signingInput: [UInt8]) throws -> [UInt8] {
        switch self {
        case .hmac(let key):
            return Array(HMAC<SHA256>.authenticationCode(for: signingInput, using: key))
        case .rsa(let key):
            return Array(try key.signature(for: signingInput, padding: .insecurePKCS1v1_5).rawRepresentation)
        case .p256(let key):
            return Array(try key.signature(for: signingInput).rawRepresentation)
        case .ed25519(let key):
            return Array(try key.signature(for: signingInput))
        }
    }
}

/// Compact JWS (RFC 7515) signing and verification for the gateway's tokens. Verification is
/// synchronous and allocation-light, so it runs on the request path without an actor hop, and strict
/// (RFC 8725): the size is checked before any decoding, the header must name a configured `kid` and
/// exactly that key's algorithm, `crit` is refused, and `jku`/`x5u`/`jwk`/`x5c` are never read.
enum JWS {
    /// Tokens longer than this are refused before any decoding or crypto.
    static let maxTokenBytes = 8 * 1024

    enum Failure: Error, Equatable {
        case oversized
        case malformed
        /// No configured key has the header's `kid`.
        case unknownKey(String?)
        /// The header names another algorithm than the key's.
        case algorithmMismatch
        case badSignature
    }

    struct Header: Decodable {
        var alg: String
        var kid: String?
        var crit: [String]?
    }

    struct SignedHeader: Encodable {
        var alg: String
        var kid: String
        var typ: String
    }

    /// Verifies the token's signature against `keys` (by `kid`) and returns the decoded payload bytes.
    static func verify(_ token: String, keys: [String: VerificationKey]) throws(Failure) -> [UInt8] {
        let utf8 = token.utf8
        guard utf8.count <= maxTokenBytes else { throw .oversized }
        guard let firstDot = utf8.firstIndex(of: UInt8(ascii: ".")) else { throw .malformed }
        let rest = utf8[utf8.index(after: firstDot)...]
        guard let secondDot = rest.firstIndex(of: UInt8(ascii: ".")) else { throw .malformed }
        let signaturePart = utf8[utf8.index(after: secondDot)...]
        guard !signaturePart.contains(UInt8(ascii: ".")) else { throw .malformed }
        guard let headerBytes = Base64URL.decode(utf8[..<firstDot]), !JSONMembers.hasDuplicates(headerBytes),
              let header = try? APIJSON.decoder.decode(Header.self, from: Data(headerBytes)) else { throw .malformed }
        guard header.crit == nil else { throw .malformed }
        guard let kid = header.kid, let key = keys[kid] else { throw .unknownKey(header.kid) }
        guard header.alg == key.algorithm.rawValue else { throw .algorithmMismatch }
        guard let signature = Base64URL.decode(signaturePart), !signature.isEmpty else { throw .malformed }
        let signingInput = token[..<secondDot].utf8
        guard key.isValid(signature: signature, for: Substring(signingInput).utf8) else { throw .badSignature }
        // RFC 7519 §4 / RFC 7515 §5.2: a JSON object with a member twice is refused — parsers disagree
        // on which one wins, so what the gateway checked may not be what a service reads.
        guard let payload = Base64URL.decode(rest[..<secondDot]), !JSONMembers.hasDuplicates(payload) else { throw .malformed }
        return payload
    }

    /// The header's `kid` without verifying anything (to decide which key set to consult).
    static func unverifiedKeyID(_ token: String) -> String? {
        let utf8 = token.utf8
        guard utf8.count <= maxTokenBytes, let dot = utf8.firstIndex(of: UInt8(ascii: ".")),
              let bytes = Base64URL.decode(utf8[..<dot]),
              let header = try? APIJSON.decoder.decode(Header.self, from: Data(bytes)) else { return nil }
        return header.kid
    }

    /// Signs `payload` (already JSON) as a compact JWS with `kid` and `typ` in the header.
    static func sign(payload: some Encodable, key: SigningKey, keyID: String, type: String = "JWT") throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let header = try encoder.encode(SignedHeader(alg: key.algorithm.rawValue, kid: keyID, typ: type))
        let body = try encoder.encode(payload)
        let signingInput = Base64URL.encode(Array(header)) + "." + Base64URL.encode(Array(body))
        let signature = try key.sign(Array(signingInput.utf8))
        return signingInput + "." + Base64URL.encode(signature)
    }
}

/// Unpadded base64url (RFC 4648 §5), as JWS uses it. Decoding refuses padding, whitespace and any
/// other character, and non-canonical trailing bits.
enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    private static let table: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (value, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(value) }
        return table
    }()

    static func encode(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count * 4 + 2) / 3)
        var index = 0
        while index + 3 <= bytes.count {
            let value = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            output.append(alphabet[Int(value >> 18 & 63)])
            output.append(alphabet[Int(value >> 12 & 63)])
            output.append(alphabet[Int(value >> 6 & 63)])
            output.append(alphabet[Int(value & 63)])
            index += 3
        }
        let remaining = bytes.count - index
        if remaining == 1 {
            let value = UInt32(bytes[index]) << 16
            output.append(alphabet[Int(value >> 18 & 63)])
            output.append(alphabet[Int(value >> 12 & 63)])
        } else if remaining == 2 {
            let value = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8
            output.append(alphabet[Int(value >> 18 & 63)])
            output.append(alphabet[Int(value >> 12 & 63)])
            output.append(alphabet[Int(value >> 6 & 63)])
        }
        return String(decoding: output, as: UTF8.self)
    }

    static func decode<Bytes: Collection<UInt8>>(_ text: Bytes) -> [UInt8]? {
        guard text.count % 4 != 1 else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(text.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        for byte in text {
            let value = table[Int(byte)]
            guard value != 0xFF else { return nil }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        // Leftover bits must be zero (canonical encoding).
        guard accumulator & ((1 << UInt32(bits)) - 1) == 0 else { return nil }
        return output
    }

    static func encode(_ text: String) -> String { encode(Array(text.utf8)) }
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

/// Finds objects with a member name twice in a JSON text (at any depth), comparing names after their
/// escapes are decoded (`"a"` and `"\u0061"` are the same member). Text that is not JSON is left to the
/// decoder to refuse.
enum JSONMembers {
    static func hasDuplicates(_ bytes: [UInt8]) -> Bool {
        var index = 0
        /// Member names seen per open object; nil entries for arrays.
        var stack: [Set<[UInt8]>?] = []
        var expectingName = false
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "{"):
                stack.append([])
                expectingName = true
                index += 1
            case UInt8(ascii: "["):
                stack.append(nil)
                expectingName = false
                index += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                if !stack.isEmpty { stack.removeLast() }
                expectingName = false
                index += 1
            case UInt8(ascii: ","):
                expectingName = stack.last.map { $0 != nil } ?? false
                index += 1
            case UInt8(ascii: "\""):
                guard let (name, end) = string(bytes, from: index) else { return false }
                if expectingName, var names = stack.last ?? nil {
                    if !names.insert(name).inserted { return true }
                    stack[stack.count - 1] = names
                }
                expectingName = false
                index = end
            default:
                index += 1
            }
        }
        return false
    }

    /// The decoded content of the string starting at `start` (a quote) and the index after it.
    private static func string(_ bytes: [UInt8], from start: Int) -> ([UInt8], Int)? {
        var result: [UInt8] = []
        var index = start + 1
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") { return (result, index + 1) }
            guard byte == UInt8(ascii: "\\") else {
                result.append(byte)
                index += 1
                continue
            }
            guard index + 1 < bytes.count else { return nil }
            switch bytes[index + 1] {
            case UInt8(ascii: "n"): result.append(0x0A)
            case UInt8(ascii: "r"): result.append(0x0D)
            case UInt8(ascii: "t"): result.append(0x09)
            case UInt8(ascii: "b"): result.append(0x08)
            case UInt8(ascii: "f"): result.append(0x0C)
            case UInt8(ascii: "u"):
                guard index + 5 < bytes.count, let unit = UInt16(String(decoding: bytes[(index + 2)...(index + 5)], as: UTF8.self), radix: 16) else { return nil }
                if let scalar = Unicode.Scalar(unit) {
                    result.append(contentsOf: Array(String(Character(scalar)).utf8))
                } else {
                    // A surrogate half: kept as its code unit, apart from any real text.
                    result.append(contentsOf: [0xFF, UInt8(unit >> 8), UInt8(unit & 0xFF)])
                }
                index += 6
                continue
            default: result.append(bytes[index + 1])
            }
            index += 2
        }
        return nil
    }
}
