import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// A response part read from an instance.
enum UpstreamResponsePart: Sendable {
    case head(UpstreamResponseHead)
    case body(ByteBuffer)
    case end
}

/// A final response head as the instance sent it (interim 1xx responses are read and dropped).
struct UpstreamResponseHead: Sendable {
    var status: Int
    /// Every field, or — when `sifted` — those that may reach a client.
    var fields: HTTPFields
    /// The response leaves the connection open (HTTP/1.1 without `Connection: close`, a known length).
    var keepAlive: Bool
    /// Its `Transfer-Encoding` is absent or `chunked` alone (any other coding would reach the client
    /// undone: RFC 9112 §6.1).
    var codingsForwardable = true
    /// Set when the fields that never reach a client were left out while reading (every exchange but
    /// an upgrade's, whose `101` is read whole).
    var sifted: HeaderPolicy.SiftedResponseHead?
}

/// Reads an instance's responses (llhttp through `HTTP1Parser`: the head straight into HTTP fields, the
/// body as slices of what was read), buffers the parts for the one task reading them on the same event
/// loop, and carries out what the connection's rules (`UpstreamConnectionStateMachine`, a value) decide:
/// pausing and resuming socket reads while the reader lags (back-pressure), and its one timer — a
/// scheduled callback that re-arms itself, so an exchange only stores deadlines (no timer, promise or
/// closure per request) — turning a late response head or an idle connection into a close and a failure
/// of the waiting read. Requests go to the socket as bytes (`HTTP1RequestWriter`), past this handler.
final class UpstreamConnectionHandler: ChannelInboundHandler, RemovableChannelHandler, NIOScheduledCallbackHandler, HTTP1ParserDelegate,
    @unchecked Sendable
{
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let parts = LoopHandoff<UpstreamResponsePart> { part in
        if case .body(let chunk) = part { chunk.readableBytes } else { 0 }
    }
    private let parser = HTTP1Parser(kind: .response, limits: .init(fieldBytes: 80 * 1024, headBytes: 80 * 1024, fieldCount: 65534))
    /// The method of the request whose response is awaited (it decides whether a body follows); nil
    /// when no request is outstanding — then a response is unsolicited.
    private var awaiting: HTTPRequest.Method?
    /// The fields of the head being read.
    private var fields = HTTPFields()
    /// What reading the head noted (`UpstreamResponseHead.sifted`); nil for an upgrade's response.
    private var sifted: HeaderPolicy.SiftedResponseHead?
    /// The head's transfer codings so far: how many, and whether the first is `chunked`.
    private var codings = 0
    private var firstCodingChunked = false
    /// An interim (1xx) response is being read: neither its head nor its end is passed on.
    private var interim = false
    /// A head was passed on and its end not yet.
    private var inResponse = false
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

    /// - Parameters:
    ///   - method: the request's (a response to `HEAD` has no body).
    ///   - bufferLimit: response bytes held for the reader before reading pauses.
    ///   - upgrade: the request asks to switch protocols: its response head is kept whole.
    func beginExchange(method: HTTPRequest.Method, bufferLimit: Int, upgrade: Bool = false) {
        awaiting = method
        sifted = upgrade ? nil : HeaderPolicy.SiftedResponseHead()
        state.beginExchange(bufferLimit: bufferLimit)
    }

    func endExchange() {
        parts.removeAll()
        perform(state.endExchange(now: now))
    }

    /// A request part was written.
    func touch() {
        state.wrote(now: now)
    }

    /// The event loop's clock (an `EmbeddedEventLoop`'s in tests). A NIO event loop's is the monotonic
    /// clock itself, read without going through the context and the loop (both retained for each read).
    private var now: NIODeadline { onEventLoopThread ? .now() : context?.eventLoop.now ?? .now() }
    /// Added on one of NIO's own event loops (not an `EmbeddedEventLoop`).
    private var onEventLoopThread = false

    /// The request is sent: its response head is due within `timeout`.
    func expectResponse(within timeout: TimeAmount) {
        perform(state.requestSent(responseWithin: timeout))
    }

    func responseArrived() {
        state.responseArrived()
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
        // The reader took everything: reading resumes if it paused.
        perform(state.readerTook(bufferedParts: 0, bufferedBytes: 0, now: now))
        return body ?? ByteBuffer()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        onEventLoopThread = MultiThreadedEventLoopGroup.currentEventLoop != nil
        parser.delegate = self
        perform(state.started(now: context.eventLoop.now))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        do {
            try parser.feed(unwrapInboundIn(data))
        } catch {
            failed(error, context: context)
        }
    }

    /// Delivers a part and applies back-pressure.
    private func deliver(_ part: UpstreamResponsePart) {
        let count = parts.deliver(part)
        perform(state.read(now: now, bufferedParts: count, bufferedBytes: parts.bufferedBytes))
    }

    func channelInactive(context: ChannelHandlerContext) {
        // A body that ends with the connection ends here; a response cut short is an error.
        do {
            try parser.finish()
        } catch {
            parts.fail(error)
        }
        cancelTimer()
        parts.finish()
        context.fireChannelInactive()
    }

    private func failed(_ error: any Error, context: ChannelHandlerContext) {
        parts.fail(error)
        context.close(promise: nil)
    }

    /// Leaves the pipeline after a switch of protocols: what the instance sent after its 101 goes to the
    /// handlers that follow (the new protocol's), unparsed.
    func handOver(context: ChannelHandlerContext) {
        cancelTimer()
        if let remainder = parser.takeRemainder() { context.fireChannelRead(wrapInboundOut(remainder)) }
        context.pipeline.syncOperations.removeHandler(self, promise: nil)
    }

    // MARK: The parser's output

    func parsedField(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        // Trailers are not passed on (the gateway answers with its own framing).
        guard !inResponse, let name = KnownFieldNames.name(name) ?? HTTPField.Name(String(decoding: name, as: UTF8.self)) else { return }
        let value = String(decoding: value, as: UTF8.self)
        if name == .transferEncoding {
            HeaderPolicy.forEachListToken(value) { coding in
                if codings == 0 { firstCodingChunked = ASCII.equalsIgnoringCase(bytes: coding.utf8, "chunked") }
                codings += 1
            }
        }
        if sifted?.keep(name, value: value) == false { return }
        // Room for a typical head at once, not grown field by field.
        if fields.isEmpty { fields.reserveCapacity(12) }
        fields.append(HTTPField(name: name, value: value))
    }

    func parsedHead(_ head: HTTP1Parser.Head) -> HTTP1Parser.Continuation {
        let received = fields
        fields = HTTPFields()
        let codingsForwardable = codings == 0 || (codings == 1 && firstCodingChunked)
        codings = 0
        let siftedHead = sifted
        if sifted != nil { sifted = HeaderPolicy.SiftedResponseHead() }
        guard let method = awaiting else {
            // Bytes no request asked for: the connection is broken.
            if let context { failed(NIOHTTPDecoderError.unsolicitedResponse, context: context) }
            return .stop
        }
        if head.status >= 100, head.status < 200, head.status != 101 {
            // 100 Continue, 103 Early Hints: the final response follows.
            interim = true
            return .noBody
        }
        awaiting = nil
        inResponse = true
        deliver(.head(UpstreamResponseHead(status: head.status, fields: received, keepAlive: head.keepAlive, codingsForwardable: codingsForwardable,
                                           sifted: siftedHead)))
        return method == .head || head.status == 204 || head.status == 304 ? .noBody : .body
    }

    func parsedBody(_ bytes: ByteBuffer) {
        deliver(.body(bytes))
    }

    func parsedEnd() {
        if interim {
            interim = false
            return
        }
        inResponse = false
        deliver(.end)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failed(error, context: context)
    }

    /// The exchange was abandoned (`ExchangeAbandonment`): its wait ends now, not when the connection's
    /// close completes — over TLS that waits for the instance's close_notify, which an instance busy with
    /// the request may not send (up to the TLS shutdown timeout, 5 s).
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let abandoned = event as? ExchangeAbandonment.Abandoned {
            failed(abandoned, context: context)
            return
        }
        context.fireUserInboundEventTriggered(event)
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
    nonisolated(nonsending) func next() async throws -> UpstreamResponsePart? {
        try await parts.next { [self] left in
            perform(state.readerTook(bufferedParts: left, bufferedBytes: parts.bufferedBytes, now: now))
        }
    }
}
