import CNcurses
import CTerminalSupport
import Foundation
import Logging
import RedFireGateway
import ServiceLifecycle
import Synchronization

/// How the console runs.
public struct ConsoleOptions: Sendable {
    /// Shows everything, binds no action keys.
    public var readOnly = false
    /// Themes to cycle through with `t`; the first is used at start.
    public var themes: [Theme]
    /// Time between two data refreshes (default 250 ms: 4 Hz). Keys are handled at once regardless.
    public var refreshInterval: Duration = .milliseconds(250)
    /// Where logs go while the console owns the terminal (shown in the footer).
    public var logPath: String?
    /// The deadline of a drain started here: then the instance counts as drained and its open streams
    /// are closed (WebSocket 1001, event streams ended). Nil: none.
    public var drainDeadline: Duration? = .seconds(30)

    public init(themes: [Theme], readOnly: Bool = false, refreshInterval: Duration = .milliseconds(250), logPath: String? = nil,
                drainDeadline: Duration? = .seconds(30)) {
        self.drainDeadline = drainDeadline
        self.themes = themes
        self.readOnly = readOnly
        self.refreshInterval = refreshInterval
        self.logPath = logPath
    }
}

/// The operations console: an ncurses dashboard on its own thread, in the gateway's process.
///
/// Run it as a `Service` next to the gateway with `successTerminationBehavior: .gracefullyShutdownGroup`:
/// `run()` returns when the operator confirms quitting (or the group shuts down), and the group then
/// shuts the gateway down gracefully while the console keeps drawing the shutdown's progress. Call
/// `stop()` once the group has finished to give the terminal back.
public final class Console: Service, Sendable {
    let gateway: Gateway
    let options: ConsoleOptions
    private let shared = Mutex(Shared())
    private let logger: Logger

    private struct Shared {
        var quit: CheckedContinuation<Void, Never>?
        var quitRequested = false
        var shuttingDown = false
        var stopRequested = false
        var started = false
        var finished = false
        var finishWaiters: [CheckedContinuation<Void, Never>] = []
    }

    public init(gateway: Gateway, options: ConsoleOptions, logger: Logger) {
        self.gateway = gateway
        self.options = options
        self.logger = logger
    }

    /// Whether the console can own this process's terminal: stdin and stdout are terminals and TERM is known.
    public static func terminalAvailable() -> Bool {
        guard isatty(STDIN_FILENO) == 1, isatty(STDOUT_FILENO) == 1 else { return false }
        let term = ProcessInfo.processInfo.environment["TERM"] ?? ""
        return !term.isEmpty && term != "dumb"
    }

    /// Takes over the terminal and starts drawing (idempotent). Called by `run()`; call it earlier to
    /// show the dashboard while the gateway is still starting.
    public func start() {
        let first = shared.withLock { shared -> Bool in
            defer { shared.started = true }
            return !shared.started
        }
        guard first else { return }
        let thread = Thread { [self] in
            // Named for `top -H`, /proc and profilers (Foundation does not name the OS thread here).
            redfire_name_current_thread("redfire-console")
            self.uiLoop()
            let waiters = self.shared.withLock { shared -> [CheckedContinuation<Void, Never>] in
                shared.finished = true
                defer { shared.finishWaiters = [] }
                return shared.finishWaiters
            }
            for waiter in waiters { waiter.resume() }
        }
        thread.name = "redfire-console"
        thread.start()
    }

