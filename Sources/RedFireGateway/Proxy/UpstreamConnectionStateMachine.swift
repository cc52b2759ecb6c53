import NIOCore

/// The upstream connection's rules as a value: when to stop and resume reading the socket (back-pressure
/// against the task relaying the response), and what its one timer decides — the response head overdue
/// (`response_headers`, from the end of the request), the connection idle (`idle`: in the pool, or the
/// instance silent in an exchange — but not a slow client that has not taken what was already read).
/// Events come in with the time they happened (the caller's clock; tests pass their own instants, so no
/// rule needs a socket or a sleep); each returns what the handler must do.
struct UpstreamConnectionStateMachine {
    /// What the handler does after an event.
    enum Action: Equatable {
        case none
        /// Stop reading the socket until the reader catches up.
        case pauseReading
        /// Read again.
        case resumeReading
        /// (Re)arm the connection's timer for this instant.
        case arm(NIODeadline)
        /// The response head is overdue: close the connection (the exchange fails as a timeout).
        case closeTimedOut
        /// Idle too long: fail the waiting read and close.
        case closeIdle
    }

    /// Parts beyond this many unread pause socket reads until the reader catches up (many small parts:
    /// the byte bound covers large ones).
    static let highWatermark = 16

    let idleTimeout: TimeAmount
    private(set) var readingPaused = false
    /// The response head was handed on: its body is relayed to the client, and while the relaying task is
    /// not waiting here it is busy with the client — the instance's silence then is not its fault.
    private(set) var relaying = false
    /// Response bytes buffered for a slow reader before the socket stops being read.
    private(set) var bufferLimit = 64 * 1024
    /// Between sending a request and the end of its response.
    private(set) var inExchange = false
    /// The response-headers deadline passed (the connection was closed for it).
    private(set) var timedOut = false
    /// The last byte read or request part written.
    private(set) var lastActivity: NIODeadline
    /// The response head is due by then; nil outside the wait for it.
    private(set) var responseDeadline: NIODeadline?
    /// The longest the timer sleeps: a response deadline set after it was armed is never passed by more
    /// than this (the last exchange's `response_headers`, so the same service never re-arms it).
    private(set) var maxSleep: TimeAmount
    /// When the armed timer fires; `distantFuture` while none is armed.
    private(set) var timerAt = NIODeadline.distantFuture

    init(idleTimeout: TimeAmount, now: NIODeadline) {
        self.idleTimeout = idleTimeout
        self.maxSleep = idleTimeout
        self.lastActivity = now
    }

    /// The handler joined the connection: the idle timer starts.
    mutating func started(now: NIODeadline) -> Action {
        lastActivity = now
        return arm(at: now + idleTimeout)
    }

    mutating func beginExchange(bufferLimit: Int) {
        timedOut = false
        inExchange = true
        relaying = false
        self.bufferLimit = bufferLimit
    }

    /// The exchange is over: whatever was buffered is gone with it. A connection whose reading paused
    /// (a response read whole with its head, past half the buffer) reads again — in the pool it must see
    /// the instance close it, and the next exchange's response must reach it.
    mutating func endExchange(now: NIODeadline) -> Action {
        inExchange = false
        relaying = false
        return readerTook(bufferedParts: 0, bufferedBytes: 0, now: now)
    }

    /// A request part was written.
    mutating func wrote(now: NIODeadline) {
        lastActivity = now
    }

    /// The request is sent: its response head is due within `timeout`.
    mutating func requestSent(responseWithin timeout: TimeAmount) -> Action {
        let deadline = lastActivity + timeout
        responseDeadline = deadline
        maxSleep = min(idleTimeout, timeout)
        return deadline < timerAt ? arm(at: deadline) : .none
    }

    mutating func responseArrived() {
        responseDeadline = nil
        relaying = true
    }

    /// A response part was read; `buffered`: parts and bytes now waiting for the reader. Half the
    /// connection's buffer is for the instance's side, half for the client's write buffer.
    mutating func read(now: NIODeadline, bufferedParts: Int, bufferedBytes: Int) -> Action {
        lastActivity = now
        guard !readingPaused, bufferedParts >= Self.highWatermark || bufferedBytes >= bufferLimit / 2 else { return .none }
        readingPaused = true
        return .pauseReading
    }

    /// The reader took a part; reading resumes once it has caught up well below both marks. The
    /// instance's silence counts from then: while the socket was not read it could not be heard (a timer
    /// that came before the first read after a long pause would otherwise close a busy connection).
    mutating func readerTook(bufferedParts: Int, bufferedBytes: Int, now: NIODeadline) -> Action {
        guard readingPaused, bufferedParts < Self.highWatermark / 2, bufferedBytes < bufferLimit / 4 else { return .none }
        readingPaused = false
        lastActivity = now
        return .resumeReading
    }

    /// The timer fired. `readerWaiting`: the relaying task waits for the instance now; `buffered`: parts
    /// wait for the reader.
    mutating func timerFired(now: NIODeadline, readerWaiting: Bool, buffered: Bool) -> Action {
        timerAt = .distantFuture
        if let responseDeadline, now >= responseDeadline {
            timedOut = true
            return .closeTimedOut
        }
        var idleDeadline = lastActivity + idleTimeout
        if now >= idleDeadline {
            if inExchange, !readerWaiting, relaying || buffered || readingPaused {
                // A slow client, not a silent instance: nobody is waiting for the instance. Once the
                // relaying task waits here again, the instance's silence counts.
                idleDeadline = now + idleTimeout
            } else {
                return .closeIdle
            }
        }
        return arm(at: min(idleDeadline, responseDeadline ?? .distantFuture, now + maxSleep))
    }

    /// The connection closed: no timer any more.
    mutating func stopped() {
        timerAt = .distantFuture
    }

    private mutating func arm(at deadline: NIODeadline) -> Action {
        timerAt = deadline
        return .arm(deadline)
    }
}
