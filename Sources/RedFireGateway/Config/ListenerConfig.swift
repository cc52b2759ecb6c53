import Yams

/// `listeners[]` — one address the gateway accepts clients on, plain or TLS. `listen: HOST:PORT` is the
/// short form of one plain listener.
public struct ListenerConfig: Sendable, Equatable {
    /// `address` — `HOST:PORT` (required).
    public var address: ListenAddress
    /// `tls` — terminate TLS on this listener. Default none: plain HTTP.
    public var tls: ListenerTLSConfig?
    /// `redirect_https` — on a plain listener, answer every request with `308 Permanent Redirect` to the
    /// same host and target over HTTPS on this port (`true`: the first TLS listener's port). Default none.
    public var redirectHTTPSPort: Int?
    /// `http2` — HTTP/2 for clients that offer it in the TLS handshake (ALPN `h2`, then `http/1.1`), with
    /// its limits. On by default on TLS listeners; plain listeners speak HTTP/1.1 only.
    public var http2 = HTTP2Config()

    public init(address: ListenAddress, tls: ListenerTLSConfig? = nil, redirectHTTPSPort: Int? = nil) {
        self.address = address
        self.tls = tls
        self.redirectHTTPSPort = redirectHTTPSPort
    }

    /// Whether clients may speak HTTP/2 on this listener.
    public var offersHTTP2: Bool { tls != nil && http2.enabled }

    /// `https` or `http`: the scheme clients use on this listener.
    public var scheme: String { tls == nil ? "http" : "https" }
}

/// `listeners[].http2` — HTTP/2's limits (RFC 9113 §6.5.2 settings and the gateway's own). Every stream
/// is one request through the same policy chain as HTTP/1.1; instances still receive HTTP/1.1. The
/// attack classes (rapid reset, CONTINUATION floods, HPACK bombs, control-frame floods, empty frames)
/// are bounded by swift-nio-http2's defences: the connection is closed with GOAWAY and counted.
public struct HTTP2Config: Sendable, Equatable {
    /// `enabled` — default true (TLS listeners only).
    public var enabled = true
    /// `max_concurrent_streams` — streams a client may have open at once. Default 100 (HAProxy, NIO).
    public var maxConcurrentStreams = 100
    /// `max_header_list_size` — bytes of a decoded header list (HPACK bombs end here). Default 64 KiB;
    /// `limits.max_header_bytes` is still enforced per request (431).
    public var maxHeaderListSize = 65_536
    /// `header_table_size` — the HPACK dynamic table the client may use. Default 4096.
    public var headerTableSize = 4096
    /// `max_frame_size` — largest frame payload the gateway accepts. Default 16384 (the minimum).
    public var maxFrameSize = 16_384
    /// `initial_window_size` — each stream's receive window: request body bytes a client may send
    /// ahead. Default 65535.
    public var initialWindowSize = 65_535
    /// `connection_window_size` — the connection's receive window. Default 1 MiB.
    public var connectionWindowSize = 1 << 20
    /// `max_age` — after this long a connection is asked to go away (GOAWAY; open streams finish), so
    /// long-lived clients rebalance across gateways. Default none.
    public var maxAge: Duration?

    public init() {}
}

/// `listeners[].tls` — TLS termination: certificates by server name, versions, client certificates.
public struct ListenerTLSConfig: Sendable, Equatable {
    /// One certificate chain (PEM, leaf first) and its private key (PEM, not readable by others).
    public struct CertificateFiles: Sendable, Equatable {
        public var certificate: String
        public var key: String

        public init(certificate: String, key: String) {
            self.certificate = certificate
            self.key = key
        }
    }

