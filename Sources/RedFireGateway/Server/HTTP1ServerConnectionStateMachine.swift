import NIOCore

/// A client connection's rules as a value (RFC 9112 §9): which requests are in progress and in what
/// order their responses go, when the connection closes — after a response that says so, at once when
/// idle and the client closed its side or the server quiesces, after a refusal (which waits behind
/// earlier pipelined responses, never interleaves with them) — and what its one timer decides: a header
/// section too slow (408, or a silent close when no byte came), an idle keep-alive connection, a request
/// body paused longer than `body_timeout` or slower than `min_body_rate` (time the gateway held reads off
/// does not count).
///
/// Events come in with the time they happened (the event loop's clock: an `EmbeddedEventLoop`'s in
/// tests); each returns what the codec must do. `Refusal` is what a refusal writes (the codec's error,
/// request ID and envelope), carried through untouched.
struct HTTP1ServerConnectionStateMachine<Refusal> {
    struct Timeouts {
        var header: TimeAmount
        var idle: TimeAmount
        var body: TimeAmount
        /// Bytes per second a body must average after `bodyRateGrace`; 0: not checked.
        var minBodyRate: Int
        var bodyRateGrace: TimeAmount = ConnectionSettings.bodyRateGrace
    }

    enum Action {
        case none
        /// (Re)arm the connection's timer for this instant.
        case arm(NIODeadline)
        /// Close now.
        case close
        /// Write this refusal after what is already written, then close (lingering).
        case writeRefusal(Refusal)
        /// Answer the request whose head is too slow with this error (408): the codec builds and logs the
        /// refusal and passes it to `refused`.
        case refuse(GatewayError)
        /// The body being read is broken (its parse error): whoever reads it fails; the connection closes
        /// after the response.
        case failBody
        /// The body was paused too long, or is too slow: whoever reads it fails with the timeout.
        case bodyTimedOut
    }

    /// What to do once a response's end is written.
    enum AfterResponse {
        /// Keep the connection; the action is the idle timer's, if it needs arming.
        case keepOpen(Action)
        /// Close it once what was written has left (lingering).
        case closeWhenWritten
        /// A refusal was waiting for this response: write it next, then close.
        case writeRefusal(Refusal)
    }

    let timeouts: Timeouts

    /// A request passed on whose final response has not been written: how it must be answered (HTTP/1.0:
    /// no chunks, no 1xx; HEAD: no body), and whether the connection closes after its response (the
    /// client said `close`, or the response's head does) — even with later pipelined requests unanswered
    /// (RFC 9112 §9.6: the server closes after that response; the client repeats what was not answered).
    struct Pending {
        var request: HTTP1ResponseWriter.Request
        var closes: Bool
    }

    /// Requests passed on whose final response has not been written, oldest first.
    private(set) var pending = CircularBuffer<Pending>(initialCapacity: 2)
    /// Between a passed-on head and its end.
    private(set) var readingBody = false
    /// Inbound is over (a refusal, a broken body, a timeout, the client's FIN): later bytes are dropped.
    private(set) var inboundClosed = false
    /// The connection closes once the last pending request's final response is written (the client's
    /// FIN, graceful shutdown, a broken or timed-out body).
    private(set) var closeAfterResponse = false
    /// Outbound is over: the connection is closing; later writes are dropped.
    private(set) var outboundClosed = false
    /// The parser stopped after an upgrade request: it must be replaced before the next request is read.
    private(set) var parserStopped = false
    /// A refusal waiting for earlier responses (pipelined requests) to finish.
    private var deferredRefusal: Refusal?

    // Timer inputs.
    /// When the connection last had no request in progress (nil while one is).
    private(set) var idleSince: NIODeadline?
    /// When the current header section started: the connection's start for the first request, the
    /// first byte for later ones.
    private(set) var headSince: NIODeadline?
    private(set) var headBytesSeen = false
    /// While a body is read: the last time a part of it arrived (or the head, a `100 Continue`, or the
    /// gateway asking for more after holding reads off).
    private(set) var bodySince: NIODeadline?
    /// A socket read was asked for and has not completed: only then is the gateway waiting for the client.
    private(set) var readOutstanding = true
    /// For `min_body_rate`: the body's start, its bytes, and the time reads were held off meanwhile.
    private var bodyStart: NIODeadline?
    private var bodyBytes = 0
    private var bodyHeld: TimeAmount = .zero
    private var heldSince: NIODeadline?
    /// When the armed timer fires; `distantFuture` while none is armed.
    private(set) var timerAt = NIODeadline.distantFuture

    init(timeouts: Timeouts) {
        self.timeouts = timeouts
    }

    var hasPendingRequests: Bool { !pending.isEmpty }

    // MARK: Connection

