import Foundation
import Yams

/// The OpenAPI 3.1 document of the gateway's own API, served at `/gateway/openapi.json` and printed
/// by `redfire-gateway openapi`. Written as data in `docs/openapi.yaml` (shared responses, parameters
/// and security in `components`) and embedded by `scripts/embed-openapi.sh`; tests check the embedded
/// copy against the file and the document against both routers; `.ci/run` validates it with
/// openapi-spec-validator.
enum OpenAPIDocument {
    /// The document as JSON (sorted keys), converted from the embedded YAML once, on first use.
    static let json: String = {
        do {
            let object = try Yams.load(yaml: yaml) ?? [:]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            return String(decoding: data, as: UTF8.self)
        } catch {
            // The embedded text is the tested docs/openapi.yaml: this cannot fail in a built binary.
            preconditionFailure("the embedded OpenAPI document is not valid YAML: \(error)")
        }
    }()
}

/// Public access to the gateway's API description.
public enum GatewayAPIDocument {
    /// The OpenAPI 3.1 document, as served at `/gateway/openapi.json`.
    public static var openAPIJSON: String { OpenAPIDocument.json }
}
