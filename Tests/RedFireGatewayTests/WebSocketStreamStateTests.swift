import NIOCore
import Testing

@testable import RedFireGateway

/// The relayed WebSocket's rules as a value: no sockets, no sleeps — instants are passed in.
@Suite("WebSocket stream rules")
struct WebSocketStreamStateTests {
    typealias State = WebSocketStreamState
    static let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    static func state(clientMessage: Int = 100, idle: TimeAmount = .seconds(60), endAt: NIODeadline? = nil, tokenExpiresAt: NIODeadline? = nil) -> State {
        var state = State(limits: .init(clientMessage: clientMessage, upstreamMessage: 1000, idle: idle, endAt: endAt, tokenExpiresAt: tokenExpiresAt,
                                        closeTimeout: .seconds(5)), now: start)
        _ = state.started(now: start)
        return state
    }

    @Test func framesPassBothWaysAndMessagesAreCounted() {
        var state = Self.state()
        #expect(state.frame(from: .client, opcode: 0x1, fin: true, length: 10, masked: true, now: Self.start) == .forward)
        #expect(state.frame(from: .upstream, opcode: 0x2, fin: false, length: 500, masked: false, now: Self.start) == .forward)
        // A ping between fragments passes (control frames may interleave, RFC 6455 §5.4).
        #expect(state.frame(from: .upstream, opcode: 0x9, fin: true, length: 0, masked: false, now: Self.start) == .forward)
        #expect(state.frame(from: .upstream, opcode: 0x0, fin: true, length: 400, masked: false, now: Self.start) == .forward)
        #expect(state.client.messages == 1)
        #expect(state.upstream.messages == 1)
    }

    @Test func aMessageOverTheLimitAcrossFragmentsIsRefusedWith1009AndThePeerGets1001() {
        var state = Self.state(clientMessage: 100)
        #expect(state.frame(from: .client, opcode: 0x1, fin: false, length: 60, masked: true, now: Self.start) == .forward)
        let action = state.frame(from: .client, opcode: 0x0, fin: false, length: 60, masked: true, now: Self.start)
        #expect(action == .close(client: .init(code: 1009, reason: "message too big"), upstream: .init(code: 1001, reason: "peer sent a message too big"),
                                 cut: [.client]))
        // Nothing more passes from the client; the instance's answer to the close ends its side.
        #expect(state.frame(from: .client, opcode: 0x0, fin: true, length: 1, masked: true, now: Self.start) == .drop)
        #expect(state.frame(from: .upstream, opcode: 0x1, fin: true, length: 5, masked: false, now: Self.start) == .drop)
        #expect(state.frame(from: .upstream, opcode: 0x8, fin: true, length: 2, masked: false, closeCode: 1001, now: Self.start)
                == .close(client: nil, upstream: nil, cut: [.upstream]))
        #expect(state.finished)
        #expect(state.closeCode == 1009)
    }

    @Test func protocolViolationsAreClosedWith1002() {
        for (side, opcode, masked) in [(State.Side.client, UInt8(0x1), false), (.upstream, 0x1, true), (.client, 0x0, true), (.client, 0x3, true)] {
            var state = Self.state()
            guard case .close(let client, let upstream, let cut) = state.frame(from: side, opcode: opcode, fin: true, length: 1, masked: masked, now: Self.start) else {
                Issue.record("no close for \(side) opcode \(opcode) masked \(masked)")
                continue
            }
            #expect((side == .client ? client : upstream)?.code == 1002)
            #expect((side == .client ? upstream : client)?.code == 1001)
            #expect(cut == [side])
        }
    }

    @Test func aCloseIsPassedOnAndTheAnswerEndsBothSides() {
        var state = Self.state()
        // The client closes: passed to the instance.
        #expect(state.frame(from: .client, opcode: 0x8, fin: true, length: 2, masked: true, closeCode: 1000, now: Self.start) == .forwardClose(cut: []))
        // Data still in flight from the instance passes (it has not seen the close yet) ...
        #expect(state.frame(from: .upstream, opcode: 0x1, fin: true, length: 3, masked: false, now: Self.start) == .forward)
        // ... but nothing more from the client, which has closed.
        #expect(state.frame(from: .client, opcode: 0x1, fin: true, length: 3, masked: true, now: Self.start) == .drop)
        // Its close answers answers: passed on, and both sides are done.
        #expect(state.frame(from: .upstream, opcode: 0x8, fin: true, length: 2, masked: false, closeCode: 1000, now: Self.start)
                == .forwardClose(cut: [.upstream, .client]))
        #expect(state.finished)
        #expect(state.closeCode == 1000 && state.closedBy == .client)
    }

    @Test func theTimerEndsIdleOldAndExpiredStreams() {
        var idle = Self.state(idle: .seconds(10))
        #expect(idle.timerFired(now: Self.start + .seconds(5)) == .arm(Self.start + .seconds(10)))
        // Traffic moves the idle deadline.
        _ = idle.frame(from: .upstream, opcode: 0xA, fin: true, length: 0, masked: false, now: Self.start + .seconds(8))
        #expect(idle.timerFired(now: Self.start + .seconds(10)) == .arm(Self.start + .seconds(18)))
        #expect(idle.timerFired(now: Self.start + .seconds(18))
                == .close(client: .init(code: 1001, reason: "idle timeout"), upstream: .init(code: 1001, reason: "idle timeout"), cut: []))

        var expired = Self.state(tokenExpiresAt: Self.start + .seconds(3))
        #expect(expired.timerFired(now: Self.start + .seconds(3))
                == .close(client: .init(code: 1008, reason: "token expired"), upstream: .init(code: 1008, reason: "token expired"), cut: []))
        // Whoever does not answer within the close timeout is cut.
        #expect(expired.timerFired(now: Self.start + .seconds(4)) == .arm(Self.start + .seconds(8)))
        #expect(expired.timerFired(now: Self.start + .seconds(8)) == .close(client: nil, upstream: nil, cut: [.client, .upstream]))

        var old = Self.state(endAt: Self.start + .seconds(60))
        #expect(old.timerFired(now: Self.start + .seconds(60))
                == .close(client: .init(code: 1001, reason: "maximum duration"), upstream: .init(code: 1001, reason: "maximum duration"), cut: []))
    }

    @Test func anInstanceThatVanishesGivesTheClient1014AndAClientThatVanishesGivesTheInstance1001() {
        var dead = Self.state()
        #expect(dead.connectionClosed(.upstream, now: Self.start)
                == .close(client: .init(code: 1014, reason: "instance went away"), upstream: nil, cut: []))
        var gone = Self.state()
        #expect(gone.connectionClosed(.client, now: Self.start)
                == .close(client: nil, upstream: .init(code: 1001, reason: "client went away"), cut: []))
    }
}