    /// The connection is up: the first header section is timed from now.
    mutating func started(now: NIODeadline) -> Action {
        guard idleSince == nil, pending.isEmpty else { return .none }
        idleSince = now
        headSince = now
        return arm(now + min(timeouts.header, timeouts.idle))
    }

    /// Bytes arrived from the client. Bytes of a body still being drained after its response do not start
    /// a header section.
    mutating func bytesArrived(now: @autoclosure () -> NIODeadline) {
        guard pending.isEmpty, !readingBody, !inboundClosed else { return }
        if headSince == nil { headSince = now() }
        headBytesSeen = true
    }

    /// A socket read completed.
    mutating func readCompleted(now: @autoclosure () -> NIODeadline) {
        readOutstanding = false
        if bodyStart != nil { heldSince = now() }
    }

    /// The gateway asks for more bytes: a pause of the client's, if any, starts now.
    mutating func readRequested(now: @autoclosure () -> NIODeadline) {
        if !readOutstanding, bodySince != nil { bodySince = now() }
        if let heldSince {
            bodyHeld = bodyHeld + (now() - heldSince)
            self.heldSince = nil
        }
        readOutstanding = true
    }

    /// The client closed its side (FIN). With nothing in progress the connection closes now; with a
    /// request in progress, after its response.
    mutating func peerClosedInput() -> Action {
        if pending.isEmpty || outboundClosed { return close() }
        inboundClosed = true
        closeAfterResponse = true
        return .none
    }

    /// Graceful shutdown: an idle connection closes now, a busy one after its response.
    mutating func quiesce() -> Action {
        if pending.isEmpty { return close() }
        closeAfterResponse = true
        return .none
    }

    /// The codec closed (or is closing) the connection for a reason of its own.
    mutating func close() -> Action {
        inboundClosed = true
        outboundClosed = true
        return .close
    }

    /// The timer is gone (fired into a lingering close, cancelled with the connection).
    mutating func timerStopped() {
        timerAt = .distantFuture
    }

    // MARK: Requests

    /// A request head was accepted and passed on. `keepAlive`: the client allows another request after
    /// it — without it, the connection closes after its response and what the client sends after its end
    /// is not read (RFC 9112 §9.6: no further request is processed); `upgrade`: it asks for another protocol (`Upgrade` with the `upgrade` connection option). Unless
    /// the responder switches protocols, it is answered as a plain request (RFC 9110 §7.8) and the
    /// connection stays usable — but NIO's parser stops reading after it, so the codec gives the
    /// connection a fresh parser once the response is written (`parserStopped`).
    mutating func requestHead(_ request: HTTP1ResponseWriter.Request, keepAlive: Bool, upgrade: Bool, declaresBody: Bool,
                              now clock: @autoclosure () -> NIODeadline) -> Action {
        pending.append(Pending(request: request, closes: !keepAlive))
        readingBody = true
        idleSince = nil
        headSince = nil
        headBytesSeen = false
        if upgrade { parserStopped = true }
        guard declaresBody else { return .none }
        // A body is coming: its pauses are timed (requests without one schedule nothing).
        let now = clock()
        bodySince = now
        if timeouts.minBodyRate > 0 {
            bodyStart = now
            bodyBytes = 0
            bodyHeld = .zero
        }
        let check = now + nextBodyCheck
        return timerAt > check ? arm(check) : .none
    }

    mutating func bodyPart(bytes: Int, now: @autoclosure () -> NIODeadline) {
        if bodySince != nil { bodySince = now() }
        if bodyStart != nil { bodyBytes += bytes }
    }

    mutating func requestEnd() {
        readingBody = false
        bodySince = nil
        bodyStart = nil
        heldSince = nil
        // The last request the client asked for: later bytes are not requests to process.
        if pending.last?.closes == true { inboundClosed = true }
    }

    /// The request body being read is broken (bad chunk framing, too much framing).
    mutating func bodyBroken() -> Action {
        readingBody = false
        inboundClosed = true
        closeAfterResponse = true
        return pending.isEmpty ? close() : .failBody
    }

    /// A request is refused (malformed, too slow): written now, or after the responses before it.
    mutating func refused(_ refusal: Refusal) -> Action {
        inboundClosed = true
        if pending.isEmpty { return writeRefusal(refusal) }
        deferredRefusal = refusal
        return .none
    }

    private mutating func writeRefusal(_ refusal: Refusal) -> Action {
        guard !outboundClosed else { return .none }
        outboundClosed = true
        return .writeRefusal(refusal)
    }

    // MARK: Responses

