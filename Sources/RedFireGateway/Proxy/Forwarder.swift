import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// Forwards one request to one instance of a route's service: picks an instance, streams the request
/// and the response through, retries where that is safe, and accounts in-flight requests exactly.
struct Forwarder: Sendable {
    let transport: any UpstreamTransport
    let registry: ServiceRegistry
    let logger: Logger
    /// Client spans per attempt and `traceparent` to instances, when tracing is on.
    var tracing: RequestTracing?


    /// - Parameters:
    ///   - target: the normalized request target; the instance receives exactly this path.
    ///   - clientIP: the TCP peer, appended to `X-Forwarded-For`.
    ///   - clientAddress: the resolved client (`ClientAddress`), the key of `hash_key: client_ip`.
    ///   - identity: the verified caller and `X-Gateway-Token` to pass on.
    ///   - maxBodySize: the route's limit, enforced while streaming a body of unknown length.
    ///   - bufferLimit: response bytes held for a slow client (`limits.connection_buffer`).
    ///   - headerFilter, peerTrusted: which client fields are removed; whether the client's
    ///     `X-Forwarded-For` is kept (the peer is a trusted proxy).
    ///   - abandonment: how the client gives the request up when it hangs up (idempotent requests).
    nonisolated(nonsending) func forward(_ request: GatewayRequest, route: RouteEntry, target requestTarget: RequestTarget, requestID: String, clientIP: String?, clientAddress: String? = nil,
                 identity: consuming UpstreamIdentity = .transparent, extraHeaders: HTTPFields = [:], maxBodySize: Int = .max,
                 bufferLimit: Int = 64 * 1024, headerFilter: ClientHeaderFilter = .standard, peerTrusted: Bool = false,
                 clientTLS: Bool = false, abandonment: ExchangeAbandonment? = nil, recorder: RequestRecorder) async -> GatewayResponse {
        let pool = route.pool
        guard !pool.eligible.isEmpty else {
            recorder.finish(status: 503, errorCode: .upstreamUnavailable)
            var headers = extraHeaders
            headers[.retryAfter] = retryAfter(pool)
            return GatewayResponse.error(.upstreamUnavailable, requestID: requestID, headers: headers)
        }
        // Read field by field where needed: a copy of the service's configuration retains each of its
        // strings and lists.
        var admission: ServiceAdmission?
        if let limit = pool.service.maxInFlight {
            admission = ServiceAdmission(pool.shared, limit: limit)
            if tracing != nil, let trace = RequestTracing.current, trace.isRecording {
                trace.set("gateway.admission", admission == nil ? "refused" : "admitted")
            }
            if admission == nil {
                recorder.finish(status: 503, errorCode: .serviceBusy)
                var headers = extraHeaders
                headers[.retryAfter] = "1"
                return GatewayResponse.error(.serviceBusy, requestID: requestID, headers: headers)
            }
        }
        pool.shared.retryBudget.recordRequest()

        let head = request.head
        let target = upstreamTarget(requestTarget, route: route)
        // Traced: the client's trace fields give way to the gateway's (each attempt's `traceparent`).
        let trace = tracing != nil ? RequestTracing.current : nil
        // Moved into each attempt's request, not copied (a copy retains every field and value); a retry
        // takes them back.
        var fields = Optional(HeaderPolicy.upstreamFields(head.headerFields, clientIP: clientIP, clientHost: head.authority, requestID: requestID,
                                                          identity: consume identity,
                                                          filter: headerFilter, peerTrusted: peerTrusted, clientAddress: clientAddress, clientTLS: clientTLS,
                                                          traceFields: trace.map { .replace(keepState: $0.continued) } ?? .pass))
        let body = Self.declaredBody(request, limit: maxBodySize)
        let retriable = head.method.isIdempotent || head.headerFields.contains(.idempotencyKey)
        let hashKey = Self.hashKey(pool, fields: head.headerFields, clientAddress: clientAddress ?? clientIP)

        // A route of long responses (event streams) may allow its instances longer silences.
        var timeouts = pool.service.timeouts
        if let idle = route.config.streamIdleTimeout { timeouts.idle = idle }
        var attempts = ForwardAttempts(limit: pool.service.retries.attempts, repeatable: retriable)
        while let headers = fields.take(), let member = Self.nextInstance(pool, hashKey: hashKey, attempts: &attempts) {
            let runtime = member.runtime
            let lease = runtime.dispatch()
            // Traced: a client span per attempt (a retry is visible), its traceparent to the instance.
            let traced = tracing.flatMap { tracing in trace.map { trace in
                tracing.attempt(trace, service: pool.service.name, instance: runtime.id, authority: member.authority, number: attempts.started)
            } }
            var upstreamRequest = UpstreamRequest(method: head.method, upstream: member.url, authority: member.authority, target: target, headers: headers,
                                                  body: body, bufferLimit: bufferLimit,
                                                  tls: member.url.scheme == "https" ? pool.service.tls ?? UpstreamTLSConfig() : nil)
            upstreamRequest.traceparent = traced?.traceparent
            upstreamRequest.abandonment = abandonment
            let response: UpstreamResponse
            let dispatched = TelemetryClock.now
            do {
                response = try await transport.execute(upstreamRequest, timeouts: timeouts)
            } catch {
                let failedAt = TelemetryClock.now
                traced?.failed(error)
                if Task.isCancelled || abandonment?.isAbandoned == true {
                    // The client went away and its request was abandoned (`GatewayRequestHandler`): the
                    // exchange was closed on purpose, so the instance is not to blame and nothing is retried.
                    lease.release()
                    recorder.finish(status: GatewayError.clientClosedRequest.status.code, upstream: attempts.failedTime + (failedAt - dispatched),
                                    bytesIn: body?.stream.bytesRead ?? 0, instanceID: runtime.id, attempts: attempts.started, errorCode: .clientClosedRequest)
                    return GatewayResponse.error(.clientClosedRequest, requestID: requestID, headers: [.connection: "close"])
                }
                if let failure = body?.stream.clientFailure {
                    // The client broke its own body (over the limit while streaming, bad chunk framing):
                    // the instance saw an aborted request and is not to blame. The connection closes —
                    // the rest of the body cannot be read reliably.
                    lease.release()
                    recorder.finish(status: failure.error.status.code, upstream: attempts.failedTime + (failedAt - dispatched),
                                    bytesIn: body?.stream.bytesRead ?? 0, instanceID: runtime.id, attempts: attempts.started, errorCode: failure.error)
                    var headers = extraHeaders
                    headers[.connection] = "close"
                    return GatewayResponse.error(failure.error, requestID: requestID, headers: headers)
                }
                let timedOut = error == .responseTimeout || error == .connectTimeout
                runtime.metrics.record(RequestSample(status: timedOut ? 504 : 502, method: recorder.method, totalMicros: TelemetryClock.micros(failedAt - dispatched),
                                                     upstreamMicros: TelemetryClock.micros(failedAt - dispatched), bytesIn: 0, bytesOut: 0,
                                                     upstreamErrors: timedOut ? 0 : 1, upstreamTimeouts: timedOut ? 1 : 0),
                                       second: TelemetryClock.second(failedAt))
                lease.release()
                recordOutcome(runtime, failed: true, pool: pool)
                logger.warning("upstream request failed", metadata: [
                    "request_id": .string(requestID), "service": .string(pool.service.name), "instance": .string(runtime.id),
                    "upstream": .string(member.baseURL), "failure": .string("\(error)"), "attempt": .stringConvertible(attempts.started),
                ])
                let next = attempts.failed(error, on: runtime, after: failedAt - dispatched, bodyUntouched: body.map { !$0.stream.wasRead } ?? true,
                                           withdrawBudget: pool.shared.retryBudget.tryWithdraw)
                if next == .retry {
                    fields = upstreamRequest.headers
                    continue
                }
                break
            }
            traced?.answered(status: response.status.code, connection: response.connection == .unknown ? nil : response.connection.rawValue)
            return streamedResponse(consume response, runtime: runtime, lease: lease, pool: pool, corsByService: route.config.corsByService, admission: admission,
                                    requestID: requestID, extraHeaders: extraHeaders, recorder: recorder, dispatched: dispatched, attempts: attempts, body: body)
        }
        let (error, noInstance) = attempts.answer
        var errorHeaders: HTTPFields = [:]
        if noInstance { errorHeaders[.retryAfter] = retryAfter(pool) }
        recorder.finish(status: error.status.code, upstream: attempts.failedTime, bytesIn: body?.stream.bytesRead ?? 0,
                        upstreamErrors: attempts.errors, upstreamTimeouts: attempts.timeouts, instanceID: attempts.tried.last?.id, errorCode: error)
        for field in extraHeaders { errorHeaders[field.name] = field.value }
        return GatewayResponse.error(error, requestID: requestID, headers: errorHeaders)
    }

