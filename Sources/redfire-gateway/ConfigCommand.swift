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
            } catch let error as ConfigError {
                printError(error.description)
                throw Exit.invalidConfig
            }
        }
    }
}
