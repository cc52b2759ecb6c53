import Foundation
import Synchronization

@testable import RedFireGateway

/// A throw-away PostgreSQL server for the cluster tests, started once per test process: `initdb` in a
/// temporary directory (as the `postgres` user when the tests run as root, as CI does), `pg_ctl start`
/// on a free loopback port, stopped when the process exits. Each test gets an empty database of its own.
/// Debian's `postgresql` package provides the binaries; `.ci/run` installs it. Without them the cluster
/// tests are skipped — except under CI (`CI` set), where they must run.
enum TestPostgres {
    static let binDirectory: String? = {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init).sorted()
        return versions.reversed().map { "\(root)/\($0)/bin" }.first { FileManager.default.isExecutableFile(atPath: "\($0)/initdb") }
    }()

    static var required: Bool { ProcessInfo.processInfo.environment["CI"] != nil }
    static var available: Bool { binDirectory != nil }

    struct Server: Sendable {
        let port: Int
        let directory: String
        /// More `postgres` options (TLS).
        var options = ""
        var data: String { directory + "/data" }

        /// `pg_ctl start` (again) on the same port and data.
        func startProcess() throws {
            let options = "-p \(port) -k \(directory) -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 " + self.options
            try run("pg_ctl", ["-D", data, "-l", directory + "/server.log", "-w", "-t", "60", "-o", options, "start"], asServerUser: true)
        }

        /// A real stop (`pg_ctl stop -m fast`): connections are closed, new ones refused.
        func stopProcess() throws {
            try run("pg_ctl", ["-D", data, "-m", "fast", "-w", "stop"], asServerUser: true)
        }

        /// Every process of the server (the postmaster and its backends) stopped with SIGSTOP: connections
        /// stay open and nothing answers — a hung or partitioned store. `resume` sends SIGCONT.
        func pause() throws { try signalAll(SIGSTOP) }
        func resume() throws { try signalAll(SIGCONT) }

        private func signalAll(_ signal: Int32) throws {
            let pidFile = try String(contentsOfFile: data + "/postmaster.pid", encoding: .utf8)
            guard let postmaster = pidFile.split(separator: "\n").first.flatMap({ pid_t($0) }) else { throw Failure(description: "no postmaster.pid") }
            var pids = [postmaster]
            // Its children, from /proc (the backends of open connections among them).
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
                guard let pid = pid_t(entry), let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                      let close = stat.lastIndex(of: ")") else { continue }
                let fields = stat[stat.index(after: close)...].split(separator: " ")
                if fields.count > 1, pid_t(fields[1]) == postmaster { pids.append(pid) }
            }
            // Children first when stopping (nothing is left half-answering), the postmaster first when resuming.
            for pid in signal == SIGSTOP ? pids.reversed() : pids { kill(pid, signal) }
        }

        /// A new, empty database on this server.
        func database() throws -> PostgresURL {
            let name = "t_" + UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: "_")
            try run("createdb", ["-h", "127.0.0.1", "-p", String(port), "-U", "redfire", name])
            return PostgresURL(host: "127.0.0.1", port: port, user: "redfire", database: name)
        }

        /// Runs SQL as the superuser on the server's `postgres` database (psql over its socket).
        func administer(_ sql: String) throws {
            try run("psql", ["-h", directory, "-p", String(port), "-U", "redfire", "-d", "postgres", "-At", "-c", sql])
        }
    }

    static let server = Task<Server, any Error> { try startServer() }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Runs a PostgreSQL program, as `postgres` when this process is root (the server refuses root), and
    /// returns what it printed. Output goes to a file, not a pipe: `pg_ctl start` leaves a daemon behind.
    @discardableResult
    static func run(_ program: String, _ arguments: [String], asServerUser: Bool = false) throws -> String {
        guard let bin = binDirectory else { throw Failure(description: "PostgreSQL is not installed (apt-get install postgresql)") }
        let argv = asServerUser && getuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--", "\(bin)/\(program)"] + arguments
            : ["\(bin)/\(program)"] + arguments
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("redfire-pg-out-\(UUID().uuidString)").path
        defer { unlink(outputPath) }
        let status = try ChildProcess(argv, output: .file(outputPath)).waitUntilExit()
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        guard status == 0 else { throw Failure(description: "\(program) \(arguments.joined(separator: " ")) failed (status \(status.map(String.init) ?? "signal")): \(text)") }
        return text
    }

    /// Data directories of servers still running, stopped (and their directories removed) when the
    /// process exits.
    static let running = Mutex<[String]>([])

    /// TLS for a server of its own: its certificate, the authority whose client certificates it accepts,
    /// and the `pg_hba.conf` that replaces initdb's (e.g. `hostssl` lines only: no plain connections).
    struct ServerTLS {
        let certificate: TestCertificate
        let clientAuthority: TestAuthority
        let hba: String
        /// Addresses it listens on (all on loopback).
        var listen = "127.0.0.1"
    }

    /// A server of its own (`initdb`, `pg_ctl start` on a free port), for a test that stops or pauses it
    /// or needs TLS.
    static func startServer(tls: ServerTLS? = nil) throws -> Server {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("redfire-pg-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if getuid() == 0, let user = getpwnam("postgres") {
            guard chown(directory, user.pointee.pw_uid, user.pointee.pw_gid) == 0 else { throw Failure(description: "cannot hand \(directory) to postgres") }
        }
        let data = directory + "/data"
        try run("initdb", ["-D", data, "-U", "redfire", "--auth=trust", "-E", "UTF8", "--no-sync"], asServerUser: true)
        var server = Server(port: try freePort(), directory: directory)
        if let tls {
            try tls.certificate.write(certificate: directory + "/server.crt", key: directory + "/server.key")
            try tls.clientAuthority.write(to: directory + "/client-ca.crt")
            try tls.hba.write(toFile: data + "/pg_hba.conf", atomically: true, encoding: .utf8)
            if getuid() == 0, let user = getpwnam("postgres") {
                for file in ["/server.crt", "/server.key", "/client-ca.crt", "/data/pg_hba.conf"] {
                    chown(directory + file, user.pointee.pw_uid, user.pointee.pw_gid)
                }
            }
            server.options = "-c ssl=on -c ssl_cert_file=\(directory)/server.crt -c ssl_key_file=\(directory)/server.key "
                + "-c ssl_ca_file=\(directory)/client-ca.crt -c listen_addresses=\(tls.listen)"
        }
        try server.startProcess()
        let first = running.withLock { running -> Bool in
            running.append(data)
            return running.count == 1
        }
        if first {
            atexit {
                for data in TestPostgres.running.withLock({ $0 }) {
                    _ = try? TestPostgres.run("pg_ctl", ["-D", data, "-m", "immediate", "stop"], asServerUser: true)
                    // Each cluster is some 40 MB: none stays behind.
                    try? FileManager.default.removeItem(atPath: (data as NSString).deletingLastPathComponent)
                }
            }
        }
        return server
    }

    static func freePort() throws -> Int {
        let socket = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) == 0 && getsockname(socket, $0, &length) == 0 }
        }
        guard bound else { throw Failure(description: "no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// A new, empty database on the server, as a `cluster.store` URL.
    static func database() async throws -> PostgresURL {
        try await server.value.database()
    }

    /// Runs SQL on a test database (psql), e.g. to look at what the gateways wrote.
    static func psql(_ url: PostgresURL, _ sql: String) throws -> String {
        try run("psql", ["-h", url.host, "-p", String(url.port), "-U", url.user, "-d", url.database, "-At", "-c", sql])
    }
}
