import Atomics
import Logging
import NIOCore
import NIOSSL
import Synchronization

/// One listener while the gateway runs: its configuration, its bound port, its TLS certificates (swapped
/// in place when their files change or on reload) and what its connections did.
package final class ListenerRuntime: Sendable {
    package let config: ListenerConfig
    package let tls: TLSListenerState?
    private let port = ManagedAtomic<Int>(0)
    /// Open connections, and of them those whose TLS handshake completed, by version.
    let open = ConnectionCount()
    let openTLS12 = ConnectionCount()
    let openTLS13 = ConnectionCount()
    /// Of those, the ones speaking HTTP/2.
    let openHTTP2TLS12 = ConnectionCount()
    let openHTTP2TLS13 = ConnectionCount()

    func http2Count(_ version: TLSVersion?) -> ConnectionCount? {
        switch version {
        case .tlsv13?: openHTTP2TLS13
        case .tlsv12?: openHTTP2TLS12
        default: nil
        }
    }
    /// Connections swift-nio-http2 ended (GOAWAY), by why: `rapid_reset`, `continuation_flood`, …
    private let http2Errors = Mutex<[String: Int]>([:])

    func http2ConnectionError(_ reason: String) { http2Errors.withLock { $0[reason, default: 0] += 1 } }
    package var http2ErrorCounts: [String: Int] { http2Errors.withLock { $0 } }

    func tlsCount(_ version: TLSVersion) -> ConnectionCount? {
        switch version {
        case .tlsv13: openTLS13
        case .tlsv12: openTLS12
        default: nil
        }
    }

    init(config: ListenerConfig) throws(ServerTLSMaterial.Invalid) {
        self.config = config
        let protocols = config.offersHTTP2 ? ["h2", "http/1.1"] : ["http/1.1"]
        self.tls = try config.tls.map { tls throws(ServerTLSMaterial.Invalid) in try TLSListenerState(config: tls, applicationProtocols: protocols) }
    }

    /// The port it is bound to; 0 until listening.
    package var boundPort: Int {
        get { port.load(ordering: .relaxed) }
        set { port.store(newValue, ordering: .relaxed) }
    }

    /// `https://127.0.0.1:8443` once bound.
    package var url: String { "\(config.scheme)://\(ListenAddress(host: config.address.host, port: boundPort))" }

}

/// What a request knows of the connection it came on: TLS or not, and what the listener adds.
package struct ClientTransport: Sendable {
    /// `TLSv1.3`, `TLSv1.2`; nil on plain HTTP.
    package var tls: String?
    /// `Strict-Transport-Security` for every response (TLS listeners with `hsts` only).
    var hsts: String?
    /// A plain listener that redirects every request to HTTPS on this port.
    var redirectHTTPSPort: Int?

    static let plain = ClientTransport()

    static func name(of version: TLSVersion) -> String {
        switch version {
        case .tlsv13: "TLSv1.3"
        case .tlsv12: "TLSv1.2"
        case .tlsv11: "TLSv1.1"
        case .tlsv1: "TLSv1"
        }
    }
}

/// A TLS listener's certificates and handshake counts. New handshakes take the current material; a
/// connection keeps the context it started with.
package final class TLSListenerState: Sendable {
    private let material: Mutex<ServerTLSMaterial>
    private let settings: Mutex<ListenerTLSConfig>
    /// The files' stamps of the last change that could not be used: said once, not every check.
    private let refusedStamps = Mutex<[String: PEMFiles.Stamp]?>(nil)
    private let handshakes = ManagedAtomic<Int>(0)
    private let failures = Mutex<[String: Int]>([:])
    private let reloads = ManagedAtomic<Int>(0)

    /// ALPN identifiers offered, fixed for the listener's life (`h2` when it offers HTTP/2).
    let applicationProtocols: [String]

    init(config: ListenerTLSConfig, applicationProtocols: [String] = ["http/1.1"]) throws(ServerTLSMaterial.Invalid) {
        material = Mutex(try ServerTLSMaterial(config, applicationProtocols: applicationProtocols))
        settings = Mutex(config)
        self.applicationProtocols = applicationProtocols
    }

    package var current: ServerTLSMaterial { material.withLock { $0 } }
    package var config: ListenerTLSConfig { settings.withLock { $0 } }
    var context: NIOSSLContext { material.withLock { $0.context } }

    /// Reads the files of `config` and, when they are usable, uses them for new handshakes.
    func replace(with config: ListenerTLSConfig) throws(ServerTLSMaterial.Invalid) {
        use(try ServerTLSMaterial(config, applicationProtocols: applicationProtocols), config: config)
    }

    /// New handshakes use `fresh` (read from `config`'s files).
    func use(_ fresh: ServerTLSMaterial, config: ListenerTLSConfig) {
        material.withLock { $0 = fresh }
        settings.withLock { $0 = config }
        refusedStamps.withLock { $0 = nil }
        reloads.wrappingIncrement(ordering: .relaxed)
    }

    /// Re-reads the files when one changed since they were read. A change that cannot be used (a key
    /// that is not the certificate's, a file half written) is logged once and the current certificates
    /// stay. Returns whether new material is in use.
    func reloadIfChanged(logger: Logger, listener: String) -> Bool {
        let (current, config) = (self.current, self.config)
        guard current.filesChanged else { return false }
        let stamps = current.stamps.keys.reduce(into: [String: PEMFiles.Stamp]()) { $0[$1] = PEMFiles.Stamp(path: $1) }
        do {
            try replace(with: config)
            logger.notice("TLS certificates reloaded", metadata: ["listener": "\(listener)",
                                                                   "certificates": "\(self.current.certificates.map(\.path).joined(separator: ", "))"])
            return true
        } catch {
            let first = refusedStamps.withLock { seen in
                defer { seen = stamps }
                return seen != stamps
            }
            if first {
                logger.error("TLS certificate files changed but cannot be used; the current certificates stay",
                             metadata: ["listener": "\(listener)", "problem": "\(error.description)"])
            }
            return false
        }
    }

    func handshakeSucceeded() { handshakes.wrappingIncrement(ordering: .relaxed) }
    func handshakeFailed(_ reason: String) { failures.withLock { $0[reason, default: 0] += 1 } }

    package var handshakeCount: Int { handshakes.load(ordering: .relaxed) }
    package var failureCounts: [String: Int] { failures.withLock { $0 } }
    package var reloadCount: Int { reloads.load(ordering: .relaxed) }
}
