import Foundation
import Atomics
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// Closes the upstream connection pools once the server has drained (services stop in reverse order).
struct TransportShutdown: Service {
    let transport: any UpstreamTransport

    func run() async throws {
        try? await gracefulShutdown()
        await transport.shutdown()
    }
}
