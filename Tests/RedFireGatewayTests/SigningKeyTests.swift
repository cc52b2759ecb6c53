import Crypto
import CryptoExtras
import Foundation
import JWTKit
import NIOCore
import Testing

@testable import RedFireGateway

/// Access tokens signed with RS256, ES256 or EdDSA key files, several verification keys at once for
/// rotation, and the algorithm pinned to each key.
@Suite("Signing and verification keys", .cleansUp, .timeLimit(.minutes(2)))
struct SigningKeyTests {
    static func directory() throws -> String {
        let path = TemporaryPath.make("redfire-keys")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func write(_ text: String, _ name: String, in directory: String) throws {
        try text.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8)
    }

    @Test func configReadsKeyFilesRelativeToTheConfigAndReportsBadOnes() throws {
        let directory = try Self.directory()
        let es = P256.Signing.PrivateKey()
        let rsa = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        try Self.write(es.pemRepresentation, "access.pem", in: directory)
        try Self.write(rsa.publicKey.pemRepresentation, "old-rsa.pub.pem", in: directory)
        try Self.write("not a key", "garbage.pem", in: directory)
        try Self.write("""
        services: {svc: {instances: [{url: "http://127.0.0.1:9000"}]}}
        routes: [{prefix: /api, service: svc}]
        auth:
          signing_key: {algorithm: ES256, key_id: k2, key_file: access.pem}
          verification_keys:
            - {algorithm: RS256, key_id: k0, key_file: old-rsa.pub.pem}
            - {algorithm: HS256, key_id: k1, secret: "an-old-secret-that-is-long-enough-0123"}
        """, "gateway.yaml", in: directory)
        let config = try GatewayConfig.load(path: directory + "/gateway.yaml")
        #expect(config.auth.isEnabled)
        #expect(config.auth.signingKey?.algorithm == .es256)
        #expect(config.auth.verificationKeys.map(\.keyID) == ["k0", "k1"])

        try Self.write("""
        services: {svc: {instances: [{url: "http://127.0.0.1:9000"}]}}
        routes: [{prefix: /api, service: svc}]
        auth:
          signing_key: {algorithm: RS256, key_id: k2, key_file: old-rsa.pub.pem}
          verification_keys:
            - {algorithm: ES256, key_id: k3, key_file: garbage.pem}
            - {algorithm: HS256, key_id: k4, secret: short}
            - {algorithm: PS256, key_id: k5, key_file: access.pem}
        """, "bad.yaml", in: directory)
        #expect {
            try GatewayConfig.load(path: directory + "/bad.yaml")
        } throws: { error in
            let text = (error as? ConfigError)?.description ?? ""
            return text.contains("auth.signing_key.key_file") && text.contains("RSA private key")
                && text.contains("auth.verification_keys[0].key_file") && text.contains("P-256")
                && text.contains("auth.verification_keys[1].secret") && text.contains("32 bytes")
                && text.contains("auth.verification_keys[2].algorithm")
        }
    }

    struct Claims: JWTPayload {
        var sub: SubjectClaim
        var name: String
        var roles: [String]
        var permissions: [String]
        var iat: IssuedAtClaim
        var nbf: NotBeforeClaim
        var exp: ExpirationClaim
        var iss: IssuerClaim
        var aud: AudienceClaim
        var jti: IDClaim
        var typ: String
        var sid: String
        func verify(using algorithm: some JWTAlgorithm) async throws { try exp.verifyNotExpired() }

        static func valid() -> Claims {
            let now = Date()
            return Claims(sub: "1", name: "alice", roles: [], permissions: [], iat: .init(value: now), nbf: .init(value: now),
                          exp: .init(value: now.addingTimeInterval(300)), iss: "redfire-gateway", aud: .init(value: ["redfire-api"]),
                          jti: .init(value: UUID().uuidString), typ: "access", sid: "s")
        }
    }

    @Test func everyAlgorithmVerifiesOnlyWithItsOwnKeyAndRotationKeepsOldTokensValid() async throws {
        let rsa = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let es = P256.Signing.PrivateKey()
        let ed = Curve25519.Signing.PrivateKey()
        let oldSecret = "an-old-secret-that-is-long-enough-0123"
        var config = AuthConfig()
        config.bcryptCost = 4
        config.signingKey = JWTKeyConfig(keyID: "es", algorithm: .es256, material: es.pemRepresentation)
        config.verificationKeys = [JWTKeyConfig(keyID: "rsa", algorithm: .rs256, material: rsa.publicKey.pemRepresentation),
                                   JWTKeyConfig(keyID: "ed", algorithm: .eddsa, material: ed.publicKey.pemRepresentation),
                                   JWTKeyConfig(keyID: "old", algorithm: .hs256, material: oldSecret)]
        let auth = try await AuthService(config: config, dataDirectory: try Self.directory())

        // Tokens signed by an independent implementation (jwt-kit) with each configured key verify.
        let signers = JWTKeyCollection()
        await signers.add(rsa: try Insecure.RSA.PrivateKey(pem: rsa.pemRepresentation), digestAlgorithm: .sha256, kid: "rsa")
        await signers.add(ecdsa: try ES256PrivateKey(pem: es.pemRepresentation), kid: "es")
        await signers.add(eddsa: try EdDSA.PrivateKey(d: Base64URL.encode(Array(ed.rawRepresentation)), curve: .ed25519), kid: "ed")
        await signers.add(hmac: HMACKey(from: oldSecret), digestAlgorithm: .sha256, kid: "old")
        for kid in ["rsa", "es", "ed", "old"] {
            let token = try await signers.sign(Claims.valid(), kid: JWKIdentifier(string: kid))
            #expect(auth.verifyAccessToken(token) != nil, "\(kid)")
        }
        // The gateway's own tokens (ES256 now) verify with jwt-kit too.
        let own = try JWS.sign(payload: AccessClaims(sub: "1", name: "a", roles: [], permissions: [], iat: NumericDate(Date()), nbf: NumericDate(Date()),
                                                     exp: NumericDate(Date().addingTimeInterval(60)), iss: "redfire-gateway", aud: Audience(["redfire-api"]),
                                                     jti: "j", typ: "access", sid: "s"), key: auth.signingKey, keyID: auth.signingKeyID)
        #expect(String(decoding: Base64URL.decode(own.split(separator: ".")[0].utf8)!, as: UTF8.self).contains(#""alg":"ES256""#))
        #expect(try await signers.verify(own, as: Claims.self).name == "a")

        // HS/RS confusion: HS256 "signed" with the RSA public key as the secret, under the RSA key's kid.
        let header = Base64URL.encode(#"{"alg":"HS256","kid":"rsa","typ":"JWT"}"#)
        let payload = Base64URL.encode(Array(try JSONEncoder().encode(Claims.valid())))
        let forged = header + "." + payload + "." + Base64URL.encode(Array(HMAC<SHA256>.authenticationCode(
            for: Array((header + "." + payload).utf8), using: SymmetricKey(data: Array(rsa.publicKey.pemRepresentation.utf8)))))
        #expect(auth.verifyAccessToken(forged) == nil)
        // A token signed with a key nobody configured, under a configured kid.
        let stranger = JWTKeyCollection()
        await stranger.add(ecdsa: ES256PrivateKey(), kid: "es")
        #expect(auth.verifyAccessToken(try await stranger.sign(Claims.valid(), kid: "es")) == nil)
        // ES256 under the EdDSA key's kid.
        let mislabeled = JWTKeyCollection()
        await mislabeled.add(ecdsa: try ES256PrivateKey(pem: es.pemRepresentation), kid: "ed")
        #expect(auth.verifyAccessToken(try await mislabeled.sign(Claims.valid(), kid: "ed")) == nil)

        // The JWKS publishes every asymmetric key, never the HMAC secret.
        let jwks = String(buffer: Gateway.jwks(gatewayTokens: nil, auth: auth))
        let published = JWTKeyCollection()
        try await published.add(jwksJSON: jwks)
        #expect(try await published.verify(try await signers.sign(Claims.valid(), kid: "rsa"), as: Claims.self).name == "alice")
        #expect(try await published.verify(try await signers.sign(Claims.valid(), kid: "ed"), as: Claims.self).name == "alice")
        #expect(jwks.contains(#""kid":"es""#) && !jwks.contains(#""kid":"old""#) && !jwks.contains(oldSecret))
    }
}
