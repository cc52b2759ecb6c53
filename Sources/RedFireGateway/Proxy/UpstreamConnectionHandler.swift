import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// Buffers response parts for the one task reading them on the same event loop; pauses reading from
/// the socket while the reader lags (back-pressure), and turns close, errors and timeouts into failures
/// of the waiting read.
///
/// Timers: one scheduled callback per connection that re-arms itself, so an exchange only stores
/// deadlines (no timer, promise or closure per request). `idle` is inactivity on the connection — in the
/// pool, or the instance's silence in an exchange (not a slow client that has not taken what was already
/// read: then reading is merely paused); `response_headers` runs from the end of the request to the head.
final class UpstreamConnectionHandler: ChannelInboundHandler, RemovableChannelHandler, NIOScheduledCallbackHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart

    private let parts = LoopHandoff<HTTPClientResponsePart> { part in
        if case .body(let chunk) = part { chunk.readableBytes } else { 0 }
    }
    private var readingPaused = false
    /// The response head was handed on: its body is relayed to the client, and while the relaying task is
    /// not waiting here it is busy with the client — the instance's silence then is not the instance's
    /// fault (with a small buffer it drains empty while the client is slow).
    private var relaying = false
    /// Response bytes buffered for a slow reader before the socket stops being read
    /// (`limits.connection_buffer` of the request being answered).
    private var bufferLimit = 64 * 1024
    /// Between sending a request and the end of its response.
    private var inExchange = false
    private var context: ChannelHandlerContext?
    /// Set when the response-headers deadline passed (then the channel is closed).
    private(set) var timedOut = false

    private let idleTimeout: TimeAmount
    /// The last byte read or request part written.
    private var lastActivity = NIODeadline.now()
    /// The response head is due by then; nil outside the wait for it.
    private var responseDeadline: NIODeadline?
    /// The longest the timer sleeps: a response deadline set after it was armed is never passed by
    /// more than this (the last exchange's `response_headers`, so the same service never re-arms it).
    private var maxSleep: TimeAmount
    private var timer: NIOScheduledCallback?
    private var timerAt = NIODeadline.distantFuture

    /// Parts beyond this many unread pause socket reads until the reader catches up (many small parts:
    /// the byte bound covers large ones).
    static let highWatermark = 16

    struct IdleTimeout: Error {}

    init(idleTimeout: TimeAmount) {
        self.idleTimeout = idleTimeout
        self.maxSleep = idleTimeout
    }

    /// Socket reads are paused until the reader catches up.
    var isReadingPaused: Bool { readingPaused }

    var hasBufferedHead: Bool {
        parts.buffer.contains { if case .head = $0 { return true } else { return false } }
    }

    /// - Parameter bufferLimit: response bytes held for the reader before reading pauses.
    func beginExchange(bufferLimit: Int) {
        timedOut = false
        inExchange = true
        relaying = false
        self.bufferLimit = bufferLimit
    }

    func endExchange() {
        inExchange = false
        relaying = false
        parts.removeAll()
    }

    /// A request part was written.
    func touch() {
        lastActivity = .now()
    }

    /// The request is sent: its response head is due within `timeout`.
    func expectResponse(within timeout: TimeAmount) {
        let deadline = lastActivity + timeout
        responseDeadline = deadline
        maxSleep = min(idleTimeout, timeout)
        if deadline < timerAt, let context { arm(context: context, at: deadline) }
    }

    func responseArrived() {
        responseDeadline = nil
        relaying = true
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        lastActivity = .now()
        arm(context: context, at: lastActivity + idleTimeout)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimer(context: context)
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
        lastActivity = .now()
        // Half the connection's buffer is for the instance's side, half for the client's write buffer.
        let count = parts.deliver(unwrapInboundIn(data))
        if count >= Self.highWatermark || parts.bufferedBytes >= bufferLimit / 2, !readingPaused {
            readingPaused = true
            _ = context.channel.setOption(ChannelOptions.autoRead, value: false)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelTimer(context: context)
        parts.finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        parts.fail(error)
        context.close(promise: nil)
    }

    // MARK: Timer

    private func arm(context: ChannelHandlerContext, at deadline: NIODeadline) {
        cancelTimer(context: context)
        timerAt = deadline
        timer = try? context.eventLoop.scheduleCallback(at: deadline, handler: self)
    }

    private func cancelTimer(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        timerAt = .distantFuture
    }

    func handleScheduledCallback(eventLoop: some EventLoop) {
        timer = nil
        timerAt = .distantFuture
        guard let context, context.channel.isActive else { return }
        let now = NIODeadline.now()
        if let responseDeadline, now >= responseDeadline {
            timedOut = true
            context.close(promise: nil)
            return
        }
        var idleDeadline = lastActivity + idleTimeout
        if now >= idleDeadline {
            if inExchange, !parts.readerWaiting, relaying || !parts.buffer.isEmpty || readingPaused {
                // A slow client, not a silent instance: nobody is waiting for the instance. Once the
                // relaying task waits here again, the instance's silence counts.
                idleDeadline = now + idleTimeout
            } else {
                parts.fail(IdleTimeout())
                context.close(promise: nil)
                return
            }
        }
        arm(context: context, at: min(idleDeadline, responseDeadline ?? .distantFuture, now + maxSleep))
    }

    /// The next response part; nil once the connection closed cleanly with nothing left to read.
    func next() async throws -> HTTPClientResponsePart? {
        try await parts.next { [self] left in
            guard readingPaused, left < Self.highWatermark / 2, parts.bufferedBytes < bufferLimit / 4, let context else { return }
            readingPaused = false
            _ = context.channel.setOption(ChannelOptions.autoRead, value: true)
            context.read()
        }
    }
}
