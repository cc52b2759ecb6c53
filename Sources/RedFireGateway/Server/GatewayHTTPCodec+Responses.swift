import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// Refusals with the error envelope, response heads and ends as HTTP/1 framing wants them, and closing.
extension GatewayHTTPCodec {
    /// `head`: the refused request's head when it was parsed (its method and target are logged).
    func refuse(_ error: GatewayError, requestID: String?, head: HTTPRequestHead? = nil, context: ChannelHandlerContext) {
        inboundClosed = true
        let id = requestID ?? GatewayRequestID.generate()
        let refusal: WrittenRefusal = (error, id, ErrorEnvelope.body(error, requestID: id))
        if let accessLog {
            let since = headSince ?? .now()
            accessLog.record(AccessLogEntry(requestID: id, clientIP: context.channel.remoteAddress?.ipAddress,
                                            method: head.map { $0.method.rawValue } ?? "-",
                                            path: head.map { Self.loggedPath($0.uri) } ?? "-"),
                             status: error.status.code, instance: nil, attempts: 0, upstream: .zero,
                             total: .nanoseconds(max(0, (NIODeadline.now() - since).nanoseconds)), bytesIn: 0,
                             bytesOut: refusal.body.readableBytes, errorCode: error.code)
        }
        if pending == 0 { writeRefusal(refusal, context: context) } else { deferredRefusal = refusal }
    }

    /// A refused target as the access log shows it: without the query (which may carry secrets), at
    /// most 256 bytes.
    static func loggedPath(_ uri: String) -> String {
        let utf8 = uri.utf8
        let end = utf8.firstIndex(of: UInt8(ascii: "?")) ?? utf8.endIndex
        return String(Substring(utf8[..<end].prefix(256)))
    }

    func writeRefusal(_ refusal: WrittenRefusal, context: ChannelHandlerContext) {
        guard !outboundClosed else { return }
        let (error, requestID, body) = refusal
        var headers = HTTPHeaders()
        headers.reserveCapacity(5)
        headers.add(name: "Content-Type", value: ErrorEnvelope.contentType)
        headers.add(name: "X-Request-ID", value: requestID)
        headers.add(name: "Cache-Control", value: "no-store")
        headers.add(name: "Connection", value: "close")
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        let status = HTTPResponseStatus(statusCode: error.status.code, reasonPhrase: error.status.reasonPhrase)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        outboundClosed = true
        closeWhenWritten(context: context, promise: nil, last: .end(nil))
    }

    func closeWhenWritten(context: ChannelHandlerContext, promise: EventLoopPromise<Void>?, last: HTTPServerResponsePart) {
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(last), promise: written)
        written.futureResult.assumeIsolated().whenComplete { [self] result in
            promise?.completeWith(result)
            lingerThenClose(context: context)
        }
    }

    /// Lingering close: send FIN after the response, keep reading (and dropping) what the client is still
    /// sending for a moment, then close. Closing at once with unread bytes makes the kernel reset the
    /// connection, and a client still uploading would lose the 413 or 400 it was sent.
    func lingerThenClose(context: ChannelHandlerContext) {
        timer?.cancel()
        context.close(mode: .output, promise: nil)
        timerAt = .now() + Self.linger
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: Self.linger) {
            context.close(promise: nil)
        }
    }

    static let linger: TimeAmount = .seconds(2)

    func close(context: ChannelHandlerContext) {
        inboundClosed = true
        outboundClosed = true
        context.close(promise: nil)
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !outboundClosed else {
            // A response after the connection decided to close (e.g. the server's own answer to a parse
            // error it saw after ours): dropped.
            promise?.succeed(())
            return
        }
        switch unwrapOutboundIn(data) {
        case .head(let response):
            let final = response.status.kind != .informational
            let http10 = http10Pending.first ?? false
            if !final, http10 {
                // An HTTP/1.0 client gets no interim response (`100 Continue` included).
                promise?.succeed(())
                return
            }
            // The client starts sending its body now: its pause so far was the gateway's.
            if response.status == .continue, bodySince != nil { bodySince = .now() }
            var headers = HTTPHeaders()
            headers.reserveCapacity(response.headerFields.count + 1)
            var saysClose = false
            var hasLength = false
            for field in response.headerFields {
                if field.name == .connection, field.value.utf8.count == 5, field.value.lowercased() == "close" { saysClose = true }
                if field.name == .contentLength { hasLength = true }
                headers.add(name: field.name.rawName, value: field.value)
            }
            var version = HTTPVersion.http1_1
            if final {
                if http10, !hasLength, response.status.code != 204, response.status.code != 304 {
                    // HTTP/1.0 knows no chunked coding: a body of unknown length is delimited by closing
                    // the connection, and NIO's encoder frames by the head's version.
                    version = .http1_0
                    closeAfterResponse = true
                }
                if saysClose {
                    closeAfterResponse = true
                } else if closeAfterResponse {
                    headers.add(name: "Connection", value: "close")
                } else if http10 {
                    // The client asked to keep the connection (HTTP/1.0 closes unless told otherwise).
                    headers.add(name: "Connection", value: "keep-alive")
                }
            }
            let status = HTTPResponseStatus(statusCode: response.status.code, reasonPhrase: response.status.reasonPhrase)
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: status, headers: headers))), promise: promise)
        case .body(let body):
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: promise)
        case .end(let trailers):
            pending -= 1
            if !http10Pending.isEmpty { http10Pending.removeFirst() }
            let last = HTTPServerResponsePart.end(trailers.map { HTTPHeaders(fields: $0) })
            if pending == 0, let refusal = deferredRefusal {
                deferredRefusal = nil
                context.write(wrapOutboundOut(last), promise: promise)
                writeRefusal(refusal, context: context)
            } else if pending == 0, closeAfterResponse {
                outboundClosed = true
                inboundClosed = true
                closeWhenWritten(context: context, promise: promise, last: last)
            } else {
                context.write(wrapOutboundOut(last), promise: promise)
                if pending == 0 { becameIdle(context: context) }
            }
        }
    }
}
