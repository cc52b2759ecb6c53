import NIOCore
import Synchronization

/// How whoever waits for an upstream exchange gives it up. The exchange attaches its connection while
/// it runs; `abandon()` closes that connection — the instance sees the request aborted, and the wait
/// ends at once — and makes any later attach fail, so an exchange that had not started yet never starts.
///
/// A request is abandoned when its client hangs up (`GatewayRequestHandler`, idempotent requests only);
/// a health check when its task is cancelled. It is not a task cancellation handler on the request path:
/// `withTaskCancellationHandler` runs its operation with its caller's isolation — none, for a request's
/// worker — so every exchange hopped off the loop's executor and back (three executor switches per
/// proxied request, each a look-up of the task's executor preference under its status lock), and
/// registered and removed a status record.
///
/// A request loop (a connection's, an HTTP/2 stream's) keeps one, renewed for each request it starts
/// (`renew()`: a request starts only after the previous one's exchange is over); a health check makes
/// its own.
final class ExchangeAbandonment: Sendable {
    private struct State {
        var channel: (any Channel)?
        var abandoned = false
    }

    private let state = Mutex(State())

    /// Sent through the attached connection's pipeline when it is abandoned: the upstream connection's
    /// handler ends the exchange's wait with it at once (closing the connection may take longer).
    struct Abandoned: Error {}

    init() {}

    var isAbandoned: Bool { state.withLock { $0.abandoned } }

    /// Ends the attached exchange, if any, and closes its connection; refuses every later one.
    func abandon() {
        let channel = state.withLock { state -> (any Channel)? in
            state.abandoned = true
            let channel = state.channel
            state.channel = nil
            return channel
        }
        guard let channel else { return }
        channel.pipeline.fireUserInboundEventTriggered(Abandoned())
        channel.close(promise: nil)
    }

    /// The exchange on `channel` begins; false when it was abandoned already (the exchange must not start).
    func attach(_ channel: any Channel) -> Bool {
        state.withLock { state in
            guard !state.abandoned else { return false }
            state.channel = channel
            return true
        }
    }

    /// The exchange on `channel` is over: an abandonment no longer concerns its connection.
    func detach(_ channel: any Channel) {
        state.withLock { state in
            if state.channel === channel { state.channel = nil }
        }
    }

    /// A new request of the same loop: not abandoned, nothing attached.
    func renew() {
        state.withLock { $0 = State() }
    }
}
