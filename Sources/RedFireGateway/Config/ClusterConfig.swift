/// `cluster` — several gateways sharing one PostgreSQL: operator decisions (drains with their
/// deadlines, strategies) made on any node reach every node. Absent: one process, state kept locally
/// (the embedded default; `demo` and a plain `serve` need nothing else).
public struct ClusterConfig: Sendable, Equatable {
    /// `store` — `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` (`${ENV}` for the password). Turns
    /// clustering on.
    public var store: PostgresURL?
    /// `node_name` — this gateway in the cluster: in logs, audit entries (`console@node-b`) and events.
    /// Default `HOSTNAME:PORT` of the listener.
    public var nodeName: String?
    /// `heartbeat_interval` — how often a node writes its heartbeat and reads the others'.
    public var heartbeatInterval: Duration = .seconds(1)
    /// `node_timeout` — a node whose last heartbeat is older is no longer counted (killed, cut off).
    public var nodeTimeout: Duration = .seconds(5)
    public init() {}

    public var isEnabled: Bool { store != nil }
}

/// A PostgreSQL connection URL: `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`. Its description never
/// shows the password.
public struct PostgresURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String

    public init(host: String, port: Int = 5432, user: String, password: String? = nil, database: String) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
    }

    /// nil unless the text is a `postgres://` or `postgresql://` URL with a user, a host and a database.
    /// Percent-escapes in the user and password are decoded (a password may hold `@` or `:`).
    public init?(parsing text: String) {
        let lower = text.lowercased()
        guard let schemeEnd = lower.hasPrefix("postgres://") ? text.index(text.startIndex, offsetBy: 11)
                : lower.hasPrefix("postgresql://") ? text.index(text.startIndex, offsetBy: 13) : nil else { return nil }
        let rest = text[schemeEnd...]
        guard let at = rest.lastIndex(of: "@"), let slash = rest[at...].firstIndex(of: "/") else { return nil }
        let credentials = rest[..<at]
        let hostPort = rest[rest.index(after: at)..<slash]
        var database = rest[rest.index(after: slash)...]
        if let query = database.firstIndex(of: "?") { database = database[..<query] }
        let userPart = credentials.firstIndex(of: ":").map { credentials[..<$0] } ?? credentials
        let passwordPart = credentials.firstIndex(of: ":").map { credentials[credentials.index(after: $0)...] }
        guard let user = String(userPart).removingPercentEncoding, !user.isEmpty, !database.isEmpty,
              database.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else { return nil }
        var host = String(hostPort)
        var port = 5432
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return nil }
            let after = host[host.index(after: close)...]
            if after.hasPrefix(":") { guard let parsed = Int(after.dropFirst()), (1...65535).contains(parsed) else { return nil }; port = parsed }
            else if !after.isEmpty { return nil }
            host = String(host[host.index(after: host.startIndex)..<close])
        } else if let colon = host.lastIndex(of: ":") {
            guard let parsed = Int(host[host.index(after: colon)...]), (1...65535).contains(parsed) else { return nil }
            port = parsed
            host = String(host[..<colon])
        }
        guard !host.isEmpty, !host.contains("/") else { return nil }
        self.host = host
        self.port = port
        self.user = user
        self.password = passwordPart.flatMap { String($0).removingPercentEncoding }
        self.database = String(database)
    }

    public var description: String {
        "postgres://\(user)\(password == nil ? "" : ":***")@\(host.contains(":") ? "[\(host)]" : host):\(port)/\(database)"
    }
}
