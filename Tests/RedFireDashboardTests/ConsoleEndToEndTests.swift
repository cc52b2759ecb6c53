import AsyncHTTPClient
import Foundation
import NIOCore
import NIOPosix
import Testing

/// The real `redfire-gateway demo` with its dashboard in a real terminal (a tmux pane), driven with
/// keys, checked through the screen and the admin API.
@Suite("Console end to end", .serialized, .timeLimit(.minutes(2)))
struct ConsoleEndToEndTests {
    /// A tmux server of its own, so the test never touches the user's sessions.
    struct Tmux {
        let socket = "redfire-test-\(UUID().uuidString.prefix(8))"

        /// glibc's `posix_spawn_file_actions_addclosefrom_np` (not visible to Swift's Glibc module).
        typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        static let addCloseFrom: AddCloseFrom? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np")
            .map { unsafeBitCast($0, to: AddCloseFrom.self) }

        /// Runs `tmux -L socket ARGS` and returns its standard output. posix_spawn + waitpid: the tmux
        /// server that `new-session` starts outlives the client, so it must not inherit any of our
        /// descriptors (another test's pipe would never see end of file); everything above stderr is
        /// closed in the child.
        @discardableResult
        func run(_ arguments: [String]) throws -> String {
            let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("tmux-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: outputPath) }
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
            guard let addCloseFrom = Self.addCloseFrom else { throw POSIXError(.ENOSYS) }
            _ = addCloseFrom(&actions, 3)
            let argv = ["tmux", "-L", socket] + arguments
            var cArguments = argv.map { strdup($0) } + [nil]
            defer { for pointer in cArguments { free(pointer) } }
            // The calling thread blocks most signals (the concurrency runtime's threads do); tmux and
            // everything it starts must get a clean mask and default dispositions.
            var attributes = posix_spawnattr_t()
            posix_spawnattr_init(&attributes)
            defer { posix_spawnattr_destroy(&attributes) }
            var emptyMask = sigset_t()
            sigemptyset(&emptyMask)
            posix_spawnattr_setsigmask(&attributes, &emptyMask)
            var defaults = sigset_t()
            sigemptyset(&defaults)
            for signal in [SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGCHLD, SIGPIPE, SIGUSR1, SIGUSR2, SIGWINCH] { sigaddset(&defaults, signal) }
            posix_spawnattr_setsigdefault(&attributes, &defaults)
            posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
            var pid: pid_t = 0
            let spawned = posix_spawnp(&pid, "tmux", &actions, &attributes, &cArguments, environ)
            guard spawned == 0 else { throw POSIXError(POSIXErrorCode(rawValue: spawned) ?? .ENOENT) }
            var status: Int32 = 0
            while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
            return (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        }

        func capture() -> String { (try? run(["capture-pane", "-p", "-t", "console"])) ?? "" }
        func keys(_ keys: String...) throws { try run(["send-keys", "-t", "console"] + keys) }
        func kill() { _ = try? run(["kill-server"]) }
    }

    static var executable: String {
        let products = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [products, products.deletingLastPathComponent()].map { $0.appendingPathComponent("redfire-gateway").path }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }

    static var tmuxAvailable: Bool {
        ["/usr/bin/tmux", "/usr/local/bin/tmux"].contains { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// The port in the header's "listening 127.0.0.1:PORT" once the gateway listens (the demo runs with
    /// `--listen 127.0.0.1:0`: a port chosen here and released could be taken by any other test's server
    /// before the demo binds it).
    static func listeningPort(_ screen: String) -> Int? {
        guard let range = screen.range(of: "listening 127.0.0.1:") else { return nil }
        let port = Int(String(screen[range.upperBound...].prefix { $0.isNumber })) ?? 0
        return port > 0 ? port : nil
    }

    func waitFor(_ what: String, timeout: Duration = .seconds(60), _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        let holds = try await condition()
        #expect(holds, "timed out waiting for \(what)")
        return holds
    }

    func instanceState(_ client: HTTPClient, port: Int, token: String, id: String) async throws -> String? {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/gateway/services/user_trading")
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        let response = try await client.execute(request, timeout: .seconds(5))
        let body = try await response.body.collect(upTo: 1 << 20)
        struct Service: Decodable {
            struct Instance: Decodable {
                var id: String
                var state: String
            }
            var instances: [Instance]
        }
        return try JSONDecoder().decode(Service.self, from: body).instances.first { $0.id == id }?.state
    }

    @Test(.enabled(if: tmuxAvailable, "needs tmux"))
    func drainResizeAndQuitFromTheDashboard() async throws {
        let tmux = Tmux()
        defer { tmux.kill() }
        let token = "console-e2e-token-0123456789"
        try tmux.run(["new-session", "-d", "-s", "console", "-x", "120", "-y", "40", "env", "-i", "PATH=/usr/bin:/bin", "TERM=xterm-256color",
                      "LANG=C.UTF-8", "HOME=\(NSHomeDirectory())", "PS1=$ ", "bash", "--norc", "--noprofile"])
        try tmux.keys("REDFIRE_ADMIN_TOKEN=\(token) \(Self.executable) demo --listen 127.0.0.1:0 --rate 5; echo \"exit=$?\"", "Enter")

        // The dashboard comes up with all five services and their instances.
        let services = ["user_trading", "vnpy_core", "strategy_data", "gateway_adapter", "monitor"]
        guard try await waitFor("all five services on screen", {
            let screen = tmux.capture()
            // Both user_trading instances verified (the drain below counts the healthy ones it leaves).
            let bothHealthy = ["user_trading-1", "user_trading-2"].allSatisfy { id in
                screen.split(separator: "\n").contains { $0.contains(id) && $0.contains("healthy") }
            }
            return services.allSatisfy { screen.contains($0) } && bothHealthy && Self.listeningPort(screen) != nil
        }), let port = Self.listeningPort(tmux.capture()) else {
            Issue.record("screen:\n\(tmux.capture())")
            return
        }

        // Select user_trading-1 (the row under its service), drain it, confirm.
        try tmux.keys("Down")
        try tmux.keys("d")
        _ = try await waitFor("the drain confirmation") { tmux.capture().contains("Drain user_trading-1?") }
        #expect(tmux.capture().contains("Leaves 1 healthy instance of user_trading"))
        try tmux.keys("Tab")
        try tmux.keys("Enter")

        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let drained = try await waitFor("user_trading-1 drained in /gateway/services") {
            try await instanceState(client, port: port, token: token, id: "user_trading-1") == "drained"
        }
        // The action is audited as done by the console.
        var audit = HTTPClientRequest(url: "http://127.0.0.1:\(port)/gateway/audit")
        audit.headers.add(name: "Authorization", value: "Bearer \(token)")
        let auditBody = try await client.execute(audit, timeout: .seconds(5)).body.collect(upTo: 1 << 20)
        let auditText = String(buffer: auditBody)
        try await client.shutdown()
        #expect(drained)
        #expect(auditText.contains("\"actor\":\"console\"") && auditText.contains("user_trading-1") && auditText.contains("\"action\":\"drain\""), "audit: \(auditText)")
        _ = try await waitFor("the screen to say drained") {
            tmux.capture().split(separator: "\n").contains { $0.contains("user_trading-1") && $0.contains("drained") }
        }

        // Resize live: smaller than the minimum shows what it needs, back to a usable size redraws.
        try tmux.run(["resize-window", "-t", "console", "-x", "70", "-y", "20"])
        _ = try await waitFor("the too-small screen") { tmux.capture().contains("terminal too small: need 80×24") }
        try tmux.run(["resize-window", "-t", "console", "-x", "100", "-y", "30"])
        _ = try await waitFor("the dashboard at 100×30") {
            let screen = tmux.capture()
            return screen.contains("user_trading-1") && !screen.contains("too small") && screen.split(separator: "\n").allSatisfy { $0.count <= 100 }
        }

        // Quit: asks first, then shuts down gracefully and gives the terminal back.
        try tmux.keys("q")
        _ = try await waitFor("the quit confirmation") { tmux.capture().contains("Quit RedFire Gateway?") }
        try tmux.keys("Tab")
        try tmux.keys("Enter")
        let exited = try await waitFor("the process to exit") { tmux.capture().contains("\nexit=") }
        let screen = tmux.capture()
        #expect(exited)
        #expect(screen.contains("exit=0"), "screen:\n\(screen)")
        #expect(!screen.contains("Services 5"), "the dashboard is gone: \(screen)")
        // The shell is usable again: it echoes what we type.
        try tmux.keys("echo shell-is-back", "Enter")
        _ = try await waitFor("a working shell") { tmux.capture().contains("\nshell-is-back") }
    }

    /// Starts the demo with its dashboard in a fresh pane and waits until it shows; returns the
    /// demo's process id.
    func startDemo(_ tmux: Tmux, environment: [String] = []) async throws -> pid_t? {
        try tmux.run(["new-session", "-d", "-s", "console", "-x", "100", "-y", "30", "env", "-i", "PATH=/usr/bin:/bin", "TERM=xterm-256color",
                      "LANG=C.UTF-8", "HOME=\(NSHomeDirectory())", "PS1=$ "] + environment + ["bash", "--norc", "--noprofile"])
        try tmux.keys("\(Self.executable) demo --listen 127.0.0.1:0 --rate 5; echo \"exit=$?\"", "Enter")
        guard try await waitFor("the dashboard", { tmux.capture().contains("Services 5") }) else { return nil }
        let shell = pid_t(try tmux.run(["list-panes", "-t", "console", "-F", "#{pane_pid}"]).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        // The demo is the shell's only child.
        let children = (try? String(contentsOfFile: "/proc/\(shell)/task/\(shell)/children", encoding: .utf8)) ?? ""
        return children.split(separator: " ").first.flatMap { pid_t($0) }
    }

    @Test(.enabled(if: tmuxAvailable, "needs tmux"))
    func sigtermShutsDownGracefullyAndRestoresTheTerminal() async throws {
        let tmux = Tmux()
        defer { tmux.kill() }
        guard let pid = try await startDemo(tmux) else { Issue.record("no demo process"); return }
        kill(pid, SIGTERM)
        _ = try await waitFor("the process to exit") { tmux.capture().contains("\nexit=") }
        let screen = tmux.capture()
        #expect(screen.contains("exit=0"), "screen:\n\(screen)")
        #expect(!screen.contains("Services 5"))
    }

    @Test(.enabled(if: tmuxAvailable, "needs tmux"))
    func aPortInUseEndsTheDashboardWithTheMessage() async throws {
        let tmux = Tmux()
        defer { tmux.kill() }
        // Held listening for the whole test, so the demo's gateway cannot bind it.
        let holder = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(holder.localAddress?.port)
        try tmux.run(["new-session", "-d", "-s", "console", "-x", "100", "-y", "30", "env", "-i", "PATH=/usr/bin:/bin", "TERM=xterm-256color",
                      "LANG=C.UTF-8", "HOME=\(NSHomeDirectory())", "PS1=$ ", "bash", "--norc", "--noprofile"])
        try tmux.keys("\(Self.executable) demo --listen 127.0.0.1:\(port) --rate 5; echo \"exit=$?\"", "Enter")
        let exited = try await waitFor("the process to exit") { tmux.capture().contains("\nexit=") }
        let screen = tmux.capture()
        #expect(exited)
        #expect(screen.contains("exit=3"), "screen:\n\(screen)")
        #expect(screen.contains("already in use") && screen.contains("--listen"), "screen:\n\(screen)")
        #expect(!screen.contains("Services 5"), "the dashboard is gone: \(screen)")
        try await holder.close()
    }

    @Test(.enabled(if: tmuxAvailable, "needs tmux"))
    func aCrashRestoresTheTerminalBeforeTheCrashReport() async throws {
        let tmux = Tmux()
        defer { tmux.kill() }
        // A segmentation fault delivered from outside stands in for any crash of the process.
        guard let pid = try await startDemo(tmux, environment: ["SWIFT_BACKTRACE=enable=yes,interactive=no,symbolicate=off"]) else {
            Issue.record("no demo process")
            return
        }
        kill(pid, SIGSEGV)
        _ = try await waitFor("the process to die", timeout: .seconds(90)) { tmux.capture().contains("\nexit=") }
        let screen = try tmux.run(["capture-pane", "-p", "-t", "console", "-S", "-200"])
        #expect(screen.contains("exit=139"), "killed by SIGSEGV: \(screen)")
        #expect(screen.contains("Crash") || screen.contains("SIGSEGV") || screen.contains("Thread"), "the crash report printed on the normal screen:\n\(screen)")
        #expect(!tmux.capture().contains("Services 5"), "the dashboard is gone")
        try tmux.keys("echo shell-is-back", "Enter")
        _ = try await waitFor("a working shell") { tmux.capture().contains("\nshell-is-back") }
    }
}
