import NIOCore

/// One relayed WebSocket's rules as a value (RFC 6455 §5, §7): which frames pass, where a message ends
/// and how large it may grow, the closing handshake on both sides, and what the stream's one timer
/// decides — idle, maximum duration, the access token's expiry, a closing handshake that takes too long.
///
/// The gateway relays frames one for one (fragmentation, extension bits and subprotocols stay the
/// endpoints' business) and answers nothing on anyone's behalf; it speaks only to close: the peer's close
/// frame is passed on, and when the gateway itself ends a stream each side gets a close frame of its own
/// (then frames towards that side stop) and a side is cut once it answered, or at the close timeout.
///
/// Events come in with the time they happened (the event loop's clock; tests pass their own instants);
/// each returns what the tunnel must do.
struct WebSocketStreamState {
    enum Side: Hashable, CustomStringConvertible {
        case client, upstream
        var other: Side { self == .client ? .upstream : .client }
        var description: String { self == .client ? "client" : "upstream" }
    }

    /// A close frame the gateway writes itself.
    struct Close: Equatable {
        var code: UInt16
        var reason: String

        static let goingAway: UInt16 = 1001
        static let protocolError: UInt16 = 1002
        static let policyViolation: UInt16 = 1008
        static let messageTooBig: UInt16 = 1009
        static let badGateway: UInt16 = 1014
    }

    /// What the tunnel does with a frame, or after an event.
    enum Action: Equatable {
        case none
        /// Pass the frame to the other side.
        case forward
        /// Drop the frame (its side already sent its close, or the other side was told to close).
        case drop
        /// Write these close frames (nil: that side gets none), then cut the sides listed in `cut` once
        /// their writes have left.
        case close(client: Close?, upstream: Close?, cut: Set<Side>)
        /// Pass the close frame on, then cut the sides listed once written (a side that has both sent and
        /// received a close is done).
        case forwardClose(cut: Set<Side>)
        /// (Re)arm the stream's timer.
        case arm(NIODeadline)
    }

    struct Limits: Equatable {
        /// Largest message (all its fragments' payloads) from each side.
        var clientMessage: Int
        var upstreamMessage: Int
        var idle: TimeAmount
        /// The stream ends here (maximum duration), or with 1008 here (the token's expiry plus grace).
        var endAt: NIODeadline?
        var tokenExpiresAt: NIODeadline?
        var closeTimeout: TimeAmount
    }

    /// What one side has done.
    struct SideState: Equatable {
        /// Payload bytes of the message in progress, and whether it is fragmented and unfinished.
        var messageBytes = 0
        var inMessage = false
        /// The side sent its close frame (later frames from it are dropped).
        var closeReceived = false
        /// A close frame went to this side (the other side's, passed on, or the gateway's own): no data
        /// frame follows it.
        var closeSent = false
        /// Its connection is closed (or being cut).
        var gone = false
        /// Whole messages relayed from it.
        var messages = 0
    }

    let limits: Limits
    private(set) var client = SideState()
    private(set) var upstream = SideState()
    /// The last frame either way.
    private(set) var lastActivity: NIODeadline
    /// Set once any close began: sides still open are cut at this instant.
    private(set) var closingDeadline: NIODeadline?
    /// The first close code of the stream (a side's, or the gateway's) and who sent it, for telemetry.
    private(set) var closeCode: UInt16?
    private(set) var closedBy: Side?
    /// Why the gateway ended the stream, if it did.
    private(set) var endedByGateway: String?
    /// When the armed timer fires; `distantFuture` while none is armed.
    private(set) var timerAt = NIODeadline.distantFuture

    init(limits: Limits, now: NIODeadline) {
        self.limits = limits
        self.lastActivity = now
    }

    subscript(side: Side) -> SideState {
        get { side == .client ? client : upstream }
        set { if side == .client { client = newValue } else { upstream = newValue } }
    }

    /// Both sides are gone: the stream is over.
    var finished: Bool { client.gone && upstream.gone }

    /// The stream starts: its timer is armed.
    mutating func started(now: NIODeadline) -> Action {
        lastActivity = now
        return arm(now: now)
    }

    // MARK: Frames

