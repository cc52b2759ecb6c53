import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOHTTPTypes
import Testing

@testable import RedFireGateway

/// The client connection's rules: as a value (every transition, instants chosen by the test) and through
/// `EmbeddedChannel` with the codec and its parser (the event loop's virtual clock: time advanced,
/// never slept) — timeouts, pipelining, early responses, lingering close, 1xx, HEAD, HTTP/1.0, body drain.
@Suite struct HTTP1ServerConnectionTests {
    typealias Machine = HTTP1ServerConnectionStateMachine<String>
    static let t0 = NIODeadline.uptimeNanoseconds(5_000_000_000)
    static let timeouts = Machine.Timeouts(header: .seconds(10), idle: .seconds(60), body: .seconds(30), minBodyRate: 0)
    static let get11 = HTTP1ResponseWriter.Request(http10: false, head: false)

    func started() -> Machine {
        var m = Machine(timeouts: Self.timeouts)
        guard case .arm(let at) = m.started(now: Self.t0) else { Issue.record("no timer"); return m }
        #expect(at == Self.t0 + .seconds(10), "the first header section is timed from the connection's start")
        return m
    }

    // MARK: The value

    @Test func aKeepAliveExchangeGoesIdleAndIsTimedAgain() {
        var m = started()
        #expect(isNone(m.requestHead(Self.get11, keepAlive: true, upgrade: false, declaresBody: false, now: Self.t0)))
        m.requestEnd()
        let head = m.responseHead(final: true, isContinue: false, now: Self.t0)
        #expect(!head.drop && !head.close)
        // The timer armed at the start still runs: nothing new to arm.
        guard case .keepOpen(let action) = m.responseEnd(now: Self.t0 + .seconds(1)) else { Issue.record("closed"); return }
        #expect(isNone(action))
        #expect(m.idleSince == Self.t0 + .seconds(1) && m.headSince == nil)
        // Idle 60 s: the timer looks no later than a header timeout, in case bytes start a head.
        #expect(arm(m.timerFired(now: Self.t0 + .seconds(10))) == Self.t0 + .seconds(20))
        #expect(isClose(m.timerFired(now: Self.t0 + .seconds(61))))
    }

    @Test func aSlowHeaderSectionIs408OnlyWhenBytesCame() {
        var silent = started()
        #expect(isClose(silent.timerFired(now: Self.t0 + .seconds(10))), "connected and said nothing: closed without a word")
        var slow = started()
        slow.bytesArrived(now: Self.t0 + .seconds(1))
        guard case .refuse(let error) = slow.timerFired(now: Self.t0 + .seconds(10)) else { Issue.record("not refused"); return }
        #expect(error == .requestTimeout)
        guard case .writeRefusal(let written) = slow.refused("408") else { Issue.record("not written"); return }
        #expect(written == "408" && slow.inboundClosed && slow.outboundClosed)
    }

    @Test func aRefusalWaitsBehindPipelinedResponses() {
        var m = started()
        _ = m.requestHead(Self.get11, keepAlive: true, upgrade: false, declaresBody: false, now: Self.t0)
        m.requestEnd()
        _ = m.requestHead(Self.get11, keepAlive: true, upgrade: false, declaresBody: false, now: Self.t0)
        m.requestEnd()
        #expect(isNone(m.refused("400")), "two responses are owed first")
        _ = m.responseHead(final: true, isContinue: false, now: Self.t0)
        guard case .keepOpen = m.responseEnd(now: Self.t0) else { Issue.record("first"); return }
        _ = m.responseHead(final: true, isContinue: false, now: Self.t0)
        guard case .writeRefusal(let refusal) = m.responseEnd(now: Self.t0) else { Issue.record("refusal not written after the second"); return }
        #expect(refusal == "400" && m.outboundClosed)
    }

