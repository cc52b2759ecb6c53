import HTTPTypes

/// The client-supplied request fields that never reach a service: claims about the client's address,
/// the original request or the user that frameworks and services are known to trust. Names compare
/// without case, with `-`, `_` and `.` alike. Built once per configuration (`client_headers`).
struct ClientHeaderFilter: Sendable {

    static let standard = ClientHeaderFilter(ClientHeadersConfig())

    private let names: Set<String>
    /// Per first byte, a bit per name length (below 64) that some name has: most fields are passed
    /// without hashing their name.
    private let quick: [UInt64]

    init(_ config: ClientHeadersConfig) {
        let keep = Set(config.keep.map(ClientHeadersConfig.normalize))
        let names = Set((ClientHeadersConfig.builtIn + config.strip).map(ClientHeadersConfig.normalize)).subtracting(keep)
        var quick = [UInt64](repeating: 0, count: 256)
        for name in names {
            let count = name.utf8.count
            quick[Int(name.utf8.first!)] |= count < 64 ? 1 << UInt64(count) : 1 << 63
        }
        self.names = names
        self.quick = quick
    }

    func removes(_ name: HTTPField.Name) -> Bool {
        let canonical = name.canonicalName
        let utf8 = canonical.utf8
        guard let first = utf8.first else { return false }
        let count = utf8.count
        guard quick[Int(first)] & (count < 64 ? 1 << UInt64(count) : 1 << 63) != 0 else { return false }
        if utf8.contains(where: { $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") }) { return names.contains(ClientHeadersConfig.normalize(canonical)) }
        return names.contains(canonical)
    }
}
