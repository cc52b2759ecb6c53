import Logging
import NIOCore
import NIOWebSocket

/// One relayed WebSocket: the client's connection and the instance's, both on one event loop, each
/// with NIO's frame decoder and encoder and a `WebSocketRelay` that hands frames to this tunnel:
///
/// ```
/// client ⇄ [TLS] ⇄ WebSocketFrameDecoder/Encoder ⇄ WebSocketRelay(client) ─┐
///                                                                          WebSocketTunnel (rules: WebSocketStreamState)
/// instance ⇄ [TLS] ⇄ WebSocketFrameDecoder/Encoder ⇄ WebSocketRelay(upstream) ─┘
/// ```
///
/// Frames pass one for one — the client's unmasked and masked again for the instance (RFC 6455 §5.3),
/// the instance's as they came — so fragmentation, extensions (permessage-deflate's RSV1) and
/// subprotocols stay the endpoints' own. Back-pressure: while one side cannot take more (its write
/// buffer is over the high mark), the other side's socket is not read; what is held is bounded by the
/// write buffers and one frame (at most the message limit). Confined to the event loop.
final class WebSocketTunnel: NIOScheduledCallbackHandler, EndableStream, @unchecked Sendable {
    /// What the stream reports when it is over (the access log line of its upgrade request).
    struct Outcome {
        var closeCode: UInt16
        var endedBy: String
        var duration: Duration
        var bytesIn: Int
        var bytesOut: Int
        var messagesIn: Int
        var messagesOut: Int
    }

    let eventLoop: any EventLoop
    private var state: WebSocketStreamState
    /// Per side: its relay, whether its connection is still open, has frames written and not flushed,
    /// has its reading paused until the other side can take more, and the last close frame written to it
    /// (it is cut only once that has left). Two fixed slots: this is touched for every frame.
    private struct Slot {
        var relay: WebSocketRelay?
        var open = false
        var unflushed = false
        var paused = false
        var closeWrite: EventLoopFuture<Void>?
    }
    private var client = Slot()
    private var upstream = Slot()

    private subscript(side: WebSocketStreamState.Side) -> Slot {
        get { side == .client ? client : upstream }
        set { if side == .client { client = newValue } else { upstream = newValue } }
    }

    private func relay(_ side: WebSocketStreamState.Side) -> WebSocketRelay? {
        side == .client ? client.relay : upstream.relay
    }
    private var timer: NIOScheduledCallback?
    private var started = false
    private var finished = false
    private let startedAt = ContinuousClock.now

    /// Where traffic is counted: the route, the service and the instance.
    private let telemetry: [StreamTelemetry]
    /// Traffic not yet reported, and when it last was: reported at most every `reportInterval`.
    private var lastReport: NIODeadline
    private static let reportInterval = TimeAmount.milliseconds(250)
    private var pendingIn = (messages: 0, bytes: 0)
    private var pendingOut = (messages: 0, bytes: 0)
    private var totalIn = (messages: 0, bytes: 0)
    private var totalOut = (messages: 0, bytes: 0)
    /// The instance's open streams and the gateway's: drain deadlines and shutdown end them.
    private let registries: [OpenStreams]
    /// Keeps the instance's in-flight count while the stream is open (balancing and drain see it).
    private var hold: InFlightHold?
    private let onFinish: (Outcome) -> Void
    private let logger: Logger
    /// True once the access token that opened the stream is revoked (checked by the maintenance loop).
    private let revoked: (@Sendable () -> Bool)?

    init(eventLoop: any EventLoop, limits: WebSocketStreamState.Limits, telemetry: [StreamTelemetry], registries: [OpenStreams],
         hold: InFlightHold?, revoked: (@Sendable () -> Bool)? = nil, logger: Logger, onFinish: @escaping (Outcome) -> Void) {
        self.revoked = revoked
        self.eventLoop = eventLoop
        self.state = WebSocketStreamState(limits: limits, now: eventLoop.now)
        self.lastReport = eventLoop.now
        self.telemetry = telemetry
        self.registries = registries
        self.hold = hold
        self.logger = logger
        self.onFinish = onFinish
    }

    // MARK: Starting

    /// Puts the relays on both connections (the client's HTTP handlers are gone, the instance's are
    /// removed here), then lets bytes flow. On the event loop.
    func start(client: any Channel, upstream: SwitchedUpstream) throws {
        eventLoop.preconditionInEventLoop()
        guard client.eventLoop === eventLoop, upstream.channel.eventLoop === eventLoop else { throw ChannelError.inappropriateOperationForState }
        try Self.addFrameHandlers(to: client, maxFrame: state.limits.clientMessage, relay: WebSocketRelay(side: .client, tunnel: self))
        do {
            try upstream.takeOver { channel in
                try Self.addFrameHandlers(to: channel, maxFrame: state.limits.upstreamMessage, relay: WebSocketRelay(side: .upstream, tunnel: self))
            }
        } catch {
            // Half taken over, the instance's connection is of no use: it goes (the client's closes with the throw).
            upstream.channel.close(promise: nil)
            throw error
        }
        started = true
        for series in telemetry { series.opened(.websocket) }
        for registry in registries { registry.add(self) }
        perform(state.started(now: eventLoop.now))
        // Either connection may have closed meanwhile.
        for side in [WebSocketStreamState.Side.client, .upstream] where !(relay(side)?.isActive ?? false) { connectionClosed(side) }
    }