    @Test func closingAfterAResponseTheClientOrTheServerAskedFor() {
        var close = started()
        _ = close.requestHead(Self.get11, keepAlive: false, upgrade: false, declaresBody: false, now: Self.t0)
        #expect(close.responseHead(final: true, isContinue: false, now: Self.t0).close, "the head says Connection: close")
        guard case .closeWhenWritten = close.responseEnd(now: Self.t0) else { Issue.record("kept"); return }
        var upgrade = started()
        _ = upgrade.requestHead(Self.get11, keepAlive: true, upgrade: true, declaresBody: false, now: Self.t0)
        // An upgrade answered as a plain request keeps the connection; the parser, stopped at it, is replaced.
        #expect(upgrade.parserStopped)
        guard case .keepOpen = upgrade.responseEnd(now: Self.t0) else { Issue.record("an upgrade request's connection closed"); return }
        upgrade.parserReplaced()
        #expect(!upgrade.parserStopped)
        var quiesced = started()
        _ = quiesced.requestHead(Self.get11, keepAlive: true, upgrade: false, declaresBody: false, now: Self.t0)
        #expect(isNone(quiesced.quiesce()), "busy: after the response")
        guard case .closeWhenWritten = quiesced.responseEnd(now: Self.t0) else { Issue.record("kept"); return }
        var idle = started()
        #expect(isClose(idle.quiesce()), "idle: at once")
    }

    @Test func theClientsFINClosesAnIdleConnectionNowABusyOneAfterItsResponse() {
        var idle = started()
        #expect(isClose(idle.peerClosedInput()))
        var busy = started()
        _ = busy.requestHead(Self.get11, keepAlive: true, upgrade: false, declaresBody: false, now: Self.t0)
        #expect(isNone(busy.peerClosedInput()) && busy.inboundClosed)
        guard case .closeWhenWritten = busy.responseEnd(now: Self.t0) else { Issue.record("kept"); return }
    }

    @Test func http10GetsNoInterimResponse() {
        var m = started()
        _ = m.requestHead(.init(http10: true, head: false), keepAlive: true, upgrade: false, declaresBody: true, now: Self.t0)
        #expect(m.responseHead(final: false, isContinue: true, now: Self.t0).drop)
        #expect(!m.responseHead(final: true, isContinue: false, now: Self.t0).drop)
    }