    /// `certificates` — at least one. The certificate whose names (subject alternative names, or the
    /// common name when it has none) match the client's SNI exactly, else by wildcard (`*.example.com`
    /// covers one label), is presented; the first is the default for other names and for clients that
    /// send no SNI.
    public var certificates: [CertificateFiles]
    /// `min_version` — `1.2` (default) or `1.3`. TLS 1.3 is always preferred when the client offers it.
    public var minimumVersion: TLSMinimumVersion = .v12
    /// `client_certificates` — `none` (default), `optional` (verified when presented) or `required`
    /// (mutual TLS: a connection without a certificate signed by `client_ca` fails its handshake).
    public var clientCertificates: ClientCertificateMode = .none
    /// `client_ca` — PEM file of the authorities client certificates must chain to (required unless
    /// `client_certificates` is `none`).
    public var clientCA: String?
    /// `strict_sni` — refuse a handshake whose SNI names no certificate (default false: the default
    /// certificate is presented).
    public var strictSNI = false
    /// `hsts` — `Strict-Transport-Security` value sent on every response of this listener (RFC 6797; never
    /// on plain HTTP), e.g. `max-age=31536000; includeSubDomains`. Default none.
    public var hsts: String?
    /// `watch_interval` — how often the certificate and key files are checked for changes; a changed,
    /// valid pair is used for new handshakes at once (open connections keep theirs). Default `10s`.
    public var watchInterval: Duration = .seconds(10)

    public init(certificates: [CertificateFiles]) {
        self.certificates = certificates
    }

    public enum TLSMinimumVersion: String, Sendable, Equatable, CaseIterable {
        case v12 = "1.2"
        case v13 = "1.3"
    }

    public enum ClientCertificateMode: String, Sendable, Equatable, CaseIterable {
        case none, optional, required
    }
}

extension GatewayConfig {
    /// `listeners:`, or `listen:` as one plain listener.
    func loadListeners(_ top: ConfigObject, reader: ConfigReader) -> [ListenerConfig]? {
        guard let entries = top.list("listeners") else { return nil }
        if top.has("listen") {
            reader.report("listen", top.node("listen"), "use either listen or listeners, not both")
        }
        if entries.isEmpty {
            reader.report("listeners", top.node("listeners"), "must name at least one listener")
            return nil
        }
        var listeners: [ListenerConfig] = []
        var redirects: [(index: Int, path: String, node: Node?)] = []
        for (path, node) in entries {
            guard let object = reader.object(node, path: path) else { continue }
            guard let text = object.require(object.string("address"), "address") else { object.finish(); continue }
            guard let address = ListenAddress(parsing: text) else {
                reader.report(object.childPath("address"), object.node("address"), "expected HOST:PORT, found \"\(text)\"")
                object.finish()
                continue
            }
            if let other = listeners.first(where: { $0.address == address }), address.port != 0 {
                reader.report(object.childPath("address"), object.node("address"), "\(other.address) is already a listener")
            }
            var listener = ListenerConfig(address: address)
            if let tls = object.object("tls") { listener.tls = ListenerTLSConfig.load(tls, reader: reader) }
            if let http2 = object.object("http2") {
                listener.http2 = HTTP2Config.load(http2)
                if !object.has("tls"), listener.http2.enabled {
                    reader.report(http2.path, http2.node, "HTTP/2 is offered on TLS listeners (ALPN); this listener is plain HTTP")
                }
            }
            if let text = object.string("redirect_https") {
                let node = object.node("redirect_https")
                if ["true", "yes", "on"].contains(text.lowercased()) {
                    redirects.append((listeners.count, object.childPath("redirect_https"), node))
                } else if let port = Int(text), (1...65535).contains(port) {
                    listener.redirectHTTPSPort = port
                } else if !["false", "no", "off"].contains(text.lowercased()) {
                    reader.report(object.childPath("redirect_https"), node, "expected true or an HTTPS port (443), found \"\(text)\"")
                }
                if listener.tls != nil || object.has("tls") {
                    reader.report(object.childPath("redirect_https"), node, "is for plain listeners: this one speaks TLS")
                }
            }
            object.finish()
            listeners.append(listener)
        }
        for redirect in redirects {
            if let port = listeners.first(where: { $0.tls != nil })?.address.port, port != 0 {
                listeners[redirect.index].redirectHTTPSPort = port
            } else {
                reader.report(redirect.path, redirect.node, "true needs a TLS listener with a fixed port; give the port instead (redirect_https: 443)")
            }
        }
        return listeners.isEmpty ? nil : listeners
    }
}

