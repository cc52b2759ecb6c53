import Foundation

/// `cluster` — several gateways sharing one PostgreSQL: operator decisions (drains with their
/// deadlines, strategies) made on any node reach every node. Absent: one process, state kept locally
/// (the embedded default; `demo` and a plain `serve` need nothing else).
public struct ClusterConfig: Sendable, Equatable {
    /// `store` — `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=…]` (`${ENV}` for the
    /// password; TLS as in libpq, `PostgresTLS`). Turns clustering on.
    public var store: PostgresURL?
    /// `node_name` — this gateway in the cluster: in logs, audit entries (`console@node-b`) and events.
    /// Default `HOSTNAME:PORT` of the listener.
    public var nodeName: String?
    /// `heartbeat_interval` — how often a node writes its heartbeat and reads the others'.
    public var heartbeatInterval: Duration = .seconds(1)
    /// `node_timeout` — a node whose last heartbeat is older is no longer counted (killed, cut off).
    public var nodeTimeout: Duration = .seconds(5)
    /// `housekeeping_interval` — how often the cluster prunes old events, tokens, nodes and rate-limit
    /// rows (one node per run, whichever finds it due first).
    public var houseKeepingInterval: Duration = .seconds(60)
    public init() {}

    public var isEnabled: Bool { store != nil }

    /// This node's name in a cluster (`node_name`, or `HOSTNAME:PORT` of `listen`); nil without one.
    public func resolvedNodeName(listen: ListenAddress) -> String? {
        guard isEnabled else { return nil }
        return nodeName ?? "\(ProcessInfo.processInfo.hostName):\(listen.port)"
    }
}

/// A PostgreSQL connection URL: `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=…&sslrootcert=…]`.
/// Its description never shows the password.
public struct PostgresURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    /// TLS to the server, from the query (libpq's parameter names and meanings).
    public var tls: PostgresTLS

    public init(host: String, port: Int = 5432, user: String, password: String? = nil, database: String, tls: PostgresTLS = PostgresTLS()) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.tls = tls
    }

    /// Why a text is not a store URL.
    public struct Invalid: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// nil unless the text is a valid store URL (see `init(validating:)`).
    public init?(parsing text: String) {
        guard let url = try? PostgresURL(validating: text) else { return nil }
        self = url
    }

    /// A `postgres://` or `postgresql://` URL with a user, a host and a database, and optionally a query of
    /// libpq's TLS parameters (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`; any other is refused).
    /// Percent-escapes in the user, the password and query values are decoded (a password may hold `@` or `:`).
    public init(validating text: String) throws(Invalid) {
        let shape = Invalid(description: "expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=MODE&sslrootcert=FILE]")
        let lower = text.lowercased()
        guard let schemeEnd = lower.hasPrefix("postgres://") ? text.index(text.startIndex, offsetBy: 11)
                : lower.hasPrefix("postgresql://") ? text.index(text.startIndex, offsetBy: 13) : nil else { throw shape }
        var rest = text[schemeEnd...]
        var query: Substring = ""
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        guard let at = rest.lastIndex(of: "@"), let slash = rest[at...].firstIndex(of: "/") else { throw shape }
        let credentials = rest[..<at]
        let hostPort = rest[rest.index(after: at)..<slash]
        let database = rest[rest.index(after: slash)...]
        let userPart = credentials.firstIndex(of: ":").map { credentials[..<$0] } ?? credentials
        let passwordPart = credentials.firstIndex(of: ":").map { credentials[credentials.index(after: $0)...] }
        guard let user = String(userPart).removingPercentEncoding, !user.isEmpty, !database.isEmpty,
              database.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else { throw shape }
        var host = String(hostPort)
        var port = 5432
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { throw shape }
            let after = host[host.index(after: close)...]
            if after.hasPrefix(":") { guard let parsed = Int(after.dropFirst()), (1...65535).contains(parsed) else { throw shape }; port = parsed }
            else if !after.isEmpty { throw shape }
            host = String(host[host.index(after: host.startIndex)..<close])
        } else if let colon = host.lastIndex(of: ":") {
            guard let parsed = Int(host[host.index(after: colon)...]), (1...65535).contains(parsed) else { throw shape }
            port = parsed
            host = String(host[..<colon])
        }
        guard !host.isEmpty, !host.contains("/") else { throw shape }
        self.host = host
        self.port = port
        self.user = user
        self.password = passwordPart.flatMap { String($0).removingPercentEncoding }
        self.database = String(database)
        self.tls = try PostgresTLS(query: query)
    }

    public var description: String {
        "postgres://\(user)\(password == nil ? "" : ":***")@\(host.contains(":") ? "[\(host)]" : host):\(port)/\(database)"
            + (tls == PostgresTLS() ? "" : "?sslmode=\(tls.mode.rawValue)")
    }
}

