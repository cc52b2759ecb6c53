import Crypto
import Foundation
import NIOSSL
import SwiftASN1
import X509

/// A throw-away certificate for `demo --tls`, made in process (swift-certificates, swift-crypto): P-256,
/// valid 30 days, for `localhost`, `127.0.0.1`, `::1` and the listen host, signed by an authority made
/// for the occasion (which the demo's own client trusts; anyone else uses `curl -k`).
public struct DemoTLS: Sendable {
    public let certificatePath: String
    public let keyPath: String
    /// A client configuration that trusts exactly this certificate (the demo's traffic generator).
    public let clientConfiguration: TLSConfiguration

    /// Writes the certificate and its key (mode 0600) into `directory`.
    public static func make(in directory: String, host: String) throws -> DemoTLS {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // A throw-away authority (its key is dropped once it has signed) and the server certificate it signs:
        // clients trust the authority, as they would a real one.
        let authorityKey = P256.Signing.PrivateKey()
        let authorityName = try DistinguishedName { CommonName("RedFire Gateway demo authority (throw-away)") }
        let authority = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(authorityKey.publicKey),
            notValidBefore: Date().addingTimeInterval(-300), notValidAfter: Date().addingTimeInterval(86_400 * 30),
            issuer: authorityName, subject: authorityName, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true))
            },
            issuerPrivateKey: .init(authorityKey))
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("localhost") }
        var names: [GeneralName] = [.dnsName("localhost"), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])),
                                    .ipAddress(ASN1OctetString(contentBytes: ArraySlice([UInt8](repeating: 0, count: 15) + [1])))]
        if let address = try? ipv4Bytes(host), address != [127, 0, 0, 1] {
            names.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(address))))
        } else if host != "localhost", !host.contains(":"), Int(host.split(separator: ".").first ?? "") == nil {
            names.append(.dnsName(host))
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: Date().addingTimeInterval(-300), notValidAfter: Date().addingTimeInterval(86_400 * 30),
            issuer: authorityName, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(names)
            },
            issuerPrivateKey: .init(authorityKey))
        let certificatePath = (directory as NSString).appendingPathComponent("demo-cert.pem")
        let keyPath = (directory as NSString).appendingPathComponent("demo-key.pem")
        let pem = try certificate.serializeAsPEM().pemString + "\n"
        try pem.write(toFile: certificatePath, atomically: true, encoding: .utf8)
        _ = FileManager.default.createFile(atPath: keyPath, contents: Data((key.pemRepresentation + "\n").utf8), attributes: [.posixPermissions: 0o600])
        var client = TLSConfiguration.makeClientConfiguration()
        client.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array((try authority.serializeAsPEM().pemString).utf8)))
        return DemoTLS(certificatePath: certificatePath, keyPath: keyPath, clientConfiguration: client)
    }

    /// The four bytes of an IPv4 address in dotted form; throws for anything else.
    private static func ipv4Bytes(_ text: String) throws -> [UInt8] {
        let parts = text.split(separator: ".").compactMap { UInt8($0) }
        guard parts.count == 4 else { throw CocoaError(.formatting) }
        return parts
    }
}
