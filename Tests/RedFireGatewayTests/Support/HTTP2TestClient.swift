import DemoServices
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP2
import NIOHTTPTypes
import NIOHTTPTypesHTTP2
import NIOPosix
import NIOSSL
import NIOTLS
import Synchronization

/// A real HTTP/2 client (swift-nio-http2 over swift-nio-ssl, ALPN `h2`) for the gateway's TLS listeners:
/// requests on streams of one connection, streams opened and reset, and whether the server sent GOAWAY.
final class HTTP2TestClient: @unchecked Sendable {
    struct Reply: Sendable {
        var status: Int
        var fields: HTTPFields
        var body: String
        var trailers: HTTPFields?

        var errorCode: String? {
            let json = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
            return (json?["error"] as? [String: Any])?["code"] as? String
        }
    }

    let channel: any Channel
    private let multiplexer: NIOHTTP2Handler.StreamMultiplexer
    private let events: Events

    /// GOAWAY frames the server sent, and whether the connection has closed.
    final class Events: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTP2Frame
        private let state = Mutex<(goAways: [NIOHTTP2.HTTP2ErrorCode], closed: Bool)>(([], false))
        var goAways: [NIOHTTP2.HTTP2ErrorCode] { state.withLock { $0.goAways } }
        var closed: Bool { state.withLock { $0.closed } }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if case .goAway(_, let code, _) = unwrapInboundIn(data).payload { state.withLock { $0.goAways.append(code) } }
            context.fireChannelRead(data)
        }

        func channelInactive(context: ChannelHandlerContext) {
            state.withLock { $0.closed = true }
            context.fireChannelInactive()
        }

        /// A stream's error (a reset raced by a late frame) is the stream's: the connection goes on.
        func errorCaught(context: ChannelHandlerContext, error: any Error) {
        }
    }

    private init(channel: any Channel, multiplexer: NIOHTTP2Handler.StreamMultiplexer, events: Events) {
        self.channel = channel
        self.multiplexer = multiplexer
        self.events = events
    }

    var goAways: [NIOHTTP2.HTTP2ErrorCode] { events.goAways }
    var isClosed: Bool { events.closed }

    /// - Parameter bulk: large windows and frames, as a client made for big transfers sets them.
    static func connect(port: Int, trust: [NIOSSLCertificate], serverName: String = "api.redfire.test", bulk: Bool = false) async throws -> HTTP2TestClient {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(trust)
        tls.applicationProtocols = ["h2"]
        let context = try NIOSSLContext(configuration: tls)
        let events = Events()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port).get()
        let multiplexer = try await channel.eventLoop.submit {
            let sync = channel.pipeline.syncOperations
            try sync.addHandler(try NIOSSLClientHandler(context: context, serverHostname: serverName))
            var connection = NIOHTTP2Handler.ConnectionConfiguration()
            var stream = NIOHTTP2Handler.StreamConfiguration()
            if bulk {
                connection.initialSettings = [HTTP2Setting(parameter: .maxFrameSize, value: 1 << 18), HTTP2Setting(parameter: .initialWindowSize, value: 1 << 20)]
                connection.targetWindowSize = 4 << 20
                stream.targetWindowSize = 1 << 20
            }
            let handler = NIOHTTP2Handler(mode: .client, eventLoop: channel.eventLoop, connectionConfiguration: connection, streamConfiguration: stream,
                                          inboundStreamInitializer: { $0.eventLoop.makeSucceededVoidFuture() })
            try sync.addHandler(handler)
            try sync.addHandler(events)
            return try handler.syncMultiplexer()
        }.get()
        return HTTP2TestClient(channel: channel, multiplexer: multiplexer, events: events)
    }

    /// One request on a new stream and its whole response.
    /// A `CONNECT` has no path and no scheme (RFC 9113 §8.5): pass nil.
    func request(_ method: HTTPRequest.Method = .get, _ path: String?, authority: String = "api.redfire.test", fields: HTTPFields = [:],
                 body: [String] = [], trailers: HTTPFields? = nil) async throws -> Reply {
        let collector = ResponseCollector(promise: channel.eventLoop.makePromise())
        let stream = try await stream(collector)
        let head = HTTPRequest(method: method, scheme: path == nil ? nil : "https", authority: authority, path: path, headerFields: fields)
        stream.write(HTTPRequestPart.head(head), promise: nil)
        for chunk in body { stream.write(HTTPRequestPart.body(ByteBuffer(string: chunk)), promise: nil) }
        try await stream.writeAndFlush(HTTPRequestPart.end(trailers)).get()
        return try await collector.promise.futureResult.get()
    }

    /// `PUT path` with `chunks` copies of `chunk` as the body, each write waiting for flow control (the
    /// client holds one chunk at a time), and the whole response.
    func upload(_ path: String, chunk: ByteBuffer, chunks: Int) async throws -> Reply {
        let collector = ResponseCollector(promise: channel.eventLoop.makePromise())
        let stream = try await stream(collector)
        try await stream.writeAndFlush(HTTPRequestPart.head(HTTPRequest(method: .put, scheme: "https", authority: "api.redfire.test", path: path))).get()
        for _ in 0..<chunks { try await stream.writeAndFlush(HTTPRequestPart.body(chunk)).get() }
        try await stream.writeAndFlush(HTTPRequestPart.end(nil)).get()
        return try await collector.promise.futureResult.get()
    }

    /// `GET path`, its body checksummed as it arrives (not kept): status, byte count, checksum.
    func download(_ path: String) async throws -> (status: Int, checksum: StreamChecksum) {
        let collector = ResponseCollector(promise: channel.eventLoop.makePromise(), keepBody: false)
        let stream = try await stream(collector)
        try await stream.writeAndFlush(HTTPRequestPart.head(HTTPRequest(method: .get, scheme: "https", authority: "api.redfire.test", path: path))).get()
        try await stream.writeAndFlush(HTTPRequestPart.end(nil)).get()
        let reply = try await collector.promise.futureResult.get()
        return (reply.status, try await stream.eventLoop.submit { collector.checksum }.get())
    }

    /// Opens a stream with a request head that announces a body, and leaves it open (nothing more is sent).
    func openStream(_ path: String, authority: String = "api.redfire.test") async throws -> (any Channel, EventLoopFuture<Reply>) {
        let collector = ResponseCollector(promise: channel.eventLoop.makePromise())
        let stream = try await stream(collector)
        try await stream.writeAndFlush(HTTPRequestPart.head(HTTPRequest(method: .post, scheme: "https", authority: authority, path: path))).get()
        return (stream, collector.promise.futureResult)
    }

    func close() async {
        try? await channel.close()
    }

    /// A new stream whose responses go to `collector`.
    private func stream(_ collector: ResponseCollector) async throws -> any Channel {
        try await multiplexer.createStreamChannel { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTPClientCodec())
                try stream.pipeline.syncOperations.addHandler(collector)
            }
        }.get()
    }

    private final class ResponseCollector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPResponsePart
        let promise: EventLoopPromise<Reply>
        private let keepBody: Bool
        private var head: HTTPResponse?
        private var body = ""
        var checksum = StreamChecksum()

        init(promise: EventLoopPromise<Reply>, keepBody: Bool = true) {
            self.promise = promise
            self.keepBody = keepBody
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let response) where response.status.kind == .informational:
                break
            case .head(let response):
                head = response
            case .body(let buffer):
                if keepBody { body += String(buffer: buffer) } else { checksum.update(buffer) }
            case .end(let trailers):
                if let head { promise.succeed(Reply(status: head.status.code, fields: head.headerFields, body: body, trailers: trailers)) }
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            promise.fail(error)
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            promise.fail(ChannelError.eof)
        }
    }
}
