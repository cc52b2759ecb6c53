/// The attempts of one forwarded request, apart from the I/O (AsyncHTTPClient's `RedirectState` is the
/// model): which instances were tried, what the failures cost, and whether another attempt may follow.
///
/// A failed attempt is retried on another instance only when all hold: the request may be repeated
/// (an idempotent method, or `Idempotency-Key`), its body was not read yet, the failure is not a
/// response timeout (the instance may still be working on it), attempts remain, and either nothing was
/// sent (a connect failure adds no load elsewhere) or the service's retry budget allows one more.
struct ForwardAttempts {
    /// `retries.attempts`: attempts in all, the first included.
    let limit: Int
    /// Whether the request may be sent twice.
    let repeatable: Bool
    private(set) var started = 0
    private(set) var tried: [InstanceRuntime] = []
    private(set) var lastFailure: UpstreamFailure?
    /// Time spent on failed attempts.
    private(set) var failedTime: Duration = .zero
    private(set) var errors = 0
    private(set) var timeouts = 0

    init(limit: Int, repeatable: Bool) {
        self.limit = limit
        self.repeatable = repeatable
    }

    var mayStart: Bool { started < limit }

    /// Attempts the access log and metrics report for a request that got an answer after these.
    var failed: Int { errors + timeouts }

    /// The balancer chose an instance that turned out to be draining: not an attempt, but not again.
    mutating func skip(_ runtime: InstanceRuntime) {
        tried.append(runtime)
    }

    mutating func start() {
        started += 1
    }

    enum Next: Equatable {
        case retry
        case answer
    }

    /// Records a failed attempt and decides what follows. `withdrawBudget` is asked only when a retry
    /// would send the request again to a service that may have received it.
    mutating func failed(_ failure: UpstreamFailure, on runtime: InstanceRuntime, after elapsed: Duration, bodyUntouched: Bool,
                         withdrawBudget: () -> Bool) -> Next {
        failedTime += elapsed
        if failure == .responseTimeout || failure == .connectTimeout { timeouts += 1 } else { errors += 1 }
        lastFailure = failure
        tried.append(runtime)
        guard repeatable, bodyUntouched, failure != .responseTimeout, mayStart, failure.nothingSent || withdrawBudget() else { return .answer }
        return .retry
    }

    /// The gateway's answer once no attempt succeeded; `noInstance` when none could be tried at all.
    var answer: (error: GatewayError, noInstance: Bool) {
        switch lastFailure {
        case .none: return (.upstreamUnavailable, true)
        case .connectTimeout, .responseTimeout: return (.upstreamTimeout, false)
        case .connectFailed, .connectionFailed, .tlsFailed: return (.badGateway, false)
        }
    }
}
