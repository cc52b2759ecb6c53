extension Telemetry {
    /// Gateway-wide figures over a window: the routes of `state` plus unrouted requests.
    public func gatewayWindow(seconds: Int, state: GatewayState, now: Int64 = TelemetryClock.second()) -> MetricWindow {
        var window = unrouted.window(seconds: seconds, now: now)
        for route in state.routes { window.merge(route.metrics.window(seconds: seconds, now: now)) }
        return window
    }
}
