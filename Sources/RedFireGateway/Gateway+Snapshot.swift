import Foundation

extension Gateway {
    /// The console's view of the gateway over the last `windowSeconds`.
    public func snapshot(windowSeconds: Int, eventLimit: Int = 200) -> GatewaySnapshot {
        let state = registry.state
        let now = ContinuousClock.now
        let second = TelemetryClock.second()
        let elapsed = Int((now - startedAt).components.seconds) + 1
        func figures(_ window: MetricWindow) -> GatewaySnapshot.Figures { GatewaySnapshot.Figures(window, elapsed: elapsed) }
        let routeOrder = Dictionary(uniqueKeysWithValues: state.config.routes.enumerated().map { ($1.name, $0) })
        var rateLimited = Array(repeating: 0, count: 60)
        var routes: [GatewaySnapshot.Route] = []
        for entry in state.routes.sorted(by: { (routeOrder[$0.name] ?? 0) < (routeOrder[$1.name] ?? 0) }) {
            let window = entry.metrics.window(seconds: windowSeconds, now: second)
            let limited = entry.metrics.perSecond(60, now: second) { $0.rateLimited }
            for index in limited.indices { rateLimited[index] += limited[index] }
            var route = GatewaySnapshot.Route(name: entry.name, prefix: entry.config.prefix, service: entry.pool.name,
                                              figures: figures(window), latency: window.latency,
                                              requestsSeries: entry.metrics.perSecond(60, now: second), rateLimitedSeries: limited)
            route.streams = GatewaySnapshot.Streams(entry.metrics.streams, now: second)
            route.slowest = entry.metrics.slowest.recent(now: second)
            routes.append(route)
        }
        let services = state.services.map { pool in
            let window = pool.metrics.window(seconds: windowSeconds, now: second)
            let eligible = Set(pool.eligible.map { ObjectIdentifier($0.runtime) })
            let instances = pool.members.map { member in
                let runtime = member.runtime
                let minute = windowSeconds == 60 ? nil : runtime.metrics.window(seconds: 60, now: second)
                let current = figures(runtime.metrics.window(seconds: windowSeconds, now: second))
                let lastMinute = minute.map { figures($0) } ?? current
                var instance = GatewaySnapshot.Instance(
                    id: runtime.id, service: pool.name, address: member.url.description, state: runtime.state, health: runtime.health,
                    weight: member.weight, inFlight: runtime.inFlight, figures: current,
                    recentChecks: runtime.recentChecks.reversed().map { .init(passed: $0.passed, reason: $0.reason, age: now - $0.at) },
                    ejectedFor: runtime.ejectedUntil.map { max(.zero, $0 - now) },
                    leaseExpiresIn: runtime.leaseExpiresAt.map { max(.zero, $0 - now) },
                    requestsLastMinute: lastMinute.requests, meanMicrosLastMinute: lastMinute.meanMicros,
                    eligible: eligible.contains(ObjectIdentifier(runtime)),
                    healthByNode: control.membership?.healthByNode(instance: runtime.id) ?? [:])
                instance.streams = GatewaySnapshot.Streams(runtime.metrics.streams, now: second)
                return instance
            }
            return GatewaySnapshot.Service(name: pool.name, strategy: pool.strategy, panic: pool.panic, figures: figures(window),
                                           latency: window.latency, instances: instances)
        }
        let outcomes = control.reloadOutcomes.withLock { $0 }
        var snapshot = GatewaySnapshot(
            takenAt: Date(), uptime: now - startedAt, generation: state.generation, configVersion: 1 + outcomes.succeeded,
            listen: "\(state.config.listen.host):\(boundPort ?? state.config.listen.port)", windowSeconds: windowSeconds,
            gateway: figures(registry.telemetry.gatewayWindow(seconds: windowSeconds, state: state, now: second)),
            openConnections: connections.open, acceptPausedFor: acceptPressure.exhaustedSince.map { now - $0 }, openFileLimit: OpenFileLimit.current.soft,
            lastReloadFailed: outcomes.lastFailed, services: services, routes: routes,
            rateLimitedSeries: rateLimited,
            topLimitedKeys: rateLimiter.topLimitedKeys(10).map { GatewaySnapshot.LimitedKey(key: $0.key, rejections: $0.rejections) }, events: registry.events.recent(eventLimit),
            cluster: control.cluster.map { store in
                GatewaySnapshot.Cluster(node: store.nodeName, nodesAlive: (control.membership?.nodes ?? []).filter(\.alive).map(\.name),
                                        storeUnreachableSince: store.isKnownUnreachable ? store.unreachableSince : nil)
            })
        snapshot.listeners = listeners.map { listener in
            let soonest = listener.tls?.current.certificates.min { $0.notValidAfter < $1.notValidAfter }
            return GatewaySnapshot.Listener(
                url: listener.url, open: listener.open.open, tls13: listener.openTLS13.open, tls12: listener.openTLS12.open,
                http2: listener.openHTTP2TLS13.open + listener.openHTTP2TLS12.open,
                tls: listener.tls != nil, redirectsToHTTPS: listener.config.redirectHTTPSPort != nil,
                soonestCertificate: soonest.map { $0.names.first ?? $0.path },
                certificateDaysLeft: soonest.map { Int(($0.notValidAfter.timeIntervalSinceNow / 86_400).rounded(.down)) })
        }
        return snapshot
    }
}
