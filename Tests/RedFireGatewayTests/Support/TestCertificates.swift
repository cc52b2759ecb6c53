import Crypto
import Foundation
import SwiftASN1
import X509

/// Certificates a test makes for itself: a certificate authority and the server and client certificates
/// it signs (ECDSA P-256), written as PEM files. Nothing is read from the machine's trust store.
struct TestAuthority {
    let certificate: Certificate
    let key: P256.Signing.PrivateKey

    init(_ name: String) throws {
        key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName { CommonName(name) }
        certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: Date().addingTimeInterval(-3600), notValidAfter: Date().addingTimeInterval(86_400 * 30),
            issuer: subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: .init(key))
    }

    /// A leaf certificate for a server (`dnsNames`, IPv4 `ipAddresses`) or a client (`commonName` is the
    /// user a `cert` login maps to).
    func issue(commonName: String, dnsNames: [String] = [], ipAddresses: [String] = [], client: Bool = false,
               validFor: TimeInterval = 86_400 * 30) throws -> TestCertificate {
        let key = P256.Signing.PrivateKey()
        let names: [GeneralName] = dnsNames.map { .dnsName($0) } + ipAddresses.map { address in
            .ipAddress(ASN1OctetString(contentBytes: ArraySlice(address.split(separator: ".").compactMap { UInt8($0) })))
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: Date().addingTimeInterval(-3600), notValidAfter: Date().addingTimeInterval(validFor),
            issuer: self.certificate.subject, subject: try DistinguishedName { CommonName(commonName) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([client ? .clientAuth : .serverAuth])
                if !names.isEmpty { SubjectAlternativeNames(names) }
            },
            issuerPrivateKey: .init(self.key))
        return TestCertificate(certificate: certificate, key: key)
    }

    var pem: String { get throws { try certificate.serializeAsPEM().pemString + "\n" } }

    /// Writes the CA certificate to `path`.
    func write(to path: String) throws {
        try pem.write(toFile: path, atomically: true, encoding: .utf8)
    }
}

struct TestCertificate {
    let certificate: Certificate
    let key: P256.Signing.PrivateKey

    var certificatePEM: String { get throws { try certificate.serializeAsPEM().pemString + "\n" } }
    var keyPEM: String { key.pemRepresentation + "\n" }

    /// Writes the certificate and its key (mode 0600) as PEM files.
    func write(certificate certificatePath: String, key keyPath: String) throws {
        try certificatePEM.write(toFile: certificatePath, atomically: true, encoding: .utf8)
        try keyPEM.write(toFile: keyPath, atomically: true, encoding: .utf8)
        chmod(keyPath, 0o600)
    }
}
