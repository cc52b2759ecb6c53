import NIOCore
import NIOEmbedded
import Testing

@testable import RedFireGateway

/// `ExchangeAbandonment` as a value: what an abandonment closes, and what it refuses.
@Suite("Exchange abandonment")
struct ExchangeAbandonmentTests {
    static func activeChannel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
        return channel
    }

    @Test func abandoningClosesTheAttachedExchangeAndRefusesLaterOnes() throws {
        let abandonment = ExchangeAbandonment()
        let channel = try Self.activeChannel()
        #expect(abandonment.attach(channel))
        #expect(!abandonment.isAbandoned)
        abandonment.abandon()
        #expect(!channel.isActive, "the instance sees the request aborted")
        #expect(abandonment.isAbandoned)
        let next = try Self.activeChannel()
        #expect(!abandonment.attach(next), "an exchange that had not started never starts")
        #expect(next.isActive, "a refused attach closes nothing itself")
        _ = try? next.finish()
    }

    @Test func aDetachedExchangeIsNotClosed() throws {
        let abandonment = ExchangeAbandonment()
        let first = try Self.activeChannel()
        let second = try Self.activeChannel()
        #expect(abandonment.attach(first))
        abandonment.detach(first)
        #expect(abandonment.attach(second))
        abandonment.detach(first)  // a stale detach leaves the current exchange attached
        abandonment.abandon()
        #expect(first.isActive, "back in the pool: another request's connection")
        #expect(!second.isActive)
        _ = try? first.finish()
    }

    @Test func renewingStartsTheNextRequestUnabandoned() throws {
        let abandonment = ExchangeAbandonment()
        abandonment.abandon()
        abandonment.renew()
        #expect(!abandonment.isAbandoned)
        let channel = try Self.activeChannel()
        #expect(abandonment.attach(channel))
        abandonment.detach(channel)
        abandonment.abandon()
        #expect(channel.isActive)
        _ = try? channel.finish()
    }
}