    /// The key `consistent_hash` places a request by: the resolved client address or a header's value.
    static func hashKey(_ pool: ServicePool, fields: HTTPFields, clientAddress: String?) -> String? {
        guard pool.strategy == .consistentHash else { return nil }
        switch pool.service.hashKey {
        case .clientIP: return clientAddress
        case .header(let name): return HTTPField.Name(name).flatMap { fields[$0] }
        }
    }

    /// The next instance to try, the attempt started: the balancer's pick among those not tried yet,
    /// passing over one that started draining since the snapshot was taken (it takes no new request);
    /// nil when the attempts or the instances are used up.
    static func nextInstance(_ pool: ServicePool, hashKey: String?, attempts: inout ForwardAttempts) -> PoolMember? {
        while attempts.mayStart {
            guard let member = pool.balancer.pick(hashKey: hashKey, excluding: attempts.tried) else { return nil }
            if member.runtime.isDraining {
                attempts.skip(member.runtime)
                continue
            }
            attempts.start()
            return member
        }
        return nil
    }

    /// The request target the instance sees: the normalized path and the query, minus the route prefix
    /// when the route strips it.
    func upstreamTarget(_ target: RequestTarget, route: RouteEntry) -> String {
        guard route.config.stripPrefix, route.prefixUTF8.count > 1 else { return target.upstreamTarget }
        var rest = String(Substring(target.path.utf8.dropFirst(route.prefixUTF8.count)))
        if !rest.hasPrefix("/") { rest = "/" + rest }
        guard let query = target.query else { return rest }
        return rest + "?" + query
    }

