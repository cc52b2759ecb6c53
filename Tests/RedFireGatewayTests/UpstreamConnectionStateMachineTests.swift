import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import RedFireGateway

/// The upstream connection's rules as a value — every transition with instants the test chooses — and
/// through `EmbeddedChannel`, whose event loop is the handler's clock (time advanced, never slept).
@Suite struct UpstreamConnectionStateMachineTests {
    typealias Machine = UpstreamConnectionStateMachine
    static let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)

    func machine(idle: TimeAmount = .seconds(60)) -> Machine {
        var machine = Machine(idleTimeout: idle, now: Self.t0)
        #expect(machine.started(now: Self.t0) == .arm(Self.t0 + idle), "the idle timer starts with the connection")
        return machine
    }

    @Test func readingPausesAtEitherMarkAndResumesBelowBoth() {
        var m = machine()
        m.beginExchange(bufferLimit: 64 * 1024)
        // Many small parts: the part count pauses.
        #expect(m.read(now: Self.t0, bufferedParts: 15, bufferedBytes: 100) == .none)
        #expect(m.read(now: Self.t0, bufferedParts: 16, bufferedBytes: 100) == .pauseReading)
        #expect(m.read(now: Self.t0, bufferedParts: 17, bufferedBytes: 100) == .none, "paused once")
        #expect(m.readerTook(bufferedParts: 8, bufferedBytes: 100, now: Self.t0) == .none, "not below half the parts yet")
        #expect(m.readerTook(bufferedParts: 7, bufferedBytes: 100, now: Self.t0) == .resumeReading)
        #expect(m.readerTook(bufferedParts: 6, bufferedBytes: 100, now: Self.t0) == .none, "resumed once")
        // Large parts: half the byte bound pauses; a quarter resumes.
        #expect(m.read(now: Self.t0, bufferedParts: 2, bufferedBytes: 32 * 1024) == .pauseReading)
        #expect(m.readerTook(bufferedParts: 1, bufferedBytes: 16 * 1024, now: Self.t0) == .none)
        #expect(m.readerTook(bufferedParts: 1, bufferedBytes: 16 * 1024 - 1, now: Self.t0) == .resumeReading)
    }

    /// A response read whole with its head past half the buffer paused reading; nobody reads its parts
    /// one by one, so ending the exchange resumes reading (a pooled connection that did not read would
    /// hold the next response unread until its timeout).
    @Test func endingAnExchangeResumesPausedReading() {
        var m = machine()
        m.beginExchange(bufferLimit: 64 * 1024)
        #expect(m.read(now: Self.t0, bufferedParts: 3, bufferedBytes: 33 * 1024) == .pauseReading)
        #expect(m.endExchange(now: Self.t0) == .resumeReading)
        #expect(!m.readingPaused)
        m.beginExchange(bufferLimit: 64 * 1024)
        #expect(m.endExchange(now: Self.t0) == .none, "reading was not paused")
    }

    /// A long pause in reading (a slow client) is not the instance's silence: the idle clock restarts
    /// when reading resumes, so a timer that comes before the first read after it does not close.
    @Test func resumingReadingRestartsTheSilenceClock() {
        var m = machine(idle: .milliseconds(300))
        m.beginExchange(bufferLimit: 64 * 1024)
        _ = m.requestSent(responseWithin: .seconds(5))
        m.responseArrived()
        #expect(m.read(now: Self.t0, bufferedParts: 2, bufferedBytes: 40 * 1024) == .pauseReading)
        // The client takes a second to catch up; meanwhile the timer finds nobody waiting for the instance.
        #expect(m.timerFired(now: Self.t0 + .milliseconds(300), readerWaiting: false, buffered: true) == .arm(Self.t0 + .milliseconds(600)))
        let resumed = Self.t0 + .seconds(1)
        #expect(m.readerTook(bufferedParts: 0, bufferedBytes: 0, now: resumed) == .resumeReading)
        // The relaying task waits for the instance before the socket was read again: not silence yet.
        #expect(m.timerFired(now: resumed + .milliseconds(10), readerWaiting: true, buffered: false) == .arm(resumed + .milliseconds(300)))
        // Silent for the whole idle timeout after reading resumed: closed.
        #expect(m.timerFired(now: resumed + .milliseconds(300), readerWaiting: true, buffered: false) == .closeIdle)
    }

    @Test func aLateResponseHeadClosesAsATimeout() {
        var m = machine()
        m.beginExchange(bufferLimit: 64 * 1024)
        m.wrote(now: Self.t0 + .milliseconds(5))
        let due = Self.t0 + .milliseconds(5) + .seconds(2)
        #expect(m.requestSent(responseWithin: .seconds(2)) == .arm(due), "earlier than the idle timer: armed for it")
        #expect(m.timerFired(now: due - .milliseconds(1), readerWaiting: true, buffered: false) == .arm(due))
        #expect(m.timerFired(now: due, readerWaiting: true, buffered: false) == .closeTimedOut)
        #expect(m.timedOut)
        // The next exchange starts clean.
        m.beginExchange(bufferLimit: 1024)
        #expect(!m.timedOut)
    }

    @Test func aResponseDeadlineLaterThanTheTimerWaitsForItAndTheSleepIsBounded() {
        var m = machine(idle: .seconds(1))
        m.beginExchange(bufferLimit: 64 * 1024)
        #expect(m.requestSent(responseWithin: .seconds(30)) == .none, "the idle timer fires first anyway")
        // The instance is silent while the relaying task waits: that is the instance's idleness.
        #expect(m.timerFired(now: Self.t0 + .seconds(1), readerWaiting: true, buffered: false) == .closeIdle)
        var n = machine(idle: .seconds(60))
        n.beginExchange(bufferLimit: 64 * 1024)
        _ = n.requestSent(responseWithin: .seconds(5))
        n.responseArrived()
        // After a head, the timer never sleeps longer than the last response deadline (5 s).
        #expect(n.timerFired(now: Self.t0 + .seconds(5), readerWaiting: true, buffered: false) == .arm(Self.t0 + .seconds(10)))
        #expect(n.responseDeadline == nil)
    }

    @Test func aSlowClientIsNotASilentInstance() {
        var m = machine(idle: .seconds(10))
        m.beginExchange(bufferLimit: 64 * 1024)
        _ = m.requestSent(responseWithin: .seconds(10))
        m.responseArrived()
        let late = Self.t0 + .seconds(10)
        // The relaying task is busy with the client (not waiting here): the idle clock starts over.
        #expect(m.timerFired(now: late, readerWaiting: false, buffered: false) == .arm(late + .seconds(10)))
        // Parts wait for the reader, or reading is paused: the same.
        #expect(m.timerFired(now: late, readerWaiting: false, buffered: true) == .arm(late + .seconds(10)))
        // The reader waits again and the instance stays silent: idle.
        #expect(m.timerFired(now: late, readerWaiting: true, buffered: false) == .closeIdle)
    }

    @Test func anIdlePooledConnectionCloses() {
        var m = machine(idle: .seconds(30))
        m.beginExchange(bufferLimit: 64 * 1024)
        _ = m.requestSent(responseWithin: .seconds(5))
        m.responseArrived()
        #expect(m.endExchange(now: Self.t0) == .none)
        _ = m.read(now: Self.t0 + .seconds(1), bufferedParts: 0, bufferedBytes: 0)
        // Activity moves the idle deadline; in the pool nothing excuses idleness.
        #expect(m.timerFired(now: Self.t0 + .seconds(30), readerWaiting: false, buffered: false) == .arm(Self.t0 + .seconds(31)))
        #expect(m.timerFired(now: Self.t0 + .seconds(31), readerWaiting: false, buffered: true) == .closeIdle)
    }

    @Test func pausedReadingExcusesSilenceOnlyDuringAnExchangeAndAStoppedMachineArmsNothing() {
        var m = machine(idle: .seconds(10))
        m.beginExchange(bufferLimit: 1024)
        _ = m.requestSent(responseWithin: .seconds(10))
        m.responseArrived()
        #expect(m.read(now: Self.t0, bufferedParts: 1, bufferedBytes: 512) == .pauseReading, "half the buffer holds the instance's side")
        // The client is slow and reading from the instance is paused: not the instance's silence.
        #expect(m.timerFired(now: Self.t0 + .seconds(10), readerWaiting: false, buffered: false) == .arm(Self.t0 + .seconds(20)))
        // Back in the pool the connection reads again (it must see the instance close it), and the
        // pause would be no excuse anyway.
        #expect(m.endExchange(now: Self.t0) == .resumeReading)
        #expect(m.timerFired(now: Self.t0 + .seconds(20), readerWaiting: false, buffered: false) == .closeIdle)
        m.stopped()
        #expect(m.timerAt == .distantFuture)
    }

    // MARK: Through EmbeddedChannel (the event loop's virtual clock)

    /// A connected channel with the handler, on an embedded loop whose clock the test advances.
    func connected(idleTimeout: TimeAmount) async throws -> (EmbeddedChannel, EmbeddedEventLoop, UpstreamConnectionHandler) {
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(loop: loop)
        let handler = UpstreamConnectionHandler(idleTimeout: idleTimeout)
        try channel.pipeline.syncOperations.addHandler(handler)
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).get()
        return (channel, loop, handler)
    }

    @Test func throughAChannelALateHeadClosesItAndEndsTheRead() async throws {
        let (channel, loop, handler) = try await connected(idleTimeout: .seconds(60))
        handler.beginExchange(method: .get, bufferLimit: 64 * 1024)
        handler.touch()
        handler.expectResponse(within: .seconds(2))
        loop.advanceTime(by: .milliseconds(1999))
        #expect(channel.isActive)
        loop.advanceTime(by: .milliseconds(1))
        #expect(!channel.isActive && handler.timedOut)
        // The waiting read ends; the exchange reports it as a timeout (`timedOut`), not a broken instance.
        let part = try await handler.next()
        #expect(part == nil)
    }

    /// Through a channel: a response whose head and whole body came in one read, past half the buffer,
    /// is taken whole — and the socket is read again for the next exchange.
    @Test func throughAChannelAWholeResponseTakenLeavesTheSocketRead() async throws {
        let (channel, _, handler) = try await connected(idleTimeout: .seconds(60))
        handler.beginExchange(method: .get, bufferLimit: 64 * 1024)
        let body = String(repeating: "x", count: 40_000)
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 40000\r\n\r\n" + body))
        #expect(handler.isReadingPaused)
        guard case .head = try await handler.next() else {
            Issue.record("the head first")
            return
        }
        #expect(handler.takeCompleteBody()?.readableBytes == 40_000)
        #expect(!handler.isReadingPaused)
        #expect(try await channel.getOption(ChannelOptions.autoRead).get(), "the socket is read again")
        handler.endExchange()
        _ = try? channel.finish()
    }

    @Test func throughAChannelAnIdleConnectionClosesAfterItsTimeout() async throws {
        let (channel, loop, handler) = try await connected(idleTimeout: .seconds(5))
        loop.advanceTime(by: .seconds(3))
        // Activity: an exchange (the deadline moves).
        handler.beginExchange(method: .get, bufferLimit: 64 * 1024)
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 204 No Content\r\n\r\n"))
        handler.endExchange()
        loop.advanceTime(by: .seconds(3))
        #expect(channel.isActive, "3 s since the last byte")
        loop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive, "5 s since the last byte")
        #expect(!handler.timedOut, "idle, not a late response")
    }
}
