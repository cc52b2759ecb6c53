import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

extension Forwarder {
    /// Relays a WebSocket upgrade that passed every policy to an instance of the route's service, over a
    /// new connection of the gateway's own transport. On the instance's 101 (with the right
    /// `Sec-WebSocket-Accept`) the client gets it and both connections become a `WebSocketTunnel`; any
    /// other answer (403, 404, …) reaches the client as it is. Connection failures are retried on another
    /// instance like any idempotent request; draining instances take no new stream.
    func forwardUpgrade(_ request: GatewayRequest, route: RouteEntry, target requestTarget: RequestTarget, requestID: String, clientIP: String?,
                        clientAddress: String?, identity: UpstreamIdentity, tokenExpiresAt: Date?, revoked: (@Sendable () -> Bool)?,
                        extraHeaders: HTTPFields,
                        bufferLimit: Int, headerFilter: ClientHeaderFilter, peerTrusted: Bool, clientTLS: Bool,
                        upgrade: ConnectionUpgrade, websocket: WebSocketRouteConfig, streams: OpenStreams, abandonment: ExchangeAbandonment? = nil,
                        recorder: RequestRecorder) async -> GatewayResponse {
        let pool = route.pool
        guard !pool.eligible.isEmpty else {
            recorder.finish(status: 503, errorCode: .upstreamUnavailable)
            var headers = extraHeaders
            headers[.retryAfter] = retryAfter(pool)
            return GatewayResponse.error(.upstreamUnavailable, requestID: requestID, headers: headers)
        }
        let service = pool.service
        let head = request.head
        // Traced: the instance continues the upgrade request's trace (its server span covers the handshake);
        // the client's trace fields give way to it.
        let trace = tracing.flatMap { _ in RequestTracing.current }
        var headers = HeaderPolicy.upstreamFields(head.headerFields, clientIP: clientIP, clientHost: head.authority, requestID: requestID,
                                                  identity: identity, filter: headerFilter, peerTrusted: peerTrusted,
                                                  clientAddress: clientAddress, clientTLS: clientTLS,
                                                  traceFields: trace.map { .replace(keepState: $0.continued) } ?? .pass)
        // Hop-by-hop, so removed above; an upgrade names them for the next hop itself (RFC 9110 §7.8).
        headers.extra[.upgradeField] = "websocket"
        headers.extra[.connection] = "Upgrade"
        if let tracing, let trace { tracing.propagate(trace, into: &headers.extra) }
        let target = upstreamTarget(requestTarget, route: route)
        let hashKey = Self.hashKey(pool, fields: head.headerFields, clientAddress: clientAddress ?? clientIP)
        var attempts = ForwardAttempts(limit: service.retries.attempts, repeatable: true)
        while let member = Self.nextInstance(pool, hashKey: hashKey, attempts: &attempts) {
            let runtime = member.runtime
            let lease = runtime.dispatch()
            var upstreamRequest = UpstreamRequest(method: .get, upstream: member.url, authority: member.authority, target: target, headers: headers,
                                                  body: nil, bufferLimit: bufferLimit,
                                                  tls: member.url.scheme == "https" ? service.tls ?? UpstreamTLSConfig() : nil)
            upstreamRequest.upgrade = true
            upstreamRequest.abandonment = abandonment
            let dispatched = TelemetryClock.now
            let response: UpstreamResponse
            do {
                response = try await transport.upgrade(upstreamRequest, timeouts: service.timeouts)
            } catch {
                let failedAt = TelemetryClock.now
                lease.release()
                if Task.isCancelled || abandonment?.isAbandoned == true {
                    recorder.finish(status: GatewayError.clientClosedRequest.status.code, instanceID: runtime.id, attempts: attempts.started,
                                    errorCode: .clientClosedRequest)
                    return GatewayResponse.error(.clientClosedRequest, requestID: requestID, headers: [.connection: "close"])
                }
                logger.warning("websocket upgrade failed", metadata: [
                    "request_id": .string(requestID), "service": .string(service.name), "instance": .string(runtime.id),
                    "failure": .string("\(error)"), "attempt": .stringConvertible(attempts.started),
                ])
                if attempts.failed(error, on: runtime, after: failedAt - dispatched, bodyUntouched: true,
                                   withdrawBudget: pool.shared.retryBudget.tryWithdraw) == .retry { continue }
                break
            }
            guard case .switched(let switched) = response.body else {
                // The instance answered the upgrade with a response of its own (refused it): passed on.
                return streamedResponse(response, runtime: runtime, lease: lease, pool: pool, corsByService: route.config.corsByService,
                                        admission: nil, requestID: requestID, extraHeaders: extraHeaders, recorder: recorder,
                                        dispatched: dispatched, attempts: attempts, body: nil)
            }
            let key = head.headerFields[WebSocketUpgrade.key] ?? ""
            let accepts = response.headers[values: WebSocketUpgrade.accept]
            guard accepts.count == 1, accepts[0] == WebSocketUpgrade.expectedAccept(for: key) else {
                lease.release()
                logger.warning("instance answered a websocket upgrade without the right Sec-WebSocket-Accept", metadata: [
                    "request_id": .string(requestID), "service": .string(service.name), "instance": .string(runtime.id),
                ])
                recorder.finish(status: 502, instance: runtime.metrics, upstream: TelemetryClock.now - dispatched, upstreamErrors: 1,
                                instanceID: runtime.id, attempts: attempts.started, errorCode: .badGateway)
                return GatewayResponse.error(.badGateway, requestID: requestID)
            }
            var responseHeaders = HeaderPolicy.downstreamHeaders(response.headers, requestID: requestID, extra: extraHeaders,
                                                                 keepCORS: route.config.corsByService)
            responseHeaders[.upgradeField] = "websocket"
            responseHeaders[.connection] = "Upgrade"
            recorder.finish(status: 101, instance: runtime.metrics, upstream: TelemetryClock.now - dispatched, instanceID: runtime.id,
                            attempts: attempts.started)
            let loop = switched.channel.eventLoop
            let now = loop.now
            let limits = WebSocketStreamState.Limits(
                clientMessage: websocket.maxClientMessage, upstreamMessage: websocket.maxUpstreamMessage,
                idle: .nanoseconds(websocket.idleTimeout.nanosecondsClamped),
                endAt: websocket.maxDuration.map { now + .nanoseconds($0.nanosecondsClamped) },
                tokenExpiresAt: tokenExpiresAt.flatMap { expiry in
                    let left = expiry.timeIntervalSinceNow + websocket.tokenGrace.secondsDouble
                    return left < 10 * 365 * 86400 ? now + .nanoseconds(Int64(max(0, left) * 1e9)) : nil
                },
                closeTimeout: .nanoseconds(WebSocketRouteConfig.closeTimeout.nanosecondsClamped))
            let serviceName = service.name, instanceID = runtime.id, routeName = route.name
            // A sampled upgrade's span lasts as long as the stream and ends with its close.
            let streamSpan = trace?.handOff()
            let tunnel = WebSocketTunnel(eventLoop: loop, limits: limits,
                                         telemetry: [route.metrics.streams, pool.metrics.streams, runtime.metrics.streams],
                                         registries: [runtime.streams, streams], hold: lease.held(), revoked: revoked,
                                         logger: logger) { [logger] outcome in
                streamSpan?.closed("websocket.close", attributes: [
                    "websocket.close_code": .int(Int64(outcome.closeCode)), "gateway.ended_by": .string(outcome.endedBy),
                    "gateway.messages_in": .int(Int64(outcome.messagesIn)), "gateway.messages_out": .int(Int64(outcome.messagesOut)),
                    "gateway.bytes_in": .int(Int64(outcome.bytesIn)), "gateway.bytes_out": .int(Int64(outcome.bytesOut)),
                    "gateway.duration_ms": .int(Int64(outcome.duration.milliseconds)),
                ])
                logger.info("websocket closed", metadata: [
                    "request_id": .string(requestID), "route": .string(routeName), "service": .string(serviceName), "instance": .string(instanceID),
                    "close_code": .stringConvertible(outcome.closeCode), "ended_by": .string(outcome.endedBy),
                    "duration_ms": .stringConvertible(outcome.duration.milliseconds),
                    "messages_in": .stringConvertible(outcome.messagesIn), "messages_out": .stringConvertible(outcome.messagesOut),
                    "bytes_in": .stringConvertible(outcome.bytesIn), "bytes_out": .stringConvertible(outcome.bytesOut),
                ])
            }
            upgrade.accept { client in try tunnel.start(client: client, upstream: switched) }
            return GatewayResponse(status: .switchingProtocols, headers: responseHeaders, stream: ResponseBody())
        }
        let (error, noInstance) = attempts.answer
        var errorHeaders = extraHeaders
        if noInstance { errorHeaders[.retryAfter] = retryAfter(pool) }
        recorder.finish(status: error.status.code, upstream: attempts.failedTime, upstreamErrors: attempts.errors, upstreamTimeouts: attempts.timeouts,
                        instanceID: attempts.tried.last?.id, errorCode: error)
        return GatewayResponse.error(error, requestID: requestID, headers: errorHeaders)
    }
}