    /// A response head is about to be written: how to answer (the oldest pending request), and whether
    /// it is to be dropped (an interim response to HTTP/1.0). `close`: the head must say so.
    mutating func responseHead(final: Bool, isContinue: Bool, now: @autoclosure () -> NIODeadline) -> (request: HTTP1ResponseWriter.Request, drop: Bool, close: Bool) {
        let first = pending.first ?? Pending(request: HTTP1ResponseWriter.Request(http10: false, head: false), closes: false)
        if !final, first.request.http10 { return (first.request, true, false) }
        // The client starts sending its body now: its pause so far was the gateway's.
        if isContinue, bodySince != nil { bodySince = now() }
        // Only the response after which the connection really closes says so: a pipelined client that
        // read `close` earlier would drop the responses still coming.
        return (first.request, false, final && (first.closes || (closeAfterResponse && pending.count <= 1)))
    }

    /// The request in progress was answered with `101 Switching Protocols`: HTTP is over on this
    /// connection (another protocol's handlers take it over), so nothing here reads, writes or times it.
    mutating func switchedProtocols() {
        pending.removeAll()
        readingBody = false
        inboundClosed = true
        outboundClosed = true
        closeAfterResponse = false
        deferredRefusal = nil
        idleSince = nil
        headSince = nil
        timerAt = .distantFuture
    }

    /// The codec replaced the stopped parser; what it held is parsed by the new one.
    mutating func parserReplaced() {
        parserStopped = false
    }

    /// The head written says the connection closes (or its body can only end with it): it closes after
    /// this response.
    mutating func responseCloses() {
        if pending.isEmpty {
            closeAfterResponse = true
        } else {
            pending[pending.startIndex].closes = true
        }
    }

    /// A response's end is about to be written.
    mutating func responseEnd(now clock: @autoclosure () -> NIODeadline) -> AfterResponse {
        let answered = pending.popFirst()
        if answered?.closes == true {
            // Requests pipelined after it stay unanswered: the client repeats them on a new connection.
            pending.removeAll()
            deferredRefusal = nil
            readingBody = false
            outboundClosed = true
            inboundClosed = true
            return .closeWhenWritten
        }
        guard pending.isEmpty else { return .keepOpen(.none) }
        if let refusal = deferredRefusal {
            deferredRefusal = nil
            if case .writeRefusal(let refusal) = writeRefusal(refusal) { return .writeRefusal(refusal) }
            return .keepOpen(.none)
        }
        if closeAfterResponse {
            outboundClosed = true
            inboundClosed = true
            return .closeWhenWritten
        }
        // Idle again: the next header section (or the idle timeout) is timed.
        let now = clock()
        idleSince = now
        headSince = nil
        headBytesSeen = false
        return .keepOpen(timerAt == .distantFuture ? arm(now + min(timeouts.header, timeouts.idle)) : .none)
    }

    // MARK: Timer

    /// How soon the body timer looks again: at the pause deadline, or sooner while the rate is checked.
    var nextBodyCheck: TimeAmount {
        timeouts.minBodyRate > 0 ? min(timeouts.body, .nanoseconds(timeouts.bodyRateGrace.nanoseconds / 2)) : timeouts.body
    }

    /// A body that keeps moving too slowly to matter (slowloris on the body: a byte every few seconds
    /// never trips `body_timeout`): under `min_body_rate` on average, counted after the grace period and
    /// without the time the gateway held reads off.
    func bodyTooSlow(now: NIODeadline) -> Bool {
        guard timeouts.minBodyRate > 0, let bodyStart else { return false }
        let active = (now - bodyStart) - bodyHeld
        guard active >= timeouts.bodyRateGrace else { return false }
        return Double(bodyBytes) / (Double(active.nanoseconds) / 1e9) < Double(timeouts.minBodyRate)
    }

    mutating func timerFired(now: NIODeadline) -> Action {
        timerAt = .distantFuture
        guard !outboundClosed else { return .none }
        if !pending.isEmpty {
            // A request in progress: only a body the client has paused is timed.
            guard readingBody, let bodySince else { return .none }
            // Reads are held off: not the client's pause. Asking for more restarts the count.
            guard readOutstanding else { return arm(now + timeouts.body) }
            let deadline = bodySince + timeouts.body
            if now < deadline, !bodyTooSlow(now: now) { return arm(min(deadline, now + nextBodyCheck)) }
            // Whoever reads the body fails with the timeout (408, the instance is not blamed); the
            // connection closes after that response — the rest cannot be read.
            self.bodySince = nil
            bodyStart = nil
            readingBody = false
            inboundClosed = true
            closeAfterResponse = true
            return .bodyTimedOut
        }
        guard let idleSince else { return .none }
        if let headSince {
            let deadline = headSince + timeouts.header
            if now >= deadline { return headBytesSeen ? .refuse(.requestTimeout) : close() }
            return arm(deadline)
        }
        let deadline = idleSince + timeouts.idle
        if now >= deadline { return close() }
        // Bytes may start a header section before the idle deadline: never sleep past its timeout.
        return arm(min(deadline, now + timeouts.header))
    }

    private mutating func arm(_ deadline: NIODeadline) -> Action {
        timerAt = deadline
        return .arm(deadline)
    }
}