    /// A body is sent upstream only when the client declared one (RFC 9112 §6.1): `Content-Length`
    /// or `Transfer-Encoding`. A GET without either reaches the instance without a body.
    /// The declared length was already checked against `limit`; a chunked body is checked while it streams.
    static func declaredBody(_ request: GatewayRequest, limit: Int) -> UpstreamRequestBody? {
        let fields = request.head.headerFields
        if let text = fields[.contentLength], let length = Int(text) {
            return UpstreamRequestBody(stream: TrackedRequestBody(body: request.body), length: length)
        }
        if fields.contains(.transferEncoding) {
            return UpstreamRequestBody(stream: TrackedRequestBody(body: request.body, limit: limit), length: nil)
        }
        return nil
    }

    /// The instance's response on its way to the client. Its outcome for passive ejection is known once
    /// the body has ended: a response that breaks off midway — fewer bytes than its `Content-Length`, a
    /// chunked body without its last chunk — is an upstream failure although its head said 2xx. It is
    /// counted as an upstream error (telemetry, `/metrics`, the console), logged, and recorded in the
    /// access log as `upstream_truncated`; the client's connection is closed, since the response cannot
    /// be completed.
    func streamedResponse(_ upstream: consuming UpstreamResponse, runtime: InstanceRuntime, lease: consuming InFlightLease, pool: ServicePool, corsByService: Bool,
                                  admission: ServiceAdmission?, requestID: String,
                                  extraHeaders: HTTPFields, recorder: RequestRecorder, dispatched: TelemetryClock.Instant, attempts: ForwardAttempts,
                                  body: UpstreamRequestBody?) -> GatewayResponse {
        let earlierUpstreamTime = attempts.failedTime, upstreamErrors = attempts.errors, upstreamTimeouts = attempts.timeouts
        // The instance's fields leave the response (not copied): when nothing of them is to go, the
        // client's response is that list, added to in place.
        var upstreamFields = HTTPFields()
        swap(&upstreamFields, &upstream.headers)
        let headers = HeaderPolicy.downstreamHeaders(consume upstreamFields, sifted: upstream.sifted, requestID: requestID, extra: extraHeaders,
                                                     keepCORS: corsByService)
        let status = upstream.status
        let failedStatus = status.code >= 500
        /// Records the request once the instance's response is done (whole, or ended early).
        @Sendable func record(bytesOut: Int, truncated: Bool = false, errorCode: GatewayError? = nil) {
            let now = TelemetryClock.now
            recorder.finish(status: status.code, instance: runtime.metrics, upstream: earlierUpstreamTime + (now - dispatched),
                            bytesIn: body?.stream.bytesRead ?? 0, bytesOut: bytesOut,
                            upstreamErrors: upstreamErrors + (truncated ? 1 : 0), upstreamTimeouts: upstreamTimeouts, truncated: truncated, now: now,
                            instanceID: runtime.id,
                            attempts: upstreamErrors + upstreamTimeouts + 1, errorCode: errorCode)
        }
        let upstreamBody: any AsyncSequence<ByteBuffer, any Error> & Sendable
        switch upstream.body {
        case .complete(let buffer):
            // Everything arrived with the head: the exchange with the instance is over, and the client
            // gets head and body in one write.
            lease.release()
            recordOutcome(runtime, failed: failedStatus, pool: pool)
            record(bytesOut: buffer.readableBytes)
            withExtendedLifetime(admission) {}
            return GatewayResponse(status: status, headers: headers, buffer: buffer)
        case .stream(let stream):
            upstreamBody = stream
        case .switched:
            // Only an upgrade request can get a connection handed over (`forwardUpgrade` takes it); the
            // transport refuses a 101 to anything else, so this is an instance the gateway cannot use.
            lease.release()
            recordOutcome(runtime, failed: true, pool: pool)
            record(bytesOut: 0, errorCode: .badGateway)
            return GatewayResponse.error(.badGateway, requestID: requestID, headers: extraHeaders)
        }
        let hold = lease.held()
        // An event stream (`text/event-stream`) runs until someone ends it: it is counted as a stream and
        // a drain deadline or a shutdown ends it cleanly (`EventStreamRelay`).
        let eventStream = EventStreamRelay.isEventStream(headers)
            ? EventStreamRelay(telemetry: [recorder.route.streams, recorder.service?.streams, runtime.metrics.streams].compactMap { $0 },
                               registries: [runtime.streams, registry.streams], stop: (upstreamBody as? UpstreamResponseStream)?.stop,
                               span: tracing != nil ? RequestTracing.current?.handOff() : nil)
            : nil
        return GatewayResponse(status: status, headers: headers, stream: ResponseBody { writer in
            // The hold lives as long as this closure: the in-flight count drops when the body is done,
            // fails, or is abandoned because the client went away.
            defer { withExtendedLifetime((hold, admission)) {} }
            var bytesOut = 0
            var clientFailed = false
            eventStream?.opened()
            do {
                for try await chunk in upstreamBody {
                    bytesOut += chunk.readableBytes
                    eventStream?.relayed(chunk)
                    do { try await writer.write(chunk) } catch { clientFailed = true; throw error }
                    if eventStream?.hasEnded == true { break }
                }
                do { try await writer.finish(nil) } catch { clientFailed = true; throw error }
                eventStream?.closed(code: eventStream?.hasEnded == true ? 1001 : 1000)
            } catch {
                if let eventStream, eventStream.hasEnded, !clientFailed {
                    // The gateway ended the stream (its instance drained, the gateway stops): the response
                    // ends as a complete one, and the client reconnects elsewhere.
                    eventStream.closed(code: 1001)
                    do { try await writer.finish(nil) } catch { clientFailed = true }
                    recordOutcome(runtime, failed: failedStatus, pool: pool)
                    record(bytesOut: bytesOut)
                    if clientFailed { throw error }
                    return
                }
                eventStream?.closed(code: clientFailed || Task.isCancelled ? 1001 : 1014)
                if clientFailed || Task.isCancelled {
                    // The client went away (or its request was abandoned): not the instance's failure.
                    recordOutcome(runtime, failed: failedStatus, pool: pool)
                    record(bytesOut: bytesOut, errorCode: Task.isCancelled ? .clientClosedRequest : nil)
                } else {
                    recordOutcome(runtime, failed: true, pool: pool)
                    record(bytesOut: bytesOut, truncated: true, errorCode: .upstreamTruncated)
                    logger.warning("upstream response truncated", metadata: [
                        "request_id": .string(requestID), "service": .string(pool.service.name), "instance": .string(runtime.id),
                        "status": .stringConvertible(status.code), "bytes_out": .stringConvertible(bytesOut), "failure": .string("\(error)"),
                    ])
                }
                throw error
            }
            recordOutcome(runtime, failed: failedStatus, pool: pool)
            record(bytesOut: bytesOut)
        })
    }

    private func recordOutcome(_ runtime: InstanceRuntime, failed: Bool, pool: ServicePool) {
        guard let ejection = runtime.recordOutcome(failed: failed, config: pool.service.passiveEjection, now: .now) else { return }
        registry.rebuild()
        registry.record(.ejection, service: pool.service.name, instance: runtime.id,
                        "\(runtime.id) ejected for \(ConfigDuration.format(ejection)) after \(pool.service.passiveEjection.consecutiveFailures) consecutive failures")
    }

    func retryAfter(_ pool: ServicePool) -> String {
        let seconds = pool.service.healthCheck.enabled ? max(1, Int(pool.service.healthCheck.interval.secondsDouble.rounded(.up))) : 1
        return String(seconds)
    }
}
