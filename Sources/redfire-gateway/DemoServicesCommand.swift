import ArgumentParser
import DemoServices
import Foundation

/// `redfire-gateway demo-services`: the demo's five services alone, for gateways run as separate
/// processes (`scripts/cluster.sh` puts three in front of one set). Runs until SIGINT or SIGTERM.
struct DemoServicesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo-services",
        abstract: "Run the five demo services (two instances each) on loopback ports, without a gateway.")

    @Option(name: .long, help: "Write their services: and routes: (configuration-file YAML) to this file.")
    var writeConfig: String?

    func run() async throws {
        let cluster = try await DemoCluster.start()
        let yaml = cluster.servicesYAML()
        if let writeConfig {
            try yaml.write(toFile: writeConfig, atomically: true, encoding: .utf8)
            print("wrote the services and routes to \(writeConfig)")
        } else {
            print(yaml, terminator: "")
        }
        print("demo services running; stop with Ctrl-C")
        fflush(nil)  // every stream: the line above reaches a pipe now
        // Until SIGINT or SIGTERM.
        let (signals, continuation) = AsyncStream<Void>.makeStream()
        var sources: [any DispatchSourceSignal] = []
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield() }
            source.resume()
            sources.append(source)
        }
        for await _ in signals { break }
        sources.forEach { $0.cancel() }
        await cluster.stop()
    }
}
