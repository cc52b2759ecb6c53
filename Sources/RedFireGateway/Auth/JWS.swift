import Crypto
import CryptoExtras
import Foundation

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

extension VerificationKey {
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

extension SigningKey {
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
