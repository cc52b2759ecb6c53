import Testing

@testable import RedFireGateway

/// The retry decision as a value: no sockets, no clock.
@Suite("Forward attempts")
struct ForwardAttemptsTests {
    let a = InstanceRuntime(id: "a", serviceName: "s")
    let b = InstanceRuntime(id: "b", serviceName: "s")
    let c = InstanceRuntime(id: "c", serviceName: "s")

    @Test func aConnectFailureIsRetriedWithoutTheBudget() {
        var attempts = ForwardAttempts(limit: 3, repeatable: true)
        attempts.start()
        let next = attempts.failed(.connectFailed, on: a, after: .milliseconds(5), bodyUntouched: true) {
            Issue.record("nothing was sent: the budget is not asked")
            return false
        }
        #expect(next == .retry)
        #expect(attempts.tried.map(\.id) == ["a"] && attempts.errors == 1 && attempts.timeouts == 0)
        #expect(attempts.failedTime == .milliseconds(5))
    }

    @Test func aFailureAfterSendingNeedsTheBudget() {
        var attempts = ForwardAttempts(limit: 3, repeatable: true)
        attempts.start()
        #expect(attempts.failed(.connectionFailed, on: a, after: .zero, bodyUntouched: true) { false } == .answer)
        var funded = ForwardAttempts(limit: 3, repeatable: true)
        funded.start()
        #expect(funded.failed(.connectionFailed, on: a, after: .zero, bodyUntouched: true) { true } == .retry)
    }

    @Test(arguments: [
        (repeatable: false, bodyUntouched: true, failure: UpstreamFailure.connectFailed),
        (repeatable: true, bodyUntouched: false, failure: UpstreamFailure.connectFailed),
        (repeatable: true, bodyUntouched: true, failure: UpstreamFailure.responseTimeout),
    ])
    func someFailuresAreNeverRetried(_ repeatable: Bool, _ bodyUntouched: Bool, _ failure: UpstreamFailure) {
        var attempts = ForwardAttempts(limit: 3, repeatable: repeatable)
        attempts.start()
        #expect(attempts.failed(failure, on: a, after: .zero, bodyUntouched: bodyUntouched) { true } == .answer)
    }

    @Test func attemptsStopAtTheLimitAndTheLastFailureDecidesTheAnswer() {
        var attempts = ForwardAttempts(limit: 2, repeatable: true)
        attempts.start()
        #expect(attempts.failed(.connectFailed, on: a, after: .zero, bodyUntouched: true) { true } == .retry)
        attempts.skip(b)
        attempts.start()
        #expect(attempts.failed(.connectTimeout, on: c, after: .zero, bodyUntouched: true) { true } == .answer)
        #expect(!attempts.mayStart)
        #expect(attempts.tried.map(\.id) == ["a", "b", "c"])
        #expect(attempts.failed == 2 && attempts.timeouts == 1)
        #expect(attempts.answer.error == .upstreamTimeout && !attempts.answer.noInstance)
    }

    @Test func noAttemptAtAllIsUpstreamUnavailable() {
        let attempts = ForwardAttempts(limit: 2, repeatable: true)
        #expect(attempts.answer.error == .upstreamUnavailable && attempts.answer.noInstance)
        var broken = ForwardAttempts(limit: 1, repeatable: true)
        broken.start()
        _ = broken.failed(.connectionFailed, on: a, after: .zero, bodyUntouched: true) { true }
        #expect(broken.answer.error == .badGateway)
    }

    /// The in-flight count is owned by the instance: a lease counts once and releases once, whether
    /// released, dropped, or handed to a streaming body's hold.
    @Test func inFlightLeasesReleaseExactlyOnce() {
        let lease = a.dispatch()
        #expect(a.inFlight == 1 && a.dispatched == 1)
        lease.release()
        #expect(a.inFlight == 0)
        do { _ = a.dispatch() }
        #expect(a.inFlight == 0 && a.dispatched == 2)
        var hold: InFlightHold? = a.dispatch().held()
        #expect(a.inFlight == 1)
        withExtendedLifetime(hold) {}
        hold = nil
        #expect(a.inFlight == 0 && a.dispatched == 3)
    }
}