    public func run() async throws {
        start()
        // Ends on quit, on graceful shutdown, and on cancellation: the group cancels every service when
        // one fails (the gateway cannot listen), and the process must then exit with that error rather
        // than keep a dashboard of a gateway that never started.
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let resumeNow = shared.withLock { shared -> Bool in
                        if shared.quitRequested || shared.shuttingDown { return true }
                        shared.quit = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            } onGracefulShutdown: { [self] in
                self.beginShutdown()
            }
        } onCancel: { [self] in
            self.beginShutdown()
        }
        beginShutdown()
    }

    private func beginShutdown() {
        let continuation = shared.withLock { shared -> CheckedContinuation<Void, Never>? in
            shared.shuttingDown = true
            defer { shared.quit = nil }
            return shared.quit
        }
        continuation?.resume()
    }

    private func requestQuit() {
        let continuation = shared.withLock { shared -> CheckedContinuation<Void, Never>? in
            shared.quitRequested = true
            defer { shared.quit = nil }
            return shared.quit
        }
        continuation?.resume()
    }

    /// Stops drawing and restores the terminal; returns when it is restored.
    public func stop() async {
        let wait = shared.withLock { shared -> Bool in
            shared.stopRequested = true
            return shared.started && !shared.finished
        }
        guard wait else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = shared.withLock { shared -> Bool in
                if shared.finished { return true }
                shared.finishWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    // MARK: The UI thread (every ncurses call happens here)

    private func uiLoop() {
        let screen = TerminalScreen()
        guard screen.open() else {
            logger.error("the console could not take over the terminal; running headless")
            return
        }
        defer { screen.close() }
        var view = ViewState(themeNames: options.themes.map(\.name), readOnly: options.readOnly, logPath: options.logPath)
        view.utcOffsetSeconds = TimeZone.current.secondsFromGMT()
        var snapshot = gateway.snapshot(windowSeconds: view.window.seconds)
        var nextRefresh = ContinuousClock.now + options.refreshInterval
        var appliedTheme = -1
        var dirty = true
        while true {
            let (stop, shuttingDown) = shared.withLock { ($0.stopRequested, $0.shuttingDown || $0.quitRequested) }
            if stop { break }
            let now = ContinuousClock.now
            if now >= nextRefresh {
                if !view.paused || shuttingDown { snapshot = gateway.snapshot(windowSeconds: view.window.seconds) }
                view.now = Date()
                if shuttingDown {
                    view.shuttingDown = snapshot.inFlight
                    view.modal = nil
                    view.showHelp = false
                }
                nextRefresh = now + options.refreshInterval
                dirty = true
            }
            if appliedTheme != view.themeIndex, !options.themes.isEmpty {
                appliedTheme = view.themeIndex
                screen.apply(theme: options.themes[view.themeIndex % options.themes.count])
                dirty = true
            }
            if dirty {
                let theme = options.themes.isEmpty ? Theme(name: "", styles: [:]) : options.themes[view.themeIndex % options.themes.count]
                screen.draw(render(view, snapshot, theme: theme, capabilities: screen.capabilities, size: screen.size))
                dirty = false
            }
            let untilRefresh = (nextRefresh - ContinuousClock.now).components
            let waitMillis = max(1, min(250, Int(untilRefresh.seconds) * 1000 + Int(untilRefresh.attoseconds / 1_000_000_000_000_000)))
            guard let key = screen.readKey(timeoutMillis: waitMillis) else { continue }
            dirty = true
            if key == .resize { screen.resized() }
            if shuttingDown { continue }
            let wasPaused = view.paused
            let windowBefore = view.window
            let (next, commands) = reduce(view, key, snapshot: snapshot)
            view = next
            if view.window != windowBefore || (wasPaused && !view.paused) {
                snapshot = gateway.snapshot(windowSeconds: view.window.seconds)
            }
            for command in commands { execute(command, view: &view, snapshot: snapshot) }
            if !commands.isEmpty { snapshot = gateway.snapshot(windowSeconds: view.window.seconds) }
        }
    }

    private func execute(_ command: Command, view: inout ViewState, snapshot: GatewaySnapshot) {
        let control = gateway.control
        let actor = "console"
        do {
            switch command {
            case .drain(let service, let instance):
                try control.drain(service: service, instance: instance, deadline: options.drainDeadline, actor: actor)
                view.message = "\(instance) draining: no new requests; it reads drained when in-flight reaches 0"
                    + (options.drainDeadline.map { " or in \(Format.duration($0)), when its open streams close" } ?? "")
            case .undrain(let service, let instance):
                try control.undrain(service: service, instance: instance, actor: actor)
                view.message = "\(instance) back in rotation"
            case .setStrategy(let service, let strategy):
                try control.setStrategy(service: service, strategy: strategy, actor: actor)
                view.message = "\(service) now balances with \(strategy.rawValue)"
            case .reload:
                let result = control.reload(actor: actor)
                view.message = result.applied ? "configuration reloaded (generation \(result.generation))"
                    : "reload refused: " + (result.problems.first.map { $0.description } ?? "unknown problem")
            case .quit:
                view.shuttingDown = snapshot.inFlight
                requestQuit()
            }
        } catch {
            view.message = "\(error)"
        }
    }
}