    private static func addFrameHandlers(to channel: any Channel, maxFrame: Int, relay: WebSocketRelay) throws {
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: maxFrame)))
        try sync.addHandler(WebSocketFrameEncoder())
        try sync.addHandler(relay)
        _ = channel.setOption(ChannelOptions.autoRead, value: true)
    }

    func attached(_ relay: WebSocketRelay) {
        self[relay.side].relay = relay
        self[relay.side].open = true
    }

    // MARK: Events from the relays

    func received(_ frame: WebSocketFrame, from side: WebSocketStreamState.Side) {
        let opcode = UInt8(webSocketOpcode: frame.opcode)
        let payload = side == .client && frame.maskKey != nil ? frame.unmaskedData : frame.data
        var closeCode: UInt16?
        if frame.opcode == .connectionClose, payload.readableBytes >= 2 { closeCode = payload.getInteger(at: payload.readerIndex, as: UInt16.self) }
        let action = state.frame(from: side, opcode: opcode, fin: frame.fin, length: frame.length, masked: frame.maskKey != nil,
                                 closeCode: closeCode, now: eventLoop.now)
        switch action {
        case .forward:
            if opcode <= 0x2 {
                if side == .client {
                    pendingIn.bytes += payload.readableBytes
                    if frame.fin { pendingIn.messages += 1 }
                } else {
                    pendingOut.bytes += payload.readableBytes
                    if frame.fin { pendingOut.messages += 1 }
                }
            }
            let relayed = side == .client
                // To the instance the gateway is the client: masked (with the client's key, already random).
                ? WebSocketFrame(fin: frame.fin, rsv1: frame.rsv1, rsv2: frame.rsv2, rsv3: frame.rsv3, opcode: frame.opcode,
                                 maskKey: frame.maskKey, data: payload)
                : frame
            write(relayed, to: side.other)
        case .forwardClose(let cut):
            let relayed = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: side == .client ? frame.maskKey : nil, data: payload)
            writeClose(relayed, to: side.other)
            perform(.close(client: nil, upstream: nil, cut: cut))
        default:
            perform(action)
        }
    }

    func readComplete(_ side: WebSocketStreamState.Side) {
        let other = side.other
        if self[other].unflushed {
            self[other].unflushed = false
            relay(other)?.flush()
        }
        let now = eventLoop.now
        if now - lastReport >= Self.reportInterval {
            lastReport = now
            reportTraffic()
        }
    }

    func writabilityChanged(_ side: WebSocketStreamState.Side, writable: Bool) {
        // The side that could not take more can again: read its peer once more.
        guard writable, self[side.other].paused else { return }
        self[side.other].paused = false
        relay(side.other)?.resumeReading()
    }

    /// A side's connection closed (or the client half-closed: nothing more can come from it).
    func connectionClosed(_ side: WebSocketStreamState.Side) {
        guard started else { return }
        if self[side].open {
            self[side].open = false
            relay(side)?.close()
            perform(state.connectionClosed(side, now: eventLoop.now))
        }
        if !client.open, !upstream.open { finish() }
    }

    /// A side's frames could not be decoded: a frame over its limit, a malformed control frame.
    func unreadable(_ side: WebSocketStreamState.Side, error: any Error) {
        let tooBig = (error as? NIOWebSocketError) == .invalidFrameLength
        perform(state.unreadable(from: side, tooBig: tooBig, now: eventLoop.now))
    }

    var authorizationRevoked: Bool { revoked?() ?? false }

    /// The gateway ends the stream: close 1001 to both sides (drain deadline, shutdown), or 1008 when its
    /// token was revoked. From any thread.
    func end(_ reason: StreamEnd) {
        eventLoop.execute {
            let close: WebSocketStreamState.Close = switch reason {
            case .shutdown: .init(code: WebSocketStreamState.Close.goingAway, reason: "gateway shutting down")
            case .drainDeadline: .init(code: WebSocketStreamState.Close.goingAway, reason: "instance drained")
            case .revoked: .init(code: WebSocketStreamState.Close.policyViolation, reason: "authorization revoked")
            }
            self.perform(self.state.end(close, now: self.eventLoop.now))
        }
    }

    // MARK: Actions

    private func perform(_ action: WebSocketStreamState.Action) {
        switch action {
        case .none, .drop, .forward, .forwardClose:
            break
        case .arm(let deadline):
            schedule(deadline)
        case .close(let toClient, let toUpstream, let cut):
            if let toClient {
                writeClose(WebSocketFrame(fin: true, opcode: .connectionClose, data: Self.closePayload(toClient)), to: .client)
            }
            if let toUpstream {
                writeClose(WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: Self.closePayload(toUpstream)), to: .upstream)
            }
            for side in cut { self.cut(side) }
            if case .arm(let deadline) = state.arm(now: eventLoop.now) { schedule(deadline) }
        }
    }

    private func write(_ frame: WebSocketFrame, to side: WebSocketStreamState.Side) {
        guard let relay = relay(side) else { return }
        relay.write(frame)
        self[side].unflushed = true
        if !relay.isWritable, !self[side.other].paused {
            self[side.other].paused = true
            self.relay(side.other)?.pauseReading()
        }
    }

    private func writeClose(_ frame: WebSocketFrame, to side: WebSocketStreamState.Side) {
        guard let relay = relay(side), self[side].open else { return }
        self[side].unflushed = false
        if let written = relay.writeAndFlush(frame) { self[side].closeWrite = written }
    }

    /// Closes a side's connection once its last close frame has left.
    private func cut(_ side: WebSocketStreamState.Side) {
        guard let relay = relay(side) else { return }
        // Nothing more is read from a side being cut.
        self[side].paused = false
        if let written = self[side].closeWrite {
            written.assumeIsolated().whenComplete { _ in relay.close() }
        } else {
            relay.flush()
            relay.close()
        }
    }

    static func closePayload(_ close: WebSocketStreamState.Close) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(close.code)
        buffer.writeString(String(decoding: close.reason.utf8.prefix(123), as: UTF8.self))
        return buffer
    }

    private func reportTraffic() {
        guard pendingIn.messages + pendingIn.bytes + pendingOut.messages + pendingOut.bytes > 0 else { return }
        let second = TelemetryClock.second()
        for series in telemetry {
            series.traffic(messagesIn: pendingIn.messages, messagesOut: pendingOut.messages, bytesIn: pendingIn.bytes, bytesOut: pendingOut.bytes, second: second)
        }
        totalIn.messages += pendingIn.messages
        totalIn.bytes += pendingIn.bytes
        totalOut.messages += pendingOut.messages
        totalOut.bytes += pendingOut.bytes
        pendingIn = (0, 0)
        pendingOut = (0, 0)
    }

    private func finish() {
        guard !finished else { return }
        finished = true
        timer?.cancel()
        timer = nil
        state.timerStopped()
        reportTraffic()
        let duration = ContinuousClock.now - startedAt
        let code = state.closeCode ?? 1006
        for series in telemetry { series.closed(.websocket, code: Int(code), seconds: duration.secondsDouble) }
        for registry in registries { registry.remove(self) }
        hold = nil
        client = Slot()
        upstream = Slot()
        let endedBy = state.endedByGateway.map { "gateway: \($0)" } ?? state.closedBy?.description ?? "gateway"
        onFinish(Outcome(closeCode: code, endedBy: endedBy, duration: duration, bytesIn: totalIn.bytes, bytesOut: totalOut.bytes,
                         messagesIn: totalIn.messages, messagesOut: totalOut.messages))
    }

    // MARK: Timer

    private func schedule(_ deadline: NIODeadline) {
        timer?.cancel()
        timer = try? eventLoop.scheduleCallback(at: deadline, handler: self)
    }

    func handleScheduledCallback(eventLoop: some EventLoop) {
        timer = nil
        guard !finished else { return }
        perform(state.timerFired(now: eventLoop.now))
        if case .arm(let deadline) = state.arm(now: eventLoop.now) { schedule(deadline) }
    }
}

