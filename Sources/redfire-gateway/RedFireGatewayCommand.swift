import ArgumentParser
import Foundation
import Logging
import RedFireDashboard
import RedFireGateway

@main
struct RedFireGatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redfire-gateway",
        abstract: "RedFire Gateway: the API gateway of the RedFire trading platform.",
        discussion: """
        Exit codes: 0 success; 1 invalid configuration; 2 bad command line; 3 the gateway could not start \
        (for example its port is in use).
        """,
        version: GatewayVersion.current,
        subcommands: [Serve.self, Demo.self, DemoServicesCommand.self, ConfigCommand.self, UsersCommand.self, KeysCommand.self, OpenAPICommand.self]
    )
}

/// Exit codes documented in the command's help and in docs/operations.md.
enum Exit {
    static let invalidConfig = ExitCode(1)
    static let startFailed = ExitCode(3)
}

struct LoggingOptions: ParsableArguments {
    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    /// Sends logs to standard output, or to the console's sink while the dashboard owns the terminal.
    func bootstrap(console sink: ConsoleLogSink? = nil) throws -> Logger {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("unknown log level \"\(logLevel)\"")
        }
        LoggingSystem.bootstrap { label in
            if let sink { return ConsoleLogHandler(label: label, sink: sink, level: level) }
            var handler = StreamLogHandler.standardOutput(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "redfire.gateway")
        logger.logLevel = level
        return logger
    }
}

func parseListen(_ text: String?) throws -> ListenAddress? {
    guard let text else { return nil }
    guard let address = ListenAddress(parsing: text) else {
        throw ValidationError("--listen expects HOST:PORT, e.g. 127.0.0.1:8080")
    }
    return address
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// One line on standard output, written at once (not held in a buffer while the process runs on).
func printLine(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
