#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import Synchronization

/// What the listener knows about running out of descriptors: accepts refused with `EMFILE` or
/// `ENFILE`, and whether the listener is paused because of them. Reported in the log (once per
/// episode), `/metrics` and the console.
package final class AcceptPressure: Sendable {
    private struct State {
        var failures = 0
        var exhaustedSince: ContinuousClock.Instant?
    }
    private let state = Mutex(State())
    /// Read on every accept: true only during an episode.
    private let exhausted = Atomic<Bool>(false)
    let logger: Logger
    /// Descriptors held back from accepting (`/dev/null`, opened at start): released the moment an
    /// accept finds none left, so the process itself — the runtime's worker monitor, the crash
    /// reporter, a health check, a log file — never runs out; accepting resumes only once they are held
    /// again. Without them a busy process out of descriptors has died (libdispatch could not open
    /// `/proc/…/stat`; the crash reporter could not open anything).
    private let reserve = Mutex<[Int32]>([])
    static let reserveSize = 16

    init(logger: Logger) {
        self.logger = logger
        _ = refillReserve()
    }

    deinit {
        for descriptor in reserve.withLock({ $0 }) { close(descriptor) }
    }

    /// Gives the reserve back to the process (accepting has just failed for want of descriptors).
    func releaseReserve() {
        let held = reserve.withLock { reserve -> [Int32] in
            defer { reserve.removeAll() }
            return reserve
        }
        for descriptor in held { close(descriptor) }
    }

    /// Takes the reserve back; true when it is whole again (then accepting may resume).
    func refillReserve() -> Bool {
        reserve.withLock { reserve in
            while reserve.count < Self.reserveSize {
                let descriptor = open("/dev/null", O_RDONLY | O_CLOEXEC)
                guard descriptor >= 0 else { return false }
                reserve.append(descriptor)
            }
            return true
        }
    }

    /// Accepts refused for want of descriptors since start.
    package var failures: Int { state.withLock { $0.failures } }
    /// When the current episode of descriptor exhaustion began; nil while accepting normally.
    package var exhaustedSince: ContinuousClock.Instant? { state.withLock { $0.exhaustedSince } }

    func acceptFailed(_ error: IOError) {
        let started = state.withLock { state -> Bool in
            state.failures += 1
            guard state.exhaustedSince == nil else { return false }
            state.exhaustedSince = .now
            return true
        }
        exhausted.store(true, ordering: .relaxed)
        guard started else { return }
        logger.error("out of file descriptors: not accepting new connections until some close; open connections are still served",
                     metadata: ["error": .string(error.description), "open_file_limit": .stringConvertible(OpenFileLimit.current.soft)])
    }

    func accepted() {
        guard exhausted.load(ordering: .relaxed) else { return }
        exhausted.store(false, ordering: .relaxed)
        let episode = state.withLock { state -> (ContinuousClock.Instant, Int)? in
            guard let since = state.exhaustedSince else { return nil }
            state.exhaustedSince = nil
            return (since, state.failures)
        }
        guard let (since, failures) = episode else { return }
        logger.notice("accepting connections again after running out of file descriptors",
                      metadata: ["paused_for": .string("\(ContinuousClock.now - since)"), "accept_failures_total": .stringConvertible(failures)])
    }
}