extension HTTP2Config {
    /// `listeners[].http2:`
    static func load(_ object: ConfigObject) -> HTTP2Config {
        var config = HTTP2Config()
        if let enabled = object.bool("enabled") { config.enabled = enabled }
        if let value = object.int("max_concurrent_streams", in: 1...10_000) { config.maxConcurrentStreams = value }
        if let value = object.int("max_header_list_size", in: 1024...(16 << 20)) { config.maxHeaderListSize = value }
        if let value = object.int("header_table_size", in: 0...65_536) { config.headerTableSize = value }
        if let value = object.int("max_frame_size", in: 16_384...16_777_215) { config.maxFrameSize = value }
        if let value = object.int("initial_window_size", in: 1024...2_147_483_647) { config.initialWindowSize = value }
        if let value = object.int("connection_window_size", in: 65_535...2_147_483_647) { config.connectionWindowSize = value }
        if let value = object.duration("max_age", atLeast: .seconds(1)) { config.maxAge = value }
        object.finish()
        return config
    }
}

extension ListenerTLSConfig {
    /// `listeners[].tls:` — the files are read and checked here (`ServerTLSMaterial`), so `config check`,
    /// start and reload say what is wrong with them before any client connects.
    static func load(_ tls: ConfigObject, reader: ConfigReader) -> ListenerTLSConfig? {
        var files: [CertificateFiles] = []
        if let entries = tls.list("certificates") {
            for (path, node) in entries {
                guard let entry = reader.object(node, path: path) else { continue }
                let certificate = entry.require(entry.string("cert"), "cert")
                let key = entry.require(entry.string("key"), "key")
                entry.finish()
                if let certificate, let key { files.append(CertificateFiles(certificate: reader.resolve(certificate), key: reader.resolve(key))) }
            }
            if entries.isEmpty { reader.report(tls.childPath("certificates"), tls.node("certificates"), "must list at least one certificate") }
        } else {
            reader.report(tls.childPath("certificates"), tls.node("certificates"), "is required: at least one {cert, key} pair")
        }
        var config = ListenerTLSConfig(certificates: files)
        if let version = tls.string("min_version", oneOf: TLSMinimumVersion.allCases.map(\.rawValue)) {
            config.minimumVersion = TLSMinimumVersion(rawValue: version) ?? .v12
        }
        if let mode = tls.string("client_certificates", oneOf: ClientCertificateMode.allCases.map(\.rawValue)) {
            config.clientCertificates = ClientCertificateMode(rawValue: mode) ?? .none
        }
        if let ca = tls.string("client_ca") { config.clientCA = reader.resolve(ca) }
        if config.clientCertificates != .none, config.clientCA == nil {
            reader.report(tls.childPath("client_ca"), tls.node("client_certificates"), "is required when client_certificates is \(config.clientCertificates.rawValue)")
        }
        if let strict = tls.bool("strict_sni") { config.strictSNI = strict }
        if let hsts = tls.string("hsts") {
            if hsts.lowercased().contains("max-age=") && !hsts.contains(where: { $0 == "\r" || $0 == "\n" }) { config.hsts = hsts }
            else { reader.report(tls.childPath("hsts"), tls.node("hsts"), "expected a Strict-Transport-Security value such as \"max-age=31536000; includeSubDomains\"") }
        }
        if let interval = tls.duration("watch_interval", atLeast: .seconds(1)) { config.watchInterval = interval }
        tls.finish()
        guard !files.isEmpty, config.clientCertificates == .none || config.clientCA != nil else { return nil }
        do {
            _ = try ServerTLSMaterial(config)
        } catch {
            reader.report(tls.path, nil, error.description)
            return nil
        }
        return config
    }
}