    @Test func aPausedBodyTimesOutButNotWhileTheGatewayHoldsReadsOff() {
        var m = started()
        #expect(isNone(m.requestHead(Self.get11, keepAlive: true, upgrade: false, declaresBody: true, now: Self.t0)),
                "the running timer (10 s) fires before the body check (30 s) is due: it stays")
        m.bodyPart(bytes: 100, now: Self.t0 + .seconds(5))
        #expect(arm(m.timerFired(now: Self.t0 + .seconds(10))) == Self.t0 + .seconds(35), "the pause counts from the last part")
        // The gateway holds reads off (back-pressure): not the client's pause.
        m.readCompleted(now: Self.t0 + .seconds(11))
        #expect(arm(m.timerFired(now: Self.t0 + .seconds(35))) == Self.t0 + .seconds(65))
        m.readRequested(now: Self.t0 + .seconds(40))
        #expect(arm(m.timerFired(now: Self.t0 + .seconds(65))) == Self.t0 + .seconds(70))
        guard case .bodyTimedOut = m.timerFired(now: Self.t0 + .seconds(70)) else { Issue.record("not timed out"); return }
        #expect(m.inboundClosed && m.closeAfterResponse && !m.readingBody)
    }

    @Test func aBodyTooSlowOnAverageTimesOut() {
        var timeouts = Self.timeouts
        timeouts.minBodyRate = 100
        var m = Machine(timeouts: timeouts)
        _ = m.started(now: Self.t0)
        _ = m.requestHead(Self.get11, keepAlive: true, upgrade: false, declaresBody: true, now: Self.t0)
        for second in 1...12 { m.bodyPart(bytes: 10, now: Self.t0 + .seconds(Int64(second))) }
        guard case .bodyTimedOut = m.timerFired(now: Self.t0 + .seconds(12)) else { Issue.record("10 B/s passed a 100 B/s floor"); return }
    }

    @Test func aBrokenBodyFailsItsReaderOrClosesWhenAnswered() {
        var m = started()
        _ = m.requestHead(Self.get11, keepAlive: true, upgrade: false, declaresBody: true, now: Self.t0)
        guard case .failBody = m.bodyBroken() else { Issue.record("reader not failed"); return }
        guard case .closeWhenWritten = m.responseEnd(now: Self.t0) else { Issue.record("kept"); return }
    }

    @Test func anEarlyResponseLeavesItsBodyToDrainWithoutStartingAHeaderSection() {
        var m = started()
        _ = m.requestHead(Self.get11, keepAlive: true, upgrade: false, declaresBody: true, now: Self.t0)
        m.bodyPart(bytes: 10, now: Self.t0 + .seconds(1))
        // Answered (a 413, a 401) before the body ended: the connection stays, the rest of the body is dropped as it comes.
        _ = m.responseHead(final: true, isContinue: false, now: Self.t0 + .seconds(2))
        guard case .keepOpen = m.responseEnd(now: Self.t0 + .seconds(2)) else { Issue.record("closed"); return }
        #expect(m.readingBody && !m.hasPendingRequests)
        m.bytesArrived(now: Self.t0 + .seconds(3))
        #expect(m.headSince == nil && !m.headBytesSeen, "body bytes being drained are not the next request's head")
        m.requestEnd()
        m.bytesArrived(now: Self.t0 + .seconds(4))
        #expect(m.headSince == Self.t0 + .seconds(4) && m.headBytesSeen, "after the body, bytes start the next head")
        guard case .refuse(.requestTimeout) = m.timerFired(now: Self.t0 + .seconds(14)) else { Issue.record("the next head was not timed"); return }
    }

    @Test func interimResponsesOnHTTP11PassAndA100ContinueRestartsTheBodyClock() {
        var m = started()
        _ = m.requestHead(Self.get11, keepAlive: true, upgrade: false, declaresBody: true, now: Self.t0)
        let early = m.responseHead(final: false, isContinue: false, now: Self.t0 + .seconds(1))
        #expect(!early.drop && !early.close, "103 Early Hints goes to an HTTP/1.1 client")
        // The client waited for `100 Continue` 20 s (the gateway's time, not a pause of the client's).
        let proceed = m.responseHead(final: false, isContinue: true, now: Self.t0 + .seconds(20))
        #expect(!proceed.drop && m.bodySince == Self.t0 + .seconds(20))
        #expect(arm(m.timerFired(now: Self.t0 + .seconds(30))) == Self.t0 + .seconds(50), "the body's pause counts from the 100")
        #expect(m.hasPendingRequests, "an interim response does not answer the request")
    }

    @Test func eachResponseIsWrittenForItsOwnRequestHEADAndHTTP10Included() {
        var m = started()
        _ = m.requestHead(Self.get11, keepAlive: true, upgrade: false, declaresBody: false, now: Self.t0)
        m.requestEnd()
        _ = m.requestHead(.init(http10: false, head: true), keepAlive: true, upgrade: false, declaresBody: false, now: Self.t0)
        m.requestEnd()
        _ = m.requestHead(.init(http10: true, head: false), keepAlive: false, upgrade: false, declaresBody: false, now: Self.t0)
        m.requestEnd()
        #expect(m.inboundClosed, "nothing after the request that said close is processed")
        let first = m.responseHead(final: true, isContinue: false, now: Self.t0)
        #expect(!first.request.head && !first.request.http10 && !first.close, "a later request's close is not this response's")
        _ = m.responseEnd(now: Self.t0)
        let second = m.responseHead(final: true, isContinue: false, now: Self.t0)
        #expect(second.request.head && !second.close, "HEAD: the writer sends no body")
        _ = m.responseEnd(now: Self.t0)
        let third = m.responseHead(final: true, isContinue: false, now: Self.t0)
        #expect(third.request.http10 && third.close, "HTTP/1.0 without keep-alive: the head says close")
        guard case .closeWhenWritten = m.responseEnd(now: Self.t0) else { Issue.record("kept"); return }
    }

    @Test func aResponseThatClosesLeavesLaterPipelinedRequestsUnanswered() {
        var m = started()
        _ = m.requestHead(.init(http10: true, head: false), keepAlive: true, upgrade: false, declaresBody: false, now: Self.t0)
        m.requestEnd()
        _ = m.requestHead(Self.get11, keepAlive: true, upgrade: false, declaresBody: false, now: Self.t0)
        m.requestEnd()
        // The first response's body can only end with the connection (HTTP/1.0, length unknown): its head said close.
        #expect(!m.responseHead(final: true, isContinue: false, now: Self.t0).close)
        m.responseCloses()
        guard case .closeWhenWritten = m.responseEnd(now: Self.t0) else { Issue.record("the second request was answered after a close"); return }
        #expect(!m.hasPendingRequests && m.outboundClosed)
    }

    @Test func aSwitchedOrClosedConnectionIgnoresTimersRefusalsAndLateEvents() {
        var switched = started()
        _ = switched.requestHead(Self.get11, keepAlive: true, upgrade: true, declaresBody: false, now: Self.t0)
        switched.switchedProtocols()
        #expect(switched.inboundClosed && switched.outboundClosed && !switched.hasPendingRequests && switched.timerAt == .distantFuture)
        #expect(isNone(switched.timerFired(now: Self.t0 + .seconds(100))), "the new protocol's handlers time the connection now")
        var closed = started()
        #expect(isClose(closed.close()))
        #expect(isNone(closed.timerFired(now: Self.t0 + .seconds(10))))
        #expect(isNone(closed.refused("400")), "nothing is written to a closing connection")
        var finDuringBody = started()
        _ = finDuringBody.requestHead(Self.get11, keepAlive: true, upgrade: false, declaresBody: true, now: Self.t0)
        #expect(isNone(finDuringBody.peerClosedInput()))
        #expect(finDuringBody.responseHead(final: true, isContinue: false, now: Self.t0).close, "the response says the connection closes")
        guard case .closeWhenWritten = finDuringBody.responseEnd(now: Self.t0) else { Issue.record("kept"); return }
    }

    @Test func aReplacementCharacterIsFoundAnywhereInAValue() {
        #expect(!GatewayHTTPCodec.containsReplacementCharacter("plain ascii"))
        #expect(!GatewayHTTPCodec.containsReplacementCharacter(""))
        #expect(GatewayHTTPCodec.containsReplacementCharacter("\u{FFFD}"))
        #expect(GatewayHTTPCodec.containsReplacementCharacter("token=a\u{FFFD}"))
        // Other characters whose UTF-8 starts with EF (U+F000 is EF 80 80), before and after one.
        #expect(!GatewayHTTPCodec.containsReplacementCharacter("\u{F000}x\u{FFEE}"))
        #expect(GatewayHTTPCodec.containsReplacementCharacter("\u{F000}\u{FFFD}"))
        #expect(!GatewayHTTPCodec.containsReplacementCharacter("caf\u{E9}"))
    }

    // MARK: Through EmbeddedChannel

    /// What the codec passes on.
    final class Parts: ChannelInboundHandler {
        typealias InboundIn = HTTPRequestPart
        var received: [HTTPRequestPart] = []
        var errors: [any Error] = []
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { received.append(unwrapInboundIn(data)) }
        func errorCaught(context: ChannelHandlerContext, error: any Error) { errors.append(error) }
    }

    func channel(header: TimeAmount = .seconds(10), body: TimeAmount = .seconds(30)) throws -> (EmbeddedChannel, EmbeddedEventLoop, Parts) {
        var config = GatewayConfig()
        config.limits.headerTimeout = .nanoseconds(header.nanoseconds)
        config.limits.bodyTimeout = .nanoseconds(body.nanoseconds)
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(loop: loop)
        let parts = Parts()
        let codec = GatewayHTTPCodec(settings: ConnectionSettings(config: config), connections: ConnectionCount())
        // As `GatewayHTTPServer` builds it: the codec (with llhttp).
        try channel.pipeline.syncOperations.addHandler(codec)
        try channel.pipeline.syncOperations.addHandler(parts)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return (channel, loop, parts)
    }

    func output(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    /// As the request loop writes a buffered response: head and body without a flush, the end flushed.
    func respond(_ channel: EmbeddedChannel, _ response: HTTPResponse, body: String? = nil) throws {
        channel.write(HTTPResponsePart.head(response), promise: nil)
        if let body { channel.write(HTTPResponsePart.body(ByteBuffer(string: body)), promise: nil) }
        channel.writeAndFlush(HTTPResponsePart.end(nil), promise: nil)
    }

    /// A client whose request arrives a byte per read (fields cut anywhere) gets the same request through
    /// as one that sends it whole; a value with invalid UTF-8 cut in the middle is still refused.
    @Test func aRequestReadAByteAtATimeIsTheSameRequest() throws {
        let text = "POST /orders?id=7 HTTP/1.1\r\nHost: gw.example:8080\r\nX-Request-ID: abc-123\r\nAuthorization: Bearer a.b.c\r\n"
            + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n"
        func parts(readsOf size: Int) throws -> String {
            let (channel, _, parts) = try self.channel()
            let bytes = Array(text.utf8)
            var start = 0
            while start < bytes.count {
                let end = min(bytes.count, start + size)
                try channel.writeInbound(ByteBuffer(bytes: bytes[start..<end]))
                start = end
            }
            return parts.received.map { part in
                switch part {
                case .head(let request):
                    let fields = request.headerFields.map { "\($0.name.rawName)=\($0.value)" }.joined(separator: ",")
                    return "\(request.method.rawValue) \(request.authority ?? "-") \(request.path ?? "-") \(fields)"
                case .body(let bytes): return "body " + String(buffer: bytes)
                case .end(let trailers): return "end " + (trailers.map { $0.map { "\($0.name.rawName)=\($0.value)" }.joined() } ?? "-")
                }
            }.joined(separator: " | ")
        }
        let whole = try parts(readsOf: text.utf8.count)
        #expect(whole == "POST gw.example:8080 /orders?id=7 X-Request-ID=abc-123,Authorization=Bearer a.b.c,Transfer-Encoding=chunked | body abc | end X-Trailer=t")
        #expect(try parts(readsOf: 1) == whole.replacingOccurrences(of: "body abc", with: "body a | body b | body c"))

        let (channel, _, received) = try self.channel()
        for byte in Array("GET / HTTP/1.1\r\nHost: x\r\nX-Name: caf".utf8) + [0xC3] + Array("\r\n\r\n".utf8) {
            _ = try? channel.writeInbound(ByteBuffer(bytes: [byte]))
        }
        #expect(received.received.isEmpty)
        let refusal = try output(channel)
        #expect(refusal.hasPrefix("HTTP/1.1 400 Bad Request\r\n") && refusal.contains("\"malformed_request\""), "\(refusal)")
    }

    @Test func pipelinedRequestsAreAnsweredInOrderEachInOneWrite() throws {
        let (channel, _, parts) = try channel()
        try channel.writeInbound(ByteBuffer(string: "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"))
        #expect(parts.received.count == 4, "two heads and two ends")
        try respond(channel, HTTPResponse(status: .ok, headerFields: [.contentLength: "1"]), body: "a")
        #expect(try channel.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) } == "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na")
        try respond(channel, HTTPResponse(status: .ok), body: "bb")
        #expect(try output(channel) == "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nbb\r\n0\r\n\r\n")
        #expect(channel.isActive)
    }

    @Test func aMalformedRequestAfterAPipelinedOneIsRefusedAfterItsResponse() throws {
        let (channel, loop, _) = try channel()
        _ = try? channel.writeInbound(ByteBuffer(string: "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"))
        #expect(try output(channel).isEmpty, "the refusal waits")
        try respond(channel, HTTPResponse(status: .ok, headerFields: [.contentLength: "1"]), body: "a")
        let text = try output(channel)
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 400 Bad Request\r\n"), "\(text)")
        #expect(text.contains("Connection: close") && text.contains("\"malformed_request\""))
        // Lingering close: output shut at once, the connection closed after the linger.
        loop.advanceTime(by: GatewayHTTPCodec.linger)
        #expect(!channel.isActive)
    }

    @Test func aRequestThatSaysCloseIsTheLastOneAnsweredAndOnlyItsResponseSaysSo() throws {
        let (channel, loop, parts) = try channel()
        try channel.writeInbound(ByteBuffer(string: "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n"))
        #expect(parts.received.count == 4, "/c comes after the client's close: not processed (RFC 9112 §9.6)")
        try respond(channel, HTTPResponse(status: .ok, headerFields: [.contentLength: "1"]), body: "a")
        #expect(try output(channel) == "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na", "the first response does not announce the second's close")
        try respond(channel, HTTPResponse(status: .ok, headerFields: [.contentLength: "1"]), body: "b")
        #expect(try output(channel) == "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\nb")
        loop.advanceTime(by: GatewayHTTPCodec.linger)
        #expect(!channel.isActive)
    }

    @Test func aSlowHeaderSectionGets408AndASilentOneIsClosed() throws {
        let (slow, slowLoop, _) = try channel(header: .seconds(5))
        try slow.writeInbound(ByteBuffer(string: "GET /a HTT"))
        slowLoop.advanceTime(by: .seconds(4))
        #expect(try output(slow).isEmpty)
        slowLoop.advanceTime(by: .seconds(1))
        let refused = try output(slow)
        #expect(refused.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"), "\(refused)")
        let (silent, silentLoop, _) = try channel(header: .seconds(5))
        silentLoop.advanceTime(by: .seconds(5))
        #expect(!silent.isActive)
        #expect(try output(silent).isEmpty, "nothing to answer")
    }

    @Test func headAndHTTP10AreAnsweredAsTheyMustBe() throws {
        let (channel, _, _) = try channel()
        try channel.writeInbound(ByteBuffer(string: "HEAD /a HTTP/1.1\r\nHost: x\r\n\r\n"))
        try respond(channel, HTTPResponse(status: .ok, headerFields: [.contentLength: "5"]), body: "hello")
        #expect(try output(channel) == "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
        try channel.writeInbound(ByteBuffer(string: "GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"))
        channel.writeAndFlush(HTTPResponsePart.head(HTTPResponse(status: .continue)), promise: nil)
        try respond(channel, HTTPResponse(status: .ok), body: "abc")
        #expect(try output(channel) == "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nabc", "no 100, no chunks: the body ends with the connection")
    }

    @Test func aPausedBodyFailsItsReaderAfterTheBodyTimeout() throws {
        let (channel, loop, parts) = try channel(body: .seconds(3))
        try channel.writeInbound(ByteBuffer(string: "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345"))
        channel.pipeline.read()
        loop.advanceTime(by: .seconds(2))
        #expect(parts.errors.isEmpty)
        loop.advanceTime(by: .seconds(1))
        #expect(parts.errors.contains { $0 is RequestBodyTimeout })
    }

    @Test func theClientsFINClosesAnIdleConnection() throws {
        let (channel, _, _) = try channel()
        try channel.writeInbound(ByteBuffer(string: "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"))
        try respond(channel, HTTPResponse(status: .noContent))
        #expect(try output(channel) == "HTTP/1.1 204 No Content\r\n\r\n")
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(!channel.isActive)
    }

    // Helpers: actions compared by shape (the refusal type is generic).
    func isNone(_ action: Machine.Action) -> Bool { if case .none = action { true } else { false } }
    func isClose(_ action: Machine.Action) -> Bool { if case .close = action { true } else { false } }
    func arm(_ action: Machine.Action) -> NIODeadline? { if case .arm(let at) = action { at } else { nil } }
}
