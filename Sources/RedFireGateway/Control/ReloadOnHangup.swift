import Foundation
import Logging
import NIOPosix
import ServiceLifecycle
import Synchronization
import UnixSignals

/// Reloads the configuration on SIGHUP, until graceful shutdown.
struct ReloadOnHangup: Service {
    let control: GatewayControl
    /// Trapped before the server starts (`make`): a SIGHUP that arrives once the gateway says it listens
    /// must reload it, never take the default action (terminate).
    let signals: UnixSignalsSequence

    static func make(control: GatewayControl) async -> ReloadOnHangup {
        ReloadOnHangup(control: control, signals: await UnixSignalsSequence(trapping: .sighup))
    }

    func run() async throws {
        for await _ in signals.cancelOnGracefulShutdown() {
            _ = control.reload(actor: "SIGHUP")
        }
    }
}
