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
            try Self.checkPrivate(key)
            do { tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)) }
            catch { throw PostgresURL.Invalid(description: "sslkey \(key): not a PEM private key") }
        }
        do { _ = try NIOSSLContext(configuration: tls) }
        catch { throw PostgresURL.Invalid(description: "the store's TLS settings cannot be used (does sslkey belong to sslcert?): \(error)") }
        return tls
    }

    private static func certificates(_ path: String, parameter: String) throws(PostgresURL.Invalid) -> [NIOSSLCertificate] {
        guard FileManager.default.isReadableFile(atPath: path) else { throw PostgresURL.Invalid(description: "\(parameter) \(path): cannot read the file") }
        let certificates = try? NIOSSLCertificate.fromPEMFile(path)
        guard let certificates, !certificates.isEmpty else { throw PostgresURL.Invalid(description: "\(parameter) \(path): no PEM certificate in the file") }
        return certificates
    }

    /// As libpq: a key file must not be readable by group or others (`chmod 600`), unless root owns it
    /// and only its group may read it (0640).
    private static func checkPrivate(_ path: String) throws(PostgresURL.Invalid) {
        var info = stat()
        guard stat(path, &info) == 0, FileManager.default.isReadableFile(atPath: path) else {
            throw PostgresURL.Invalid(description: "sslkey \(path): cannot read the file")
        }
        let permissions = info.st_mode & 0o777
        let allowed: mode_t = info.st_uid == 0 ? 0o740 : 0o700
        guard permissions & ~allowed == 0 else {
            throw PostgresURL.Invalid(description: "sslkey \(path): readable by others (mode \(String(permissions, radix: 8))); chmod 600 it")
        }
    }
}
