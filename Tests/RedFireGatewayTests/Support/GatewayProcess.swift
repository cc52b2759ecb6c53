import Foundation
import Testing

/// The real `redfire-gateway` executable, run as a child process.
final class GatewayProcess: Sendable {
    let child: ChildProcess

    static var executable: URL {
        // The test bundle sits in the build products folder next to the executable.
        let products = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [products, products.deletingLastPathComponent()].map { $0.appendingPathComponent("redfire-gateway") }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[0]
    }

    /// - Parameter input: written to the child's standard input, which is then closed.
    /// - Parameter environment: added to this process's environment for the child.
    /// - Parameter openFileLimit: the child runs with this soft and hard `RLIMIT_NOFILE` (`ulimit -n`
    ///   in a shell that then execs the gateway, so the process is the gateway itself).
    init(_ arguments: [String], input: String? = nil, environment: [String: String] = [:], openFileLimit: Int? = nil) throws {
        let argv = if let openFileLimit {
            ["/bin/sh", "-c", "ulimit -n \(openFileLimit) && exec \"$0\" \"$@\"", Self.executable.path] + arguments
        } else {
            [Self.executable.path] + arguments
        }
        child = try ChildProcess(argv, environment: environment, input: input)
        // A test that fails before it stops its child still leaves no gateway process behind.
        let child = child
        TestResources.register { child.terminate() }
    }

    var pid: pid_t { child.pid }
    var isRunning: Bool { child.isRunning }

    /// The port from the `listening on http://HOST:PORT` line, once printed.
    func listeningPort() async throws -> Int {
        await waitUntil("listening") { output.contains("\nlistening on ") || output.hasPrefix("listening on ") }
        let line = try #require(output.split(separator: "\n").first { $0.hasPrefix("listening on http://") || $0.hasPrefix("listening on https://") }, "\(output)\n\(errorOutput)")
        return try #require(line.split(separator: ":").last.flatMap { Int($0) }, "\(line)")
    }

    var output: String { child.output }
    var errorOutput: String { child.errorOutput }

    /// The exit code once the process has exited by itself and its output is read to the end; nil when
    /// it did not exit within the timeout (it is then terminated) or a signal ended it.
    func waitForExit(timeout: Duration = .seconds(30)) async -> Int32? {
        await waitUntil(timeout: timeout, "process exit") { !child.isRunning }
        guard !child.isRunning else {
            child.terminate()
            return nil
        }
        // Everything the child wrote is read once both pipes reach end of file.
        await waitUntil(timeout: .seconds(5), "output read to the end") { child.outputFinished }
        return child.exitCode
    }

    static func run(_ arguments: [String], input: String? = nil, environment: [String: String] = [:]) async throws -> (status: Int32?, stdout: String, stderr: String) {
        let child = try GatewayProcess(arguments, input: input, environment: environment)
        let status = await child.waitForExit()
        return (status, child.output, child.errorOutput)
    }
}
