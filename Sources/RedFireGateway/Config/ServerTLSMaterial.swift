import Foundation
import NIOCore
import NIOSSL
import X509

/// One TLS listener's certificates and settings as read from their files, with the context new
/// handshakes use. Built when the configuration loads (so `config check`, start and reload refuse a
/// broken file with what is wrong) and again whenever the files change.
///
/// Versions: TLS 1.2 minimum (swift-nio-ssl's own default still allows 1.0), 1.3 preferred; TLS 1.2
/// suites are ECDHE with AEAD only (Mozilla's "intermediate" list); TLS 1.3 suites are BoringSSL's.
package struct ServerTLSMaterial: Sendable {
    package struct Invalid: Error, CustomStringConvertible {
        package var description: String
    }

    /// One certificate chain and its key, with what the handshake and the operator need to know of it.
    package struct Certificate: Sendable {
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        /// The file it came from.
        package let path: String
        /// Lower-case DNS names it is valid for (subject alternative names, else the common name).
        package let names: [String]
        package let notValidAfter: Date
    }

    package let certificates: [Certificate]
    /// What new handshakes on the listener use.
    package let context: NIOSSLContext
    /// Every file read, as it was when read: the watcher compares these.
    let stamps: [String: PEMFiles.Stamp]

    /// ECDHE key exchange with AES-GCM or ChaCha20-Poly1305, for TLS 1.2 clients (no CBC, no RSA key
    /// exchange, no DHE).
    static let cipherSuites = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")

    /// - Parameter applicationProtocols: ALPN identifiers offered, in order of preference.
    package init(_ config: ListenerTLSConfig, applicationProtocols: [String] = ["http/1.1"], now: Date = Date()) throws(Invalid) {
        var certificates: [Certificate] = []
        var stamps: [String: PEMFiles.Stamp] = [:]
        func stamp(_ path: String) { stamps[path] = PEMFiles.Stamp(path: path) }
        for (index, files) in config.certificates.enumerated() {
            let label = "certificates[\(index)]"
            let chain: [NIOSSLCertificate]
            let key: NIOSSLPrivateKey
            do {
                chain = try PEMFiles.certificates(files.certificate, parameter: "\(label).cert")
                key = try PEMFiles.privateKey(files.key, parameter: "\(label).key")
            } catch {
                throw Invalid(description: error.description)
            }
            stamp(files.certificate)
            stamp(files.key)
            let leaf: X509.Certificate
            do { leaf = try X509.Certificate(derEncoded: try chain[0].toDERBytes()) }
            catch { throw Invalid(description: "\(label).cert \(files.certificate): the certificate cannot be parsed (\(error))") }
            if leaf.notValidAfter < now {
                throw Invalid(description: "\(label).cert \(files.certificate): expired on \(Self.day(leaf.notValidAfter))")
            }
            if leaf.notValidBefore > now {
                throw Invalid(description: "\(label).cert \(files.certificate): not valid before \(Self.day(leaf.notValidBefore))")
            }
            // The pair is checked by BoringSSL itself: a context with a key that is not the
            // certificate's cannot be made.
            var single = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
            single.minimumTLSVersion = .tlsv12
            do { _ = try NIOSSLContext(configuration: single) }
            catch { throw Invalid(description: "\(label): \(files.key) is not the private key of \(files.certificate)") }
            certificates.append(Certificate(chain: chain, key: key, path: files.certificate, names: Self.names(of: leaf), notValidAfter: leaf.notValidAfter))
        }
        guard let first = certificates.first else { throw Invalid(description: "certificates: at least one {cert, key} pair is required") }

        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: first.chain.map { .certificate($0) }, privateKey: .privateKey(first.key))
        tls.minimumTLSVersion = config.minimumVersion == .v13 ? .tlsv13 : .tlsv12
        tls.maximumTLSVersion = .tlsv13
        tls.cipherSuites = Self.cipherSuites
        tls.applicationProtocols = applicationProtocols
        // Closing, the gateway sends close_notify and waits this long for the client's (swift-nio-ssl
        // waits 5 s by default: every connection a client abandons would hold its descriptor that long,
        // and a graceful shutdown would wait for the slowest). Nothing of the gateway's is lost by not
        // waiting: its last bytes were flushed before.
        tls.shutdownTimeout = .milliseconds(500)
        switch config.clientCertificates {
        case .none: tls.certificateVerification = .none
        case .optional: tls.certificateVerification = .optionalVerification
        case .required: tls.certificateVerification = .noHostnameVerification
        }
        if let ca = config.clientCA, config.clientCertificates != .none {
            do { tls.trustRoots = .certificates(try PEMFiles.certificates(ca, parameter: "client_ca")) }
            catch { throw Invalid(description: error.description) }
            stamp(ca)
        }
        if certificates.count > 1 || config.strictSNI {
            let selector = CertificateSelector(certificates, strict: config.strictSNI)
            tls.sslContextCallback = { values, promise in selector.choose(values.serverHostname, promise) }
        }
        do { context = try NIOSSLContext(configuration: tls) }
        catch { throw Invalid(description: "the TLS settings cannot be used: \(error)") }
        self.certificates = certificates
        self.stamps = stamps
    }

    /// Whether any file read changed since (or is gone).
    var filesChanged: Bool {
        stamps.contains { path, stamp in PEMFiles.Stamp(path: path) != stamp }
    }

    /// "certificates[1] (api.redfire.example): expires in 9 days (2026-12-08)" for every certificate
    /// that expires within `days`.
    package func expiryWarnings(within days: Int = 14, now: Date = Date()) -> [String] {
        certificates.enumerated().compactMap { index, certificate in
            let left = certificate.notValidAfter.timeIntervalSince(now) / 86_400
            guard left < Double(days) else { return nil }
            let name = certificate.names.first.map { " (\($0))" } ?? ""
            return "certificates[\(index)]\(name): expires in \(Int(left.rounded(.down))) days (\(Self.day(certificate.notValidAfter)))"
        }
    }

    static func names(of certificate: X509.Certificate) -> [String] {
        var names: [String] = []
        if let alternatives = try? certificate.extensions.subjectAlternativeNames {
            for name in alternatives { if case .dnsName(let dns) = name { names.append(dns.lowercased()) } }
        }
        if names.isEmpty {
            for rdn in certificate.subject {
                for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                    names.append(String(describing: attribute.value).lowercased())
                }
            }
        }
        return names
    }

    static func day(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate]
        return formatter.string(from: date)
    }
}

