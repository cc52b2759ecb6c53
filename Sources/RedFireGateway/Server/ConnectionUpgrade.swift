import NIOCore
import Synchronization

/// The protocol switch of one HTTP/1.1 connection (RFC 9110 §7.8, RFC 6455 §4): offered to a request
/// that asks to upgrade, taken by whoever answers it with `101 Switching Protocols`. Once the 101 is
/// written, the connection's HTTP handlers leave the pipeline and the installer puts what speaks the new
/// protocol in their place; bytes the client sent after its request (read already, never parsed as
/// HTTP) reach it first. The server knows nothing of the new protocol.
final class ConnectionUpgrade: Sendable {
    typealias Installer = @Sendable (any Channel) throws -> Void

    private let installer = Mutex<Installer?>(nil)

    /// Called by the responder that answers with 101, before it returns the response. Runs on the
    /// connection's event loop with the channel stripped of its HTTP handlers; a throw closes it.
    func accept(_ install: @escaping Installer) {
        installer.withLock { $0 = install }
    }

    /// The installer, once: the connection switches at most once.
    func take() -> Installer? {
        installer.withLock { value in
            defer { value = nil }
            return value
        }
    }
}
