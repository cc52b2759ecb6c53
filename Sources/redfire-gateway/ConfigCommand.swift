import ArgumentParser
import RedFireGateway

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Work with configuration files.",
        subcommands: [Check.self]
    )

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a configuration: exit 0 if it is usable, else print every problem with its key path and exit 1."
        )

        @Argument(help: "Path to the YAML configuration.")
        var file: String

        func run() throws {
            do {
                let config = try GatewayConfig.load(path: file)
                let instances = config.services.reduce(0) { $0 + $1.instances.count }
                print("\(file): OK (\(config.services.count) services, \(instances) instances, \(config.routes.count) routes)")
                // Usable, but soon not: a certificate that expires within 14 days.
                for (index, listener) in config.listeners.enumerated() {
                    guard let tls = listener.tls, let material = try? ServerTLSMaterial(tls) else { continue }
                    for warning in material.expiryWarnings() { printError("warning: listeners[\(index)].tls.\(warning)") }
                }
            } catch let error as ConfigError {
                printError(error.description)
                throw Exit.invalidConfig
            }
        }
    }
}
