import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// Refusals with the error envelope, responses written as bytes (`HTTP1ResponseWriter`), and closing.
extension GatewayHTTPCodec {
    /// `head`: the refused request's head when it was parsed (its method and target are logged).
    func refuse(_ error: GatewayError, requestID: String?, head: HTTP1Parser.Head? = nil, context: ChannelHandlerContext) {
        let id = requestID ?? GatewayRequestID.generate()
        let refusal = WrittenRefusal(error, requestID: id)
        if let accessLog {
            let since = state.headSince ?? now
            var entry = AccessLogEntry(requestID: id, clientIP: context.channel.remoteAddress?.ipAddress,
                                       method: head.map(\.method) ?? "-", path: head.map { Self.loggedPath($0.target) } ?? "-")
            if let head { entry.protocolName = "HTTP/1.\(head.minorVersion)" }
            entry.tls = facts?.tlsVersion.map(ClientTransport.name(of:))
            accessLog.record(entry,
                             status: error.status.code, instance: nil, attempts: 0, upstream: .zero,
                             total: .nanoseconds(max(0, (NIODeadline.now() - since).nanoseconds)), bytesIn: 0,
                             bytesOut: refusal.body.readableBytes, errorCode: error.code)
        }
        perform(state.refused(refusal), context: context)
    }

    /// A refused target as the access log shows it: without the query (which may carry secrets), at
    /// most 256 bytes.
    static func loggedPath(_ uri: String) -> String {
        let utf8 = uri.utf8
        let end = utf8.firstIndex(of: UInt8(ascii: "?")) ?? utf8.endIndex
        return String(Substring(utf8[..<end].prefix(256)))
    }

    /// Writes a refusal after what was collected, then closes (the state machine decided it is due).
    func writeRefusal(_ refusal: WrittenRefusal, context: ChannelHandlerContext) {
        var buffer = takeOutbound(context: context, capacity: 256 + refusal.body.readableBytes)
        HTTP1ResponseWriter.writeComplete(status: refusal.error.status, fields: [
            ("Content-Type", ErrorEnvelope.contentType), ("X-Request-ID", refusal.requestID), ("Cache-Control", "no-store"), ("Connection", "close"),
        ], body: refusal.body, to: &buffer)
        outbound = buffer
        closeWhenWritten(context: context, promise: nil)
    }

    /// Writes and flushes what was collected, then closes (lingering).
    func closeWhenWritten(context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        let written = context.eventLoop.makePromise(of: Void.self)
        writeOutbound(context: context, promise: written)
        context.flush()
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
        timer = nil
        state.timerStopped()
        context.close(mode: .output, promise: nil)
        lingerTask = context.eventLoop.assumeIsolated().scheduleTask(in: Self.linger) {
            context.close(promise: nil)
        }
    }

    static let linger: TimeAmount = .seconds(2)

    // MARK: Outbound

    /// Small body parts are copied into the head's buffer, so a whole small response leaves in one
    /// write; larger ones go out as they are, after what was collected.
    static let coalesceLimit = 8 * 1024

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // After a switch of protocols, until the codec has left: the new protocol's bytes pass.
        if handingOver {
            context.write(data, promise: promise)
            return
        }
        write(unwrapOutboundIn(data), context: context, promise: promise)
    }

    /// A response part from the linked request loop.
    func respond(_ part: HTTPResponsePart, flush: Bool, promise: EventLoopPromise<Void>?) {
        guard let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        write(part, context: context, promise: promise)
        if flush { self.flush(context: context) }
    }

    func write(_ part: HTTPResponsePart, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        guard !state.outboundClosed else {
            // A response after the connection decided to close (e.g. the server's own answer to a parse
            // error it saw after ours): dropped.
            promise?.succeed(())
            return
        }
        switch part {
        case .head(let response):
            let final = response.status.kind != .informational
            let decision = state.responseHead(final: final, isContinue: response.status == .continue, now: now)
            // An HTTP/1.0 client gets no interim response (`100 Continue` included).
            if decision.drop {
                promise?.succeed(())
                return
            }
            var buffer = takeOutbound(context: context, capacity: 512)
            let head = responseWriter.writeHead(response, answering: decision.request, close: decision.close, to: &buffer)
            if final, head.closes { state.responseCloses() }
            collect(buffer, context: context, promise: promise)
        case .body(let body):
            var buffer = takeOutbound(context: context, capacity: 0)
            guard responseWriter.writeBodyPrefix(count: body.readableBytes, to: &buffer) else {
                outbound = buffer.readableBytes > 0 ? buffer : nil
                promise?.succeed(())
                return
            }
            if body.readableBytes <= Self.coalesceLimit {
                buffer.writeImmutableBuffer(body)
                responseWriter.writeBodySuffix(to: &buffer)
                collect(buffer, context: context, promise: promise)
            } else {
                if buffer.readableBytes > 0 { context.write(wrapOutboundOut(buffer), promise: nil) }
                context.write(wrapOutboundOut(body), promise: promise)
                var suffix = context.channel.allocator.buffer(capacity: 2)
                responseWriter.writeBodySuffix(to: &suffix)
                outbound = suffix.readableBytes > 0 ? suffix : nil
            }
        case .end(let trailers):
            var buffer = takeOutbound(context: context, capacity: 8)
            responseWriter.writeEnd(trailers: trailers, to: &buffer)
            outbound = buffer
            switch state.responseEnd(now: now) {
            case .writeRefusal(let refusal):
                writeOutbound(context: context, promise: promise)
                writeRefusal(refusal, context: context)
            case .closeWhenWritten:
                closeWhenWritten(context: context, promise: promise)
            case .keepOpen(let action):
                // Written now (not at the flush): the promise completes in order with the bytes.
                writeOutbound(context: context, promise: promise)
                perform(action, context: context)
                if state.parserStopped { replaceParser(context: context) }
            }
        }
    }

    /// After an upgrade request answered as a plain one: llhttp stopped reading at it, so it starts
    /// afresh with what it held (the next requests' bytes).
    func replaceParser(context: ChannelHandlerContext) {
        state.parserReplaced()
        do {
            try parser.restart()
        } catch {
            parseFailed(error, context: context)
        }
    }

    /// Leaves the pipeline after a switch of protocols: what the client sent after its request goes to
    /// the handlers that follow (the new protocol's), unparsed.
    func handOver(context: ChannelHandlerContext) {
        if let remainder = parser.takeRemainder() { context.fireChannelRead(NIOAny(remainder)) }
        context.pipeline.syncOperations.removeHandler(self, promise: nil)
    }

    func flush(context: ChannelHandlerContext) {
        writeOutbound(context: context, promise: nil)
        context.flush()
    }

    /// The bytes collected so far to append to, or a new buffer.
    func takeOutbound(context: ChannelHandlerContext, capacity: Int) -> ByteBuffer {
        if let buffer = outbound {
            outbound = nil
            return buffer
        }
        return context.channel.allocator.buffer(capacity: capacity)
    }

    /// Keeps bytes for the next flush; a part whose writer waits for it (`promise`) goes out now.
    func collect(_ buffer: ByteBuffer, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        outbound = buffer
        if let promise { writeOutbound(context: context, promise: promise) }
    }

    /// Writes what was collected (an empty write when nothing was, so `promise` completes in order).
    func writeOutbound(context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        if let buffer = outbound, buffer.readableBytes > 0 {
            outbound = nil
            context.write(wrapOutboundOut(buffer), promise: promise)
        } else if let promise {
            outbound = nil
            context.write(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: promise)
        }
    }
}
