#if canImport(Glibc)
import Glibc
#endif
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// Answers the requests of one client connection, one at a time and in order. Each request head
/// goes to a task on the connection's event loop (`RequestWorkers`: one of the loop's reused tasks) that
/// runs the responder and writes the response parts straight to the channel. This is the gateway's
/// request loop (in place of Hummingbird's loop over a `NIOAsyncChannel`, whose producer and writer cost
/// locks and continuations for every request part):
/// reading, answering and writing happen on one thread, and between requests a connection holds no
/// task at all.
///
/// On an HTTP/1 connection the codec and this handler call each other directly (`GatewayHTTPCodec.link`):
/// request parts come in and response parts go out without a pipeline hop or an `NIOAny` box per part.
/// On an HTTP/2 stream the parts travel the stream's pipeline.
///
/// Pipelined requests wait (their parts are queued, reading pauses when the queue grows) until the
/// current response is written. A request body streams to the responder through `RequestBodyStream`;
/// what the responder did not read is drained before the next request.
final class GatewayRequestHandler: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = HTTPRequestPart
    typealias OutboundOut = HTTPResponsePart

    private let responder: GatewayHTTPServer.Responder
    private let logger: Logger
    private var context: ChannelHandlerContext?
    /// The HTTP/1 codec before this handler, when linked; nil on an HTTP/2 stream.
    var codec: GatewayHTTPCodec?
    /// The loop's request workers (the server's), or a set of this handler's own that keeps none waiting.
    private var workers: RequestWorkers?
    /// The peer, read once per connection.
    private var remoteAddress: SocketAddress?
    private var clientIP: String?
    /// Set when the client closes its side; requests in progress see it when they record their outcome.
    private let hangup = ClientHangup()
    /// The active request's: renewed for each request.
    private let abandonment = ExchangeAbandonment()
    /// The connection's listener and TLS version.
    private let facts: ConnectionFacts?

    /// Loop-confined; the worker that answers it runs on the loop too.
    private final class ActiveRequest: RequestWorkers.Job, @unchecked Sendable {
        let handler: GatewayRequestHandler
        let body: RequestBodyStream?
        /// Safe to abandon when the client goes away (RFC 9110 §9.2.2 idempotent methods).
        let abandonable: Bool
        /// How the responder takes the connection over, for an HTTP/1.1 request asking to switch protocols.
        let upgrade: ConnectionUpgrade?
        var worker: RequestWorkers.Worker?
        var bodyEnded = false
        /// The response's end went to the connection: a close from here on follows an answered request.
        /// (An HTTP/2 stream closes as soon as both sides have ended it — inside the write of the
        /// response's end, before the worker has returned from it.)
        var endSent = false
        var responseDone = false
        /// The request and its context until the worker takes them: moved, not copied, into the worker.
        var received: GatewayRequest?
        var context: GatewayRequestContext?
        init(handler: GatewayRequestHandler, body: RequestBodyStream?, abandonable: Bool, upgrade: ConnectionUpgrade?, received: GatewayRequest,
             context: GatewayRequestContext) {
            self.handler = handler
            self.body = body
            self.abandonable = abandonable
            self.upgrade = upgrade
            self.received = received
            self.context = context
        }

        nonisolated(nonsending) func run() async {
            await handler.answer(self)
        }
    }

    /// The request being answered; nil between requests.
    private var active: ActiveRequest?
    /// Parts of later requests that arrived during the current one (at most `queueLimit`; an array, so an
    /// idle connection — pipelining is rare — holds no storage for it).
    private var queued: [HTTPRequestPart] = []
    private var readingPaused = false
    /// `Date` of responses, formatted once per second.
    private var dateSecond = -1
    private var dateValue = ""

    static let queueLimit = 8
    /// Request body bytes held for a slow instance before the client's socket stops being read.
    let bufferLimit: Int

    init(responder: @escaping GatewayHTTPServer.Responder, logger: Logger, bufferLimit: Int = 64 * 1024, facts: ConnectionFacts? = nil,
         workers: RequestWorkers? = nil) {
        self.responder = responder
        self.workers = workers
        self.facts = facts
        self.logger = logger
        self.bufferLimit = bufferLimit
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if workers == nil { workers = RequestWorkers(eventLoop: context.eventLoop, idleLimit: 0) }
        if let facts {
            (remoteAddress, clientIP) = facts.peer(of: context.channel)
        } else {
            remoteAddress = context.channel.remoteAddress
            clientIP = remoteAddress?.ipAddress
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        active?.body?.fail(RequestBodyStream.Closed())
        active = nil
        queued.removeAll()
        self.context = nil
        codec = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        clientClosed()
        active?.body?.fail(RequestBodyStream.Closed())
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { clientClosed() }
        context.fireUserInboundEventTriggered(event)
    }

    /// The client closed its side (or the connection is gone) while a request may be in progress. Like
    /// Envoy on a downstream reset and nginx's 499, an idempotent request is abandoned: its task is
    /// cancelled and its upstream exchange abandoned (closed: the instance sees the request aborted), and the
    /// access log says `client_closed_request`. Any other request — an order may already be placed —
    /// runs to completion so that its outcome is known and logged; its response is written if the
    /// client still reads, and the connection closes after it (`GatewayHTTPCodec.peerClosedInput`).
    /// Once the response's end is sent, a close is the exchange completing, not a hangup: the worker is
    /// not cancelled (it answers the next request) and the access log records no `client_closed_request`.
    private func clientClosed() {
        guard let active, !active.endSent, !active.responseDone else { return }
        hangup.record()
        if active.abandonable {
            active.worker?.cancel()
            abandonment.abandon()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A broken request body (the codec closes the connection after the response).
        if let active, !active.bodyEnded {
            active.body?.fail(error)
        } else {
            context.fireErrorCaught(error)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        process(unwrapInboundIn(data))
    }

    /// A request part from the linked codec, or from the pipeline (HTTP/2).
    func process(_ part: HTTPRequestPart) {
        if let active {
            if !active.bodyEnded {
                switch part {
                case .body(let buffer):
                    active.body?.deliver(buffer)
                case .end:
                    active.bodyEnded = true
                    active.body?.finish()
                    if active.responseDone { requestFinished() }
                case .head:
                    // The codec passes a head only after the previous request's end.
                    break
                }
            } else {
                queued.append(part)
                if queued.count >= Self.queueLimit { pauseReading() }
            }
            return
        }
        guard case .head(let head) = part else { return }
        start(head)
    }

    private func start(_ head: HTTPRequest) {
        guard let context, let workers, context.channel.isActive else { return }
        let fields = head.headerFields
        let declaresBody = fields.declaresBody
        let expectsContinue = fields[.expect].map { ASCII.equalsIgnoringCase($0, "100-continue") } ?? false
        let stream = declaresBody ? RequestBodyStream(handler: self, eventLoop: context.eventLoop, expectsContinue: expectsContinue, bufferLimit: bufferLimit) : nil
        let httpVersion = facts?.httpVersion ?? "HTTP/1.1"
        // Only HTTP/1.1 switches protocols (HTTP/2 has no `Upgrade`; its guard removes the field).
        let upgrade = httpVersion == "HTTP/1.1" && fields.contains(.upgradeField) ? ConnectionUpgrade() : nil
        // The previous request's exchange is over: its response's end was sent.
        abandonment.renew()
        let request = ActiveRequest(
            handler: self, body: stream, abandonable: head.method.isIdempotent, upgrade: upgrade,
            received: GatewayRequest(head: head, body: stream),
            context: GatewayRequestContext(source: ApplicationRequestContextSource(channel: context.channel, logger: logger),
                                           remoteAddress: remoteAddress, clientIP: clientIP, hangup: hangup, abandonment: abandonment,
                                           transport: facts?.transport ?? .plain, httpVersion: httpVersion, upgrade: upgrade))
        active = request
        // Started in the loop's next round of tasks, not synchronously (`Task.immediate` measured ~20 %
        // slower: its first wait hops to the executor anyway, and requests read in one round are no longer
        // handled together).
        request.worker = workers.run(request)
    }

    /// Runs on a worker: the responder's answer, written to the connection.
    nonisolated(nonsending) private func answer(_ request: ActiveRequest) async {
        // The worker may take another connection's request next: this one's hangup must not cancel it.
        defer { request.worker = nil }
        guard let received = request.received.take(), let requestContext = request.context.take() else { return }
        var response: GatewayResponse
        do {
            response = try await responder(received, requestContext)
        } catch {
            logger.error("request failed", metadata: ["error": "\(error)"])
            response = GatewayResponse.error(.internalError, requestID: GatewayRequestID.generate(), headers: [.connection: "close"])
        }
        if response.status == .switchingProtocols {
            switchProtocols(response, installer: request.upgrade?.take())
        } else {
            await write(consume response)
        }
    }

    /// The responder took the connection over (`ConnectionUpgrade`): the 101 is written, the HTTP handlers
    /// leave, the new protocol's handlers take their place and get what the client sent after its request.
    private func switchProtocols(_ response: GatewayResponse, installer: ConnectionUpgrade.Installer?) {
        guard let context else { return }
        guard let installer else {
            // A 101 nobody takes over from is a fault: the client must not believe it switched.
            logger.error("a 101 response without a protocol to switch to")
            let refusal = GatewayResponse.error(.internalError, requestID: GatewayRequestID.generate(), headers: [.connection: "close"])
            Task(executorPreference: workers?.executor) { await self.write(refusal) }
            return
        }
        var head = response.head
        if !head.headerFields.contains(.date) { head.headerFields.append(HTTPField(name: .date, value: date())) }
        send(.head(head), flush: true)
        active = nil
        queued.removeAll()
        let channel = context.channel
        let pipeline = channel.pipeline.syncOperations
        do {
            let codec = try pipeline.handler(type: GatewayHTTPCodec.self)
            codec.switchedProtocols()
            pipeline.removeHandler(self, promise: nil)
            try installer(channel)
            // Removed last: what it read past the request goes to the new protocol's first handler.
            codec.handOver(context: try pipeline.context(handler: codec))
            _ = channel.setOption(ChannelOptions.autoRead, value: true)
            channel.read()
        } catch {
            logger.error("switching protocols failed", metadata: ["error": "\(error)"])
            channel.close(promise: nil)
        }
    }

    /// On the event loop (the task prefers it). The response is taken, not copied: its fields are added
    /// to in place.
    nonisolated(nonsending) private func write(_ response: consuming GatewayResponse) async {
        guard context != nil else { return }
        // An origin's `Date` is passed on (RFC 9110 §6.6.1); the gateway dates what has none.
        if !response.headers.contains(.date) { response.headers.append(HTTPField(name: .date, value: date())) }
        // RFC 6797: on TLS connections of a listener with `hsts`, every response says so (never on plain HTTP).
        if let hsts = facts?.strictTransportSecurity { response.headers[.strictTransportSecurity] = hsts }
        send(.head(response.head), flush: false)
        do {
            switch response.body {
            case .buffer(let buffer):
                // Head, body and end leave in one flush (unless the client is behind: then it is waited for).
                if buffer.readableBytes > 0 { try await writeBody(buffer, last: true) }
                writeEnd(nil)
            case .stream(let body):
                try await body.write(ChannelResponseBodyWriter(handler: self, remaining: body.contentLength))
            }
        } catch {
            // The body failed midway (the instance went away, the client closed): the response cannot
            // be completed, so the connection ends here.
            self.context?.close(promise: nil)
        }
        responseFinished()
    }

    /// `last`: the body's final bytes; they go out with the end of the response, in one flush.
    nonisolated(nonsending) func writeBody(_ buffer: ByteBuffer, last: Bool) async throws {
        guard let context else { throw RequestBodyStream.Closed() }
        if context.channel.isWritable {
            send(.body(buffer), flush: !last)
        } else {
            // Back-pressure: wait until the client has taken what is queued.
            let written = context.eventLoop.makePromise(of: Void.self)
            send(.body(buffer), flush: true, promise: written)
            try await written.futureResult.get()
        }
    }

    /// To the linked codec by a direct call, else down the pipeline.
    private func send(_ part: HTTPResponsePart, flush: Bool, promise: EventLoopPromise<Void>? = nil) {
        if let codec {
            codec.respond(part, flush: flush, promise: promise)
        } else if let context {
            if flush {
                context.writeAndFlush(wrapOutboundOut(part), promise: promise)
            } else {
                context.write(wrapOutboundOut(part), promise: promise)
            }
        } else {
            promise?.fail(RequestBodyStream.Closed())
        }
    }

    /// `100 Continue` for a client that sent `Expect: 100-continue` and waits before sending its body:
    /// sent when the body is first read, so a request refused before that (401, 413, …) is answered
    /// without the client ever uploading (RFC 9110 §10.1.1).
    func sendContinue() {
        send(.head(HTTPResponse(status: .continue)), flush: true)
    }

    func writeEnd(_ trailers: HTTPFields?) {
        // Before the send: writing the end may close the stream or connection at once.
        active?.endSent = true
        send(.end(trailers), flush: true)
    }

    private func responseFinished() {
        guard let active else { return }
        active.responseDone = true
        if active.bodyEnded {
            requestFinished()
        } else {
            // The responder answered without reading the whole body: the rest is dropped as it comes.
            active.body?.discard()
        }
    }

    private func requestFinished() {
        active = nil
        // The response just written ended the connection (its head said close): requests pipelined
        // behind it are not processed — the client repeats them on a new connection (RFC 9112 §9.6).
        if codec?.isClosing == true {
            queued.removeAll()
            return
        }
        // Queued parts: the next request's head starts it, its body parts feed it; once its body has
        // ended, the rest waits for its response.
        while let part = queued.first {
            if let active, active.bodyEnded { break }
            queued.removeFirst()
            process(part)
        }
        resumeReadingIfPossible()
    }

    // MARK: Reading back-pressure

    func pauseReading() {
        guard !readingPaused, let context else { return }
        readingPaused = true
        _ = context.channel.setOption(ChannelOptions.autoRead, value: false)
    }

    func resumeReadingIfPossible() {
        guard readingPaused, let context, queued.count < Self.queueLimit / 2, !(active?.body?.isFull ?? false) else { return }
        readingPaused = false
        _ = context.channel.setOption(ChannelOptions.autoRead, value: true)
        context.read()
    }

    // MARK: Date

    private func date() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let second = Int(now.tv_sec)
        if second != dateSecond {
            dateSecond = second
            dateValue = HTTPDate.format(seconds: now.tv_sec)
        }
        return dateValue
    }
}