/// TLS to the cluster store, with libpq's parameters and meanings, so a URL means what it means to `psql`:
///
/// | `sslmode` | encrypted | server certificate checked |
/// |---|---|---|
/// | `disable` | never | — |
/// | `prefer` (default) | when the server offers TLS | no |
/// | `require` | always | no — unless `sslrootcert` is given: then as `verify-ca` |
/// | `verify-ca` | always | signed by `sslrootcert` |
/// | `verify-full` | always | signed by `sslrootcert` and issued for the URL's host (DNS name or IP address) |
///
/// `sslrootcert` is a PEM file of CA certificates, or `system` for the system's trust store (which implies
/// `verify-full`, as in libpq 16). `sslcert` and `sslkey` (PEM) present a client certificate, for servers
/// that authenticate by certificate (`pg_hba.conf` method `cert`). TLS 1.2 is the minimum.
public struct PostgresTLS: Sendable, Equatable {
    public enum Mode: String, Sendable, CaseIterable {
        case disable, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    public var mode: Mode = .prefer
    /// `sslrootcert` — a PEM file of trusted CA certificates, or `system`.
    public var rootCertificates: String?
    /// `sslcert` and `sslkey` — a client certificate chain and its private key (PEM files).
    public var certificate: String?
    public var key: String?

    public init(mode: Mode = .prefer, rootCertificates: String? = nil, certificate: String? = nil, key: String? = nil) {
        self.mode = mode
        self.rootCertificates = rootCertificates
        self.certificate = certificate
        self.key = key
    }

    /// Whether the server's certificate chain is checked against `sslrootcert`.
    public var verifiesCertificate: Bool {
        switch mode {
        case .disable, .prefer: false
        case .require: rootCertificates != nil
        case .verifyCA, .verifyFull: true
        }
    }

    /// Whether the server's certificate must also name the host the URL connects to.
    public var verifiesHostname: Bool { mode == .verifyFull }

    init(query: Substring) throws(PostgresURL.Invalid) {
        var explicitMode: Mode?
        for pair in query.split(separator: "&") where !pair.isEmpty {
            let name = pair.firstIndex(of: "=").map { String(pair[..<$0]) } ?? String(pair)
            guard let equals = pair.firstIndex(of: "="), let value = String(pair[pair.index(after: equals)...]).removingPercentEncoding, !value.isEmpty else {
                throw PostgresURL.Invalid(description: "'\(name)' needs a value in the store URL")
            }
            switch name {
            case "sslmode":
                if value == "allow" { throw PostgresURL.Invalid(description: "sslmode=allow is not supported: use prefer, require, verify-ca or verify-full") }
                guard let mode = Mode(rawValue: value) else {
                    throw PostgresURL.Invalid(description: "unknown sslmode '\(value)': use \(Mode.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                explicitMode = mode
            case "sslrootcert": rootCertificates = value
            case "sslcert": certificate = value
            case "sslkey": key = value
            default:
                throw PostgresURL.Invalid(description: "unknown parameter '\(name)' in the store URL: the gateway reads sslmode, sslrootcert, sslcert and sslkey")
            }
        }
        if rootCertificates == "system" {
            guard explicitMode == nil || explicitMode == .verifyFull else {
                throw PostgresURL.Invalid(description: "sslrootcert=system needs sslmode=verify-full (or no sslmode)")
            }
            explicitMode = .verifyFull
        }
        mode = explicitMode ?? .prefer
        if (mode == .verifyCA || mode == .verifyFull) && rootCertificates == nil {
            throw PostgresURL.Invalid(description: "sslmode=\(mode.rawValue) needs sslrootcert=FILE (the CA certificates that sign the server's) or sslrootcert=system")
        }
        if (certificate == nil) != (key == nil) {
            throw PostgresURL.Invalid(description: "sslcert and sslkey go together (a client certificate and its private key)")
        }
        if mode == .disable && (rootCertificates != nil || certificate != nil) {
            throw PostgresURL.Invalid(description: "sslmode=disable with sslrootcert or sslcert: say which one is meant")
        }
    }
}
