import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// One keep-alive connection to an instance; confined to its channel's event loop.
final class UpstreamConnection: @unchecked Sendable {
    let channel: any Channel
    let handler: UpstreamConnectionHandler

    init(channel: any Channel, handler: UpstreamConnectionHandler) {
        self.channel = channel
        self.handler = handler
    }

    struct ExchangeFailure: Error {
        var failure: UpstreamFailure
        /// Part of the response had arrived (then the request is never repeated on another connection).
        var responseStarted: Bool
    }

    /// `exchange`, given up when its request is abandoned (`UpstreamRequest.abandonment`: the client went
    /// away): the connection is closed, so the instance sees the request aborted and the wait ends at once.
    nonisolated(nonsending) func abandonableExchange(_ request: UpstreamRequest, timeouts: TimeoutConfig, pool: LoopConnectionPool,
                                                     key: LoopConnectionPool.Key) async throws(ExchangeFailure) -> UpstreamResponse {
        guard let abandonment = request.abandonment else { return try await exchange(request, timeouts: timeouts, pool: pool, key: key) }
        guard abandonment.attach(channel) else {
            channel.close(promise: nil)
            throw ExchangeFailure(failure: .connectionFailed, responseStarted: false)
        }
        defer { abandonment.detach(channel) }
        return try await exchange(request, timeouts: timeouts, pool: pool, key: key)
    }

    /// Sends the request and waits for the response head; the body streams from the returned response.
    nonisolated(nonsending) func exchange(_ request: UpstreamRequest, timeouts: TimeoutConfig, pool: LoopConnectionPool,
                  key: LoopConnectionPool.Key) async throws(ExchangeFailure) -> UpstreamResponse {
        let framing = HTTP1RequestWriter.framing(method: request.method, body: request.body)
        var requestHead = channel.allocator.buffer(capacity: 512)
        HTTP1RequestWriter.writeHead(method: request.method, target: request.target, authority: request.authority,
                                     fields: request.headers, framing: framing, traceparent: request.traceparent, to: &requestHead)
        // The handler learns the method (a response to HEAD has no body); the bytes go out as written (a
        // bodiless request whole).
        handler.beginExchange(method: request.method, bufferLimit: request.bufferLimit, upgrade: request.upgrade)
        channel.writeAndFlush(requestHead, promise: nil)
        handler.touch()
        var requestComplete = true
        if let body = request.body {
            do {
                for try await chunk in body.stream {
                    var bytes = chunk
                    if framing == .chunked {
                        guard chunk.readableBytes > 0 else { continue }
                        bytes = channel.allocator.buffer(capacity: chunk.readableBytes + 12)
                        HTTP1RequestWriter.writeChunk(chunk, to: &bytes)
                    }
                    if channel.isWritable {
                        channel.writeAndFlush(bytes, promise: nil)
                    } else {
                        try await channel.writeAndFlush(bytes).get()
                    }
                    handler.touch()
                }
            } catch {
                // The client's body broke (the forwarder reads why from the body), or the instance
                // stopped reading: unless it already answered (an early response), the exchange failed.
                requestComplete = false
                if body.stream.clientFailure != nil || !handler.hasBufferedHead {
                    channel.close(promise: nil)
                    throw ExchangeFailure(failure: .connectionFailed, responseStarted: handler.hasBufferedHead)
                }
            }
            if requestComplete, framing == .chunked {
                var last = channel.allocator.buffer(capacity: 5)
                HTTP1RequestWriter.writeLastChunk(to: &last)
                channel.writeAndFlush(last, promise: nil)
            }
        }

        // `response_headers` counts from the end of the request.
        handler.expectResponse(within: .nanoseconds(timeouts.responseHeaders.nanosecondsClamped))
        defer { handler.responseArrived() }
        let head: UpstreamResponseHead
        do {
            let part: UpstreamResponsePart?
            do {
                part = try await handler.next()
            } catch {
                channel.close(promise: nil)
                // TLS 1.3: an instance refuses the gateway's client certificate (or its absence) after the
                // client's side of the handshake is done — with the first read.
                let failure: UpstreamFailure = handler.timedOut ? .responseTimeout : UpstreamFailure(classifying: error) == .tlsFailed ? .tlsFailed : .connectionFailed
                throw ExchangeFailure(failure: failure, responseStarted: false)
            }
            guard case .head(let received) = part else {
                channel.close(promise: nil)
                throw ExchangeFailure(failure: handler.timedOut ? .responseTimeout : .connectionFailed, responseStarted: false)
            }
            // 1xx interim responses (100 Continue, 103 Early Hints) were read and dropped: this is the final one.
            head = received
        }
        if request.upgrade, head.status == 101 {
            // The connection now carries the new protocol: it leaves the exchange and never returns to the pool.
            handler.endExchange()
            return UpstreamResponse(status: .switchingProtocols, headers: head.fields, body: .switched(SwitchedUpstream(channel: channel)))
        }
        if !Self.isForwardable(head) {
            channel.close(promise: nil)
            throw ExchangeFailure(failure: .connectionFailed, responseStarted: true)
        }
        let reusable = requestComplete && head.keepAlive && !request.upgrade
        // The status line's standard reason phrase ("200 OK"), as HAProxy and nginx pass one on.
        let status = HTTPResponse.Status(code: head.status, reasonPhrase: HTTPResponseStatus(statusCode: head.status).reasonPhrase)
        if let complete = handler.takeCompleteBody() {
            handler.endExchange()
            if reusable { pool.release(self, key: key) } else { channel.close(promise: nil) }
            return UpstreamResponse(status: status, headers: head.fields, sifted: head.sifted, body: .complete(complete))
        }
        let body = UpstreamResponseStream(connection: self, pool: pool, key: key, reusable: reusable)
        return UpstreamResponse(status: status, headers: head.fields, sifted: head.sifted, body: .stream(body))
    }
}

extension UpstreamConnection {
    /// Whether a response head can be passed on: not `101 Switching Protocols` (the gateway never asks
    /// an instance to upgrade, so a 101 is a broken instance), and a `Transfer-Encoding` only when it is
    /// `chunked` alone (`UpstreamResponseHead.codingsForwardable`). A response refused here is a 502 for
    /// the client and an upstream failure.
    static func isForwardable(_ head: UpstreamResponseHead) -> Bool {
        head.status != 101 && head.codingsForwardable
    }
}