    /// A frame arrived from `side`. `masked`: it carried a masking key (clients must mask, servers must
    /// not: RFC 6455 §5.1). `closeCode`: a close frame's status code, if it has one.
    mutating func frame(from side: Side, opcode: UInt8, fin: Bool, length: Int, masked: Bool, closeCode: UInt16? = nil,
                        now: NIODeadline) -> Action {
        guard !self[side].closeReceived, !self[side].gone else { return .drop }
        lastActivity = now
        if masked != (side == .client) {
            return protocolError(from: side, now: now, reason: side == .client ? "unmasked frame" : "masked frame from the server")
        }
        switch opcode {
        case 0x8:
            return closeFrame(from: side, code: closeCode, now: now)
        case 0x9, 0xA:
            // Ping and pong pass, so each end keeps its own keepalive; they count as traffic.
            return self[side.other].closeSent || self[side.other].gone ? .drop : .forward
        case 0x0, 0x1, 0x2:
            var state = self[side]
            if opcode == 0x0 {
                guard state.inMessage else { return protocolError(from: side, now: now, reason: "continuation without a message") }
                state.messageBytes += length
            } else {
                guard !state.inMessage else { return protocolError(from: side, now: now, reason: "new message inside a fragmented one") }
                state.messageBytes = length
            }
            state.inMessage = !fin
            if fin { state.messages += 1 }
            self[side] = state
            if state.messageBytes > (side == .client ? limits.clientMessage : limits.upstreamMessage) {
                return tooBig(from: side, now: now)
            }
            if fin { self[side].messageBytes = 0 }
            return self[side.other].closeSent || self[side.other].gone ? .drop : .forward
        default:
            return protocolError(from: side, now: now, reason: "reserved opcode")
        }
    }

    private mutating func closeFrame(from side: Side, code: UInt16?, now: NIODeadline) -> Action {
        self[side].closeReceived = true
        if closeCode == nil {
            closeCode = code ?? 1005
            closedBy = side
        }
        if closingDeadline == nil { closingDeadline = now + limits.closeTimeout }
        var cut: Set<Side> = []
        // The close goes on unless the other side was told to close already (then this one answers ours).
        let passOn = !self[side.other].closeSent && !self[side.other].gone
        if passOn { self[side.other].closeSent = true }
        // A side that sent and received a close is done (RFC 6455 §7.1.1: the server closes the TCP
        // connection first — towards the client, that is the gateway).
        for candidate in [side, side.other] where self[candidate].closeReceived && self[candidate].closeSent && !self[candidate].gone {
            self[candidate].gone = true
            cut.insert(candidate)
        }
        if passOn { return .forwardClose(cut: cut) }
        return cut.isEmpty ? .drop : .close(client: nil, upstream: nil, cut: cut)
    }

    // MARK: The gateway ends the stream

    /// The gateway ends the stream (drain deadline, shutdown, idle, maximum duration, token expiry): each
    /// side not yet told gets `close`, and has `closeTimeout` to answer.
    mutating func end(_ close: Close, now: NIODeadline) -> Action {
        if endedByGateway == nil, closeCode == nil { endedByGateway = close.reason }
        return closeBoth(client: close, upstream: close, cutAtOnce: [], now: now)
    }

    /// A side broke the protocol: it gets 1002 and is cut; the other side gets 1001.
    private mutating func protocolError(from side: Side, now: NIODeadline, reason: String) -> Action {
        let toOffender = Close(code: Close.protocolError, reason: reason)
        let toPeer = Close(code: Close.goingAway, reason: "peer protocol error")
        return closeBoth(client: side == .client ? toOffender : toPeer, upstream: side == .upstream ? toOffender : toPeer,
                         cutAtOnce: [side], now: now)
    }

    /// A side's message passed its limit: it gets 1009 (and is cut: the rest of the message is not
    /// read), the other side 1001.
    mutating func tooBig(from side: Side, now: NIODeadline) -> Action {
        let toOffender = Close(code: Close.messageTooBig, reason: "message too big")
        let toPeer = Close(code: Close.goingAway, reason: "peer sent a message too big")
        return closeBoth(client: side == .client ? toOffender : toPeer, upstream: side == .upstream ? toOffender : toPeer,
                         cutAtOnce: [side], now: now)
    }

