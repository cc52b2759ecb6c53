import ArgumentParser
import RedFireGateway

struct OpenAPICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "openapi",
        abstract: "Print the OpenAPI 3.1 document of the gateway's own API (the one served at /gateway/openapi.json)."
    )

    func run() throws {
        print(GatewayAPIDocument.openAPIJSON)
    }
}
