import Foundation
import NIOSSL

extension PostgresTLS {
    /// The TLS configuration of the store's connections (nil for `disable`), with the files read now: a
    /// missing or unreadable file, a file without a PEM certificate, a private key others may read or one
    /// that does not match its certificate is refused here, with what to fix — `config check` and start
    /// say it, never the first connection.
    package func clientConfiguration() throws(PostgresURL.Invalid) -> TLSConfiguration? {
        guard mode != .disable else { return nil }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        tls.certificateVerification = verifiesHostname ? .fullVerification : verifiesCertificate ? .noHostnameVerification : .none
        if let roots = rootCertificates, roots != "system" {
            tls.trustRoots = .certificates(try Self.certificates(roots, parameter: "sslrootcert"))
        }
        if let certificate, let key {
            tls.certificateChain = try Self.certificates(certificate, parameter: "sslcert").map { .certificate($0) }
            do { tls.privateKey = .privateKey(try PEMFiles.privateKey(key, parameter: "sslkey")) }
            catch { throw PostgresURL.Invalid(description: error.description) }
        }
        do { _ = try NIOSSLContext(configuration: tls) }
        catch { throw PostgresURL.Invalid(description: "the store's TLS settings cannot be used (does sslkey belong to sslcert?): \(error)") }
        return tls
    }

    private static func certificates(_ path: String, parameter: String) throws(PostgresURL.Invalid) -> [NIOSSLCertificate] {
        do { return try PEMFiles.certificates(path, parameter: parameter) }
        catch { throw PostgresURL.Invalid(description: error.description) }
    }
}