/// Chooses the certificate a handshake presents from the client's SNI: an exact name first, then a
/// wildcard covering one label (`*.example.com` matches `api.example.com`, not `a.b.example.com` nor
/// `example.com`), else the default (the first) — or, with `strict_sni`, none: the handshake fails.
struct CertificateSelector: Sendable {
    struct UnknownServerName: Error {}

    private let certificates: [ServerTLSMaterial.Certificate]
    private let exact: [String: Int]
    private let wildcard: [String: Int]
    private let strict: Bool

    init(_ certificates: [ServerTLSMaterial.Certificate], strict: Bool) {
        self.certificates = certificates
        self.strict = strict
        var exact: [String: Int] = [:]
        var wildcard: [String: Int] = [:]
        for (index, certificate) in certificates.enumerated() {
            for name in certificate.names {
                if name.hasPrefix("*.") {
                    let suffix = String(name.dropFirst(2))
                    if wildcard[suffix] == nil { wildcard[suffix] = index }
                } else if exact[name] == nil {
                    exact[name] = index
                }
            }
        }
        self.exact = exact
        self.wildcard = wildcard
    }

    /// The index of the certificate for `serverName`; nil when none names it.
    func index(for serverName: String?) -> Int? {
        guard var name = serverName?.lowercased(), !name.isEmpty else { return nil }
        if name.hasSuffix(".") { name.removeLast() }
        if let index = exact[name] { return index }
        if let dot = name.firstIndex(of: "."), let index = wildcard[String(name[name.index(after: dot)...])] { return index }
        return nil
    }

    func choose(_ serverName: String?, _ promise: EventLoopPromise<NIOSSLContextConfigurationOverride>) {
        switch index(for: serverName) {
        case 0?:
            promise.succeed(.noChanges)
        case let index?:
            var override = NIOSSLContextConfigurationOverride()
            override.certificateChain = certificates[index].chain.map { .certificate($0) }
            override.privateKey = .privateKey(certificates[index].key)
            promise.succeed(override)
        case nil:
            if strict { promise.fail(UnknownServerName()) } else { promise.succeed(.noChanges) }
        }
    }
}
