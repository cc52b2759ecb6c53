#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import HTTPTypes

/// The client's address: the TCP peer, unless the peer is a trusted proxy — then `X-Forwarded-For`
/// read right to left, skipping trusted hops; the first untrusted address is the client. A header from
/// an untrusted peer changes nothing, so a client cannot choose its own rate-limit key.
enum ClientAddress {
    static func resolve(peer: String?, fields: HTTPFields, trusted: [CIDR]) -> String? {
        guard let peer, isTrusted(peer, trusted: trusted) else { return peer }
        let hops = fields[values: .forwardedFor].flatMap { $0.split(separator: ",") }.map { String($0.trimmingASCIISpaces()) }
        var client = peer
        for hop in hops.reversed() {
            guard let bytes = CIDR.bytes(hop) else { return client }  // garbage: stop at the last good hop
            client = hop
            if !trusted.contains(where: { $0.contains(bytes) }) { return hop }
        }
        return client
    }

    /// Whether the TCP peer is one of `trusted_proxies` (whose forwarding fields are believed).
    static func isTrusted(_ peer: String?, trusted: [CIDR]) -> Bool {
        guard let peer, !trusted.isEmpty, let bytes = CIDR.bytes(peer) else { return false }
        return trusted.contains { $0.contains(bytes) }
    }
}
