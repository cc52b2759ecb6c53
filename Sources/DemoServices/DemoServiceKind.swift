/// The five RedFire services the demo imitates, with the path prefix each is served under.
public enum DemoServiceKind: String, Sendable, CaseIterable {
    case userTrading = "user_trading"
    case vnpyCore = "vnpy_core"
    case strategyData = "strategy_data"
    case gatewayAdapter = "gateway_adapter"
    case monitor

    /// The gateway route prefix for the service (the instance sees full paths under it).
    public var prefix: String {
        switch self {
        case .userTrading: return "/api/v1/trading"
        case .vnpyCore: return "/api/v1/vnpy"
        case .strategyData: return "/api/v1/strategy"
        case .gatewayAdapter: return "/api/v1/gateway-adapter"
        case .monitor: return "/api/v1/monitor"
        }
    }

    /// Resource paths the service answers (relative to the prefix), used by the traffic generator.
    public var resources: [String] {
        switch self {
        case .userTrading: return ["/orders", "/positions", "/accounts"]
        case .vnpyCore: return ["/ticks", "/contracts"]
        case .strategyData: return ["/strategies", "/strategies/momentum-1/data"]
        case .gatewayAdapter: return ["/adapters", "/adapters/ctp/status"]
        case .monitor: return ["/status", "/alerts"]
        }
    }
}

/// How a demo instance behaves, switchable at runtime to show failover.
public enum DemoBehaviour: Sendable, Equatable {
    /// Answers at once.
    case normal
    /// Waits this long before every answer (health checks included).
    case slow(Duration)
    /// Answers 500 to everything, health checks included.
    case failing
}