    /// A side's frames could not be read (a frame over the limit, a malformed control frame).
    mutating func unreadable(from side: Side, tooBig: Bool, now: NIODeadline) -> Action {
        tooBig ? self.tooBig(from: side, now: now) : protocolError(from: side, now: now, reason: "malformed frame")
    }

    /// A side's connection closed. If it had not finished its closing handshake, the other side learns
    /// it with a close of the gateway's: 1001 when the client went away, 1014 when the instance did.
    mutating func connectionClosed(_ side: Side, now: NIODeadline) -> Action {
        let wasDone = self[side].closeReceived
        self[side].gone = true
        guard !self[side.other].gone else { return .none }
        if self[side.other].closeSent {
            if closingDeadline == nil { closingDeadline = now + limits.closeTimeout }
            return .none
        }
        let close = side == .client ? Close(code: Close.goingAway, reason: "client went away")
            : wasDone ? Close(code: Close.goingAway, reason: "instance closed")
            : Close(code: Close.badGateway, reason: "instance went away")
        if closeCode == nil {
            closeCode = close.code
            closedBy = side
        }
        return closeBoth(client: side == .upstream ? close : nil, upstream: side == .client ? close : nil, cutAtOnce: [], now: now)
    }

    private mutating func closeBoth(client toClient: Close?, upstream toUpstream: Close?, cutAtOnce: Set<Side>, now: NIODeadline) -> Action {
        var writeClient: Close?
        var writeUpstream: Close?
        var cut: Set<Side> = []
        for (side, close) in [(Side.client, toClient), (Side.upstream, toUpstream)] {
            guard let close, !self[side].gone, !self[side].closeSent else {
                if cutAtOnce.contains(side), !self[side].gone {
                    self[side].gone = true
                    cut.insert(side)
                }
                continue
            }
            self[side].closeSent = true
            if side == .client { writeClient = close } else { writeUpstream = close }
            if closeCode == nil {
                closeCode = close.code
                closedBy = nil
            }
            if cutAtOnce.contains(side) || self[side].closeReceived {
                self[side].gone = true
                cut.insert(side)
            }
        }
        if closingDeadline == nil { closingDeadline = now + limits.closeTimeout }
        if writeClient == nil, writeUpstream == nil, cut.isEmpty { return .none }
        return .close(client: writeClient, upstream: writeUpstream, cut: cut)
    }

    // MARK: Timer

    /// The next instant the timer must look: idle, the stream's end, the token's expiry, the close timeout.
    func nextDeadline() -> NIODeadline {
        if let closingDeadline { return closingDeadline }
        var next = lastActivity + limits.idle
        if let endAt = limits.endAt { next = min(next, endAt) }
        if let expiry = limits.tokenExpiresAt { next = min(next, expiry) }
        return next
    }

    mutating func timerFired(now: NIODeadline) -> Action {
        timerAt = .distantFuture
        if let closingDeadline {
            guard now >= closingDeadline else { return arm(now: now) }
            // The closing handshake took too long: whoever has not answered is cut.
            var cut: Set<Side> = []
            for side in [Side.client, .upstream] where !self[side].gone {
                self[side].gone = true
                cut.insert(side)
            }
            return cut.isEmpty ? .none : .close(client: nil, upstream: nil, cut: cut)
        }
        if let expiry = limits.tokenExpiresAt, now >= expiry {
            return end(Close(code: Close.policyViolation, reason: "token expired"), now: now)
        }
        if let endAt = limits.endAt, now >= endAt {
            return end(Close(code: Close.goingAway, reason: "maximum duration"), now: now)
        }
        if now >= lastActivity + limits.idle {
            return end(Close(code: Close.goingAway, reason: "idle timeout"), now: now)
        }
        return arm(now: now)
    }

    /// Arms the timer for the next deadline unless it is armed for an earlier one (an early wake-up looks
    /// again: activity only moves the idle deadline later).
    mutating func arm(now: NIODeadline) -> Action {
        let next = nextDeadline()
        guard next < timerAt || timerAt == .distantFuture else { return .none }
        timerAt = next
        return .arm(next)
    }

    mutating func timerStopped() {
        timerAt = .distantFuture
    }
}
