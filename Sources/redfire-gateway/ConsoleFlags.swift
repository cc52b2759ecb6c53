import ArgumentParser
import Foundation
import Logging
import RedFireDashboard
import RedFireGateway

/// Command-line options of the operations console (shared by `serve` and `demo`).
struct ConsoleFlags: ParsableArguments {
    @Flag(name: .long, help: "Run without the dashboard, logging to standard output (also the default when standard output is not a terminal).")
    var noTui = false

    @Flag(name: .long, help: "Show the dashboard without binding any action keys (no drain, no strategy change).")
    var readOnly = false

    @Option(name: .long, help: "Dashboard theme: a shipped name (default-dark, default-light, high-contrast, colorblind-safe, mono) or a path to a theme file.")
    var theme: String?

    @Option(name: .long, help: "Dashboard refreshes per second, 1-30 (default 4).")
    var refreshRate: Double?

    @Option(name: .long, help: "Where logs go while the dashboard owns the terminal.")
    var logFile: String?

    func validate() throws {
        if let refreshRate, !(1...30).contains(refreshRate) { throw ValidationError("--refresh-rate must be between 1 and 30") }
    }

    /// Whether this run shows the dashboard.
    var wantsConsole: Bool { !noTui && Console.terminalAvailable() }
}

/// What a run with the dashboard needs before the gateway exists: the log sink (so logging can be
/// bootstrapped to it) and the themes.
struct ConsoleSetup {
    let sink: ConsoleLogSink
    let options: ConsoleOptions

    /// - Parameter defaultLogPath: used when neither `--log-file` nor `console.log_file` is given.
    static func prepare(flags: ConsoleFlags, config: ConsoleConfig, configDirectory: String?, defaultLogPath: String, events: EventLog) throws -> ConsoleSetup {
        let themeName = flags.theme ?? config.theme
        var themes: [Theme] = []
        do {
            themes.append(try Theme.named(themeName, searchDirectories: configDirectory.map { [$0] } ?? []))
            for name in Theme.builtinNames where name != themes[0].name {
                themes.append(try Theme.named(name, searchDirectories: configDirectory.map { [$0] } ?? []))
            }
        } catch {
            printError("error: theme: \(error.description)")
            throw Exit.invalidConfig
        }
        let logPath = flags.logFile ?? config.logFile ?? defaultLogPath
        let sink: ConsoleLogSink
        do {
            sink = try ConsoleLogSink(path: logPath, events: events)
        } catch {
            printError("error: cannot write the log file \(logPath); choose another with --log-file PATH")
            throw Exit.startFailed
        }
        let rate = flags.refreshRate ?? config.refreshRate
        return ConsoleSetup(sink: sink, options: ConsoleOptions(themes: themes, readOnly: flags.readOnly || config.readOnly,
                                                                 refreshInterval: .milliseconds(Int((1000 / rate).rounded())), logPath: logPath,
                                                                 drainDeadline: config.drainDeadline))
    }
}
