#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import Synchronization

/// The process's open-file limit: every client connection takes a descriptor, and a forwarded request
/// another for its upstream connection. Many systems start processes with a soft limit of 1,024.
public enum OpenFileLimit {
    /// The soft and hard `RLIMIT_NOFILE`.
    public static var current: (soft: Int, hard: Int) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return (0, 0) }
        return (clamp(limit.rlim_cur), clamp(limit.rlim_max))
    }

    /// Raises the soft limit to the hard limit (what nginx's `worker_rlimit_nofile` and HAProxy do at
    /// start); returns the soft limit before and after, or nil when it was already there.
    @discardableResult
    public static func raiseToHardLimit() -> (before: Int, after: Int)? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return nil }
        let before = clamp(limit.rlim_cur)
        limit.rlim_cur = limit.rlim_max
        guard setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        return (before, clamp(limit.rlim_cur))
    }

    /// Raises the soft limit and says what the gateway can hold: an info line when raised, a warning
    /// when the limit is low for a gateway.
    static func prepare(logger: Logger) {
        if let raised = raiseToHardLimit() {
            logger.info("raised the open-file limit", metadata: ["from": .stringConvertible(raised.before), "to": .stringConvertible(raised.after)])
        }
        let limit = current.soft
        if limit > 0, limit < 16_384 {
            logger.warning("the open-file limit is low for a gateway: each client connection takes a descriptor, each forwarded request another",
                           metadata: ["limit": .stringConvertible(limit), "advice": "raise LimitNOFILE / ulimit -n (hard limit) to 65536 or more"])
        }
    }

    /// Descriptors the process has open now (Linux: the entries of `/proc/self/fd`); nil where unknown.
    public static func openDescriptors() -> Int? {
        guard let directory = opendir("/proc/self/fd") else { return nil }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            if entry.pointee.d_name.0 != UInt8(ascii: ".") { count += 1 }
        }
        return max(0, count - 1)  // the directory stream's own descriptor
    }

    private static func clamp(_ value: rlim_t) -> Int {
        value >= rlim_t(Int.max) ? Int.max : Int(value)
    }
}

/// What the listener knows about running out of descriptors: accepts refused with `EMFILE` or
/// `ENFILE`, and whether the listener is paused because of them. Reported in the log (once per
/// episode), `/metrics` and the console.
public final class AcceptPressure: Sendable {
    private struct State {
        var failures = 0
        var exhaustedSince: ContinuousClock.Instant?
    }
    private let state = Mutex(State())
    /// Read on every accept: true only during an episode.
    private let exhausted = Atomic<Bool>(false)
    let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    /// Accepts refused for want of descriptors since start.
    public var failures: Int { state.withLock { $0.failures } }
    /// When the current episode of descriptor exhaustion began; nil while accepting normally.
    public var exhaustedSince: ContinuousClock.Instant? { state.withLock { $0.exhaustedSince } }

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

/// First in the listening channel's pipeline: when `accept` fails for want of descriptors, stops
/// accepting for `retryInterval` and then tries again, while the connections already open go on being
/// served; the first accept that succeeds ends the episode.
///
/// NIO's own `AcceptBackoffHandler` does not help here: when the very first `accept` of a readable
/// event fails, the channel still counts a read as pending and keeps the listening socket in the
/// poller, so a level-triggered epoll reports it readable again at once — the event loop spins on
/// failing accepts at 100 % CPU (measured: ~4,000 failed `accept4` calls per second). Turning `autoRead`
/// off removes the socket from the poller; turning it on again re-registers it.
final class AcceptFailureObserver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = any Channel
    let pressure: AcceptPressure
    private var paused = false

    /// How long accepting pauses after a failure: each retry costs one failed `accept`.
    static let retryInterval: TimeAmount = .milliseconds(100)

    init(pressure: AcceptPressure) {
        self.pressure = pressure
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        pressure.accepted()
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let error = error as? IOError, error.errnoCode == EMFILE || error.errnoCode == ENFILE else {
            context.fireErrorCaught(error)
            return
        }
        pressure.acceptFailed(error)
        guard !paused, let options = context.channel.syncOptions else { return }
        paused = true
        try? options.setOption(ChannelOptions.autoRead, value: false)
        context.eventLoop.assumeIsolated().scheduleTask(in: Self.retryInterval) { [self] in
            paused = false
            try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
        }
    }
}

/// The listener's side of telemetry: open client connections and accepts refused for want of descriptors.
struct ListenerTelemetry: Sendable {
    let connections: ConnectionCount
    let acceptPressure: AcceptPressure
}
