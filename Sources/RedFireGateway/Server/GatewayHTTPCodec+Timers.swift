import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// A client paused its request body longer than `limits.body_timeout`.
struct RequestBodyTimeout: Error {}

/// One self-re-arming timer per connection: header, body, body-rate and idle deadlines.
extension GatewayHTTPCodec {
    func becameIdle(context: ChannelHandlerContext) {
        let now = NIODeadline.now()
        idleSince = now
        headSince = nil
        headBytesSeen = false
        if timer == nil { schedule(context: context, at: now + min(settings.headerTimeout, settings.idleTimeout)) }
    }

    func schedule(context: ChannelHandlerContext, at deadline: NIODeadline) {
        timerAt = deadline
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            timer = nil
            timerFired()
        }
    }

    /// How soon the body timer looks again: at the pause deadline, or sooner while the rate is checked.
    var nextBodyCheck: TimeAmount {
        settings.minBodyRate > 0 ? min(settings.bodyTimeout, .nanoseconds(ConnectionSettings.bodyRateGrace.nanoseconds / 2)) : settings.bodyTimeout
    }

    /// A body that keeps moving too slowly to matter (slowloris on the body: a byte every few seconds
    /// never trips `body_timeout`): under `min_body_rate` on average, counted after the grace period and
    /// without the time the gateway held reads off.
    func bodyTooSlow(now: NIODeadline) -> Bool {
        guard settings.minBodyRate > 0, let bodyStart else { return false }
        let active = (now - bodyStart) - bodyHeld
        guard active >= ConnectionSettings.bodyRateGrace else { return false }
        return Double(bodyBytes) / (Double(active.nanoseconds) / 1e9) < Double(settings.minBodyRate)
    }

    func timerFired() {
        guard let context, !outboundClosed else { return }
        if pending > 0 {
            // A request in progress: only a body the client has paused is timed.
            guard readingBody, let bodySince else { return }
            let now = NIODeadline.now()
            guard readOutstanding else {
                // Reads are held off: not the client's pause. Asking for more restarts the count.
                schedule(context: context, at: now + settings.bodyTimeout)
                return
            }
            let deadline = bodySince + settings.bodyTimeout
            if now < deadline, !bodyTooSlow(now: now) {
                schedule(context: context, at: min(deadline, now + nextBodyCheck))
                return
            }
            // Whoever reads the body fails with the timeout (the forwarder answers 408, the instance is
            // not blamed); the connection closes after that response — the rest cannot be read.
            self.bodySince = nil
            bodyStart = nil
            readingBody = false
            inboundClosed = true
            closeAfterResponse = true
            context.fireErrorCaught(RequestBodyTimeout())
            return
        }
        guard let idleSince else { return }
        let now = NIODeadline.now()
        if let headSince {
            let deadline = headSince + settings.headerTimeout
            if now >= deadline {
                if headBytesSeen {
                    refuse(.requestTimeout, requestID: nil, context: context)
                } else {
                    close(context: context)
                }
                return
            }
            schedule(context: context, at: deadline)
        } else {
            let deadline = idleSince + settings.idleTimeout
            if now >= deadline {
                close(context: context)
                return
            }
            // Bytes may start a header section before the idle deadline: never sleep past its timeout.
            schedule(context: context, at: min(deadline, now + settings.headerTimeout))
        }
    }
}
