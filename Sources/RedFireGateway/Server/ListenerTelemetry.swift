#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import Synchronization

/// The listener's side of telemetry: open client connections and accepts refused for want of descriptors.
struct ListenerTelemetry: Sendable {
    let connections: ConnectionCount
    let acceptPressure: AcceptPressure
    /// Per listener: open connections by protocol, TLS handshakes and certificates.
    var listeners: [ListenerRuntime] = []
}
