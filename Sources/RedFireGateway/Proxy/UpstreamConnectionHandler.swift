import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// Buffers response parts for the one task reading them on the same event loop, and carries out what
/// the connection's rules (`UpstreamConnectionStateMachine`, a value) decide: pausing and resuming
/// socket reads while the reader lags (back-pressure), and its one timer — a scheduled callback that
/// re-arms itself, so an exchange only stores deadlines (no timer, promise or closure per request) —
/// turning a late response head or an idle connection into a close and a failure of the waiting read.
final class UpstreamConnectionHandler: ChannelInboundHandler, RemovableChannelHandler, NIOScheduledCallbackHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart

    private let parts = LoopHandoff<HTTPClientResponsePart> { part in
        if case .body(let chunk) = part { chunk.readableBytes } else { 0 }
    }
    /// The rules: back-pressure and the timer's decisions (`UpstreamConnectionStateMachine`).
    private var state: UpstreamConnectionStateMachine
    private var context: ChannelHandlerContext?
    private var timer: NIOScheduledCallback?

    struct IdleTimeout: Error {}

    init(idleTimeout: TimeAmount) {
        self.state = UpstreamConnectionStateMachine(idleTimeout: idleTimeout, now: .now())
    }

    /// Socket reads are paused until the reader catches up.
    var isReadingPaused: Bool { state.readingPaused }
    /// Set when the response-headers deadline passed (then the channel is closed).
    var timedOut: Bool { state.timedOut }

    var hasBufferedHead: Bool {
        parts.buffer.contains { if case .head = $0 { return true } else { return false } }
    }

    /// - Parameter bufferLimit: response bytes held for the reader before reading pauses.
    func beginExchange(bufferLimit: Int) {
        state.beginExchange(bufferLimit: bufferLimit)
    }

    func endExchange() {
        state.endExchange()
        parts.removeAll()
    }

    /// A request part was written.
    func touch() {
        state.wrote(now: now)
    }

    /// The event loop's clock (an `EmbeddedEventLoop`'s in tests).
    private var now: NIODeadline { context?.eventLoop.now ?? .now() }

    /// The request is sent: its response head is due within `timeout`.
    func expectResponse(within timeout: TimeAmount) {
        perform(state.requestSent(responseWithin: timeout))
    }

    func responseArrived() {
        state.responseArrived()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        perform(state.started(now: context.eventLoop.now))
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimer()
        self.context = nil
    }

    /// When the rest of the response (body parts, then its end) is already buffered: the body in one
    /// buffer, and the parts consumed.
    func takeCompleteBody() -> ByteBuffer? {
        guard let last = parts.buffer.last, case .end = last else { return nil }
        var body: ByteBuffer?
        for part in parts.buffer {
            switch part {
            case .body(var chunk):
                if body == nil { body = chunk } else { body!.writeBuffer(&chunk) }
            case .end:
                break
            case .head:
                return nil
            }
        }
        parts.removeAll()
        return body ?? ByteBuffer()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let count = parts.deliver(unwrapInboundIn(data))
        perform(state.read(now: context.eventLoop.now, bufferedParts: count, bufferedBytes: parts.bufferedBytes))
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelTimer()
        parts.finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        parts.fail(error)
        context.close(promise: nil)
    }

    // MARK: Actions and the timer

    private func perform(_ action: UpstreamConnectionStateMachine.Action) {
        guard let context else { return }
        switch action {
        case .none:
            break
        case .pauseReading:
            _ = context.channel.setOption(ChannelOptions.autoRead, value: false)
        case .resumeReading:
            _ = context.channel.setOption(ChannelOptions.autoRead, value: true)
            context.read()
        case .arm(let deadline):
            timer?.cancel()
            timer = try? context.eventLoop.scheduleCallback(at: deadline, handler: self)
        case .closeTimedOut:
            context.close(promise: nil)
        case .closeIdle:
            parts.fail(IdleTimeout())
            context.close(promise: nil)
        }
    }

    private func cancelTimer() {
        timer?.cancel()
        timer = nil
        state.stopped()
    }

    func handleScheduledCallback(eventLoop: some EventLoop) {
        timer = nil
        guard let context, context.channel.isActive else {
            state.stopped()
            return
        }
        perform(state.timerFired(now: eventLoop.now, readerWaiting: parts.readerWaiting, buffered: !parts.buffer.isEmpty))
    }

    /// The next response part; nil once the connection closed cleanly with nothing left to read.
    func next() async throws -> HTTPClientResponsePart? {
        try await parts.next { [self] left in
            perform(state.readerTook(bufferedParts: left, bufferedBytes: parts.bufferedBytes))
        }
    }
}
