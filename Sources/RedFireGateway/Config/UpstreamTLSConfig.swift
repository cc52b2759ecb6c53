import NIOSSL
import Yams

/// `services.NAME.tls` — how the gateway speaks TLS to the service's `https://` instances. Without the
/// section an `https://` instance is verified against the system's trust store with its own host name;
/// verification is never turned off.
public struct UpstreamTLSConfig: Sendable, Hashable {
    /// `ca` — PEM file of the authorities the instances' certificates must chain to, in place of the
    /// system's trust store. Default none (the system's).
    public var ca: String?
    /// `server_name` — the name sent as SNI and required in the instances' certificates. Default: each
    /// instance's host (an IP address is then matched against the certificate's IP addresses, without SNI).
    public var serverName: String?
    /// `cert` / `key` — a client certificate the gateway presents to the instances (mutual TLS).
    public var certificate: String?
    public var key: String?
    /// `min_version` — `1.2` (default) or `1.3`.
    public var minimumVersion: ListenerTLSConfig.TLSMinimumVersion = .v12

    public init(ca: String? = nil, serverName: String? = nil, certificate: String? = nil, key: String? = nil) {
        self.ca = ca
        self.serverName = serverName
        self.certificate = certificate
        self.key = key
    }

    /// The client configuration, with the files read now (problems say which file and what to fix).
    func clientConfiguration() throws(PEMFiles.Problem) -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = minimumVersion == .v13 ? .tlsv13 : .tlsv12
        tls.certificateVerification = .fullVerification
        tls.cipherSuites = ServerTLSMaterial.cipherSuites
        tls.applicationProtocols = ["http/1.1"]
        if let ca { tls.trustRoots = .certificates(try PEMFiles.certificates(ca, parameter: "ca")) }
        if let certificate, let key {
            tls.certificateChain = try PEMFiles.certificates(certificate, parameter: "cert").map { .certificate($0) }
            tls.privateKey = .privateKey(try PEMFiles.privateKey(key, parameter: "key"))
        }
        do { _ = try NIOSSLContext(configuration: tls) }
        catch { throw PEMFiles.Problem(description: "these TLS settings cannot be used (is key the private key of cert?): \(error)") }
        return tls
    }

    /// `services.NAME.tls:`
    static func load(_ object: ConfigObject, reader: ConfigReader) -> UpstreamTLSConfig? {
        var config = UpstreamTLSConfig()
        config.ca = object.string("ca").map(reader.resolve)
        if let name = object.string("server_name") {
            if name.isEmpty || name.contains(where: { $0 == " " || $0 == "/" || $0 == ":" }) {
                reader.report(object.childPath("server_name"), object.node("server_name"), "\"\(name)\" is not a host name")
            } else {
                config.serverName = name.lowercased()
            }
        }
        config.certificate = object.string("cert").map(reader.resolve)
        config.key = object.string("key").map(reader.resolve)
        if (config.certificate == nil) != (config.key == nil) {
            reader.report(object.childPath(config.certificate == nil ? "cert" : "key"), object.node, "cert and key go together")
        }
        if let version = object.string("min_version", oneOf: ListenerTLSConfig.TLSMinimumVersion.allCases.map(\.rawValue)) {
            config.minimumVersion = .init(rawValue: version) ?? .v12
        }
        object.finish()
        do {
            _ = try config.clientConfiguration()
        } catch {
            reader.report(object.path, object.node, error.description)
            return nil
        }
        return config
    }
}