/// One side of a `WebSocketTunnel`: decoded frames in, frames to encode out.
final class WebSocketRelay: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let side: WebSocketStreamState.Side
    private let tunnel: WebSocketTunnel
    private var context: ChannelHandlerContext?

    init(side: WebSocketStreamState.Side, tunnel: WebSocketTunnel) {
        self.side = side
        self.tunnel = tunnel
    }

    var isActive: Bool { context?.channel.isActive ?? false }
    var isWritable: Bool { context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        tunnel.attached(self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        tunnel.received(unwrapInboundIn(data), from: side)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        tunnel.readComplete(side)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        tunnel.writabilityChanged(side, writable: context.channel.isWritable)
    }

    func channelInactive(context: ChannelHandlerContext) {
        tunnel.connectionClosed(side)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            tunnel.end(.shutdown)
        } else if let event = event as? ChannelEvent, event == .inputClosed {
            // The client half-closed: nothing more can come from it, so its side is over.
            tunnel.connectionClosed(side)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is NIOWebSocketError {
            tunnel.unreadable(side, error: error)
        } else {
            // A connection error (reset, TLS): the connection is gone.
            context.close(promise: nil)
        }
    }

    func write(_ frame: WebSocketFrame) {
        context?.write(wrapOutboundOut(frame), promise: nil)
    }

    func writeAndFlush(_ frame: WebSocketFrame) -> EventLoopFuture<Void>? {
        guard let context else { return nil }
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(frame), promise: promise)
        return promise.futureResult
    }

    func flush() {
        context?.flush()
    }

    func close() {
        context?.close(promise: nil)
    }

    func pauseReading() {
        _ = context?.channel.setOption(ChannelOptions.autoRead, value: false)
    }

    func resumeReading() {
        guard let context else { return }
        _ = context.channel.setOption(ChannelOptions.autoRead, value: true)
        context.read()
    }
}
