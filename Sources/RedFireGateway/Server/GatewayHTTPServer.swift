import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOSSL
import NIOTLS

/// The gateway's HTTP/1.1 server connections of one listener (`GatewayListener` accepts them and
/// drains them on graceful shutdown):
///
/// ```
/// socket ⇄ [TLSHandshakeDeadline ⇄ NIOSSLServerHandler ⇄ TLSHandshakeObserver] ⇄ GatewayHTTPCodec (llhttp) ⇄ GatewayRequestHandler
/// ```
///
/// On a TLS listener the TLS handler decrypts first, with the listener's certificates of the moment.
/// `GatewayHTTPCodec` parses requests straight into HTTP types and is where connection-level hygiene
/// lives: malformed requests are answered with the error envelope and the connection closed, slow
/// header sections with 408, idle keep-alive connections closed; it also counts open connections and
/// closes them on graceful shutdown (idle at once, busy after their response).
/// `GatewayRequestHandler` answers the requests, one at a time, on the connection's event loop.
struct GatewayHTTPServer: Sendable {
    /// Answers one request (Hummingbird's `HTTP1Channel(responder:)` shape): the server knows nothing
    /// of what answers it.
    typealias Responder = nonisolated(nonsending) @Sendable (GatewayRequest, GatewayRequestContext) async throws -> GatewayResponse

    let responder: Responder
    let listener: ListenerRuntime
    /// Where refusals the connection answers itself (malformed requests, timeouts) are logged.
    let accessLog: AccessLog?
    /// Read for every new connection, so a reload applies to connections opened after it.
    let settings: @Sendable () -> ConnectionSettings
    let connections: ConnectionCount
    let logger: Logger
    /// The tasks that answer requests, per event loop (closed by the listener when it stops).
    let workers: RequestWorkerPools

    /// The handlers of a new connection, on its event loop.
    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            let settings = self.settings()
            let facts = ConnectionFacts(listener: listener)
            let sync = channel.pipeline.syncOperations
            let open = listener.open
            open.opened()
            channel.closeFuture.whenComplete { _ in open.closed() }
            // A slow client holds at most half the connection buffer of a response in its write buffer
            // (the other half waits on the instance's side): past the high mark the request loop waits
            // for the socket to drain before taking more from the instance.
            // An idle keep-alive connection keeps its last receive buffer: start it at 1 KiB (NIO's default
            // is 2 KiB), which holds a request head with a bearer token; it grows at once for bodies.
            try channel.syncOptions?.setOption(ChannelOptions.recvAllocator, value: Self.receiveBuffers)
            try channel.syncOptions?.setOption(ChannelOptions.writeBufferWaterMark,
                                               value: .init(low: settings.bufferBytes / 4, high: settings.bufferBytes / 2))
            if let tls = listener.tls {
                let deadline = TLSHandshakeDeadline(timeout: settings.headerTimeout, facts: facts)
                try sync.addHandler(deadline)
                try sync.addHandler(NIOSSLServerHandler(context: tls.context))
                try sync.addHandler(TLSHandshakeObserver(state: tls, facts: facts, deadline: deadline))
                if listener.config.offersHTTP2 {
                    // What follows the handshake depends on what the client chose: `h2`, or HTTP/1.1
                    // (`http/1.1`, or no ALPN at all). Bytes that arrive meanwhile wait for it.
                    try sync.addHandler(ApplicationProtocolNegotiationHandler { [self] result, channel in
                        channel.eventLoop.makeCompletedFuture {
                            if result == .negotiated("h2") {
                                try HTTP2Connection.configure(channel, listener: listener, facts: facts, settings: settings, connections: connections,
                                                              accessLog: accessLog, logger: self.logger, responder: responder,
                                                              workers: workers.workers(for: channel.eventLoop))
                            } else {
                                try addHTTP1(channel, facts: facts, settings: settings)
                            }
                        }
                    })
                    return
                }
            }
            try addHTTP1(channel, facts: facts, settings: settings)
        }
    }

    static let receiveBuffers = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 1024, maximum: 65536)

    /// The HTTP/1.1 handlers, at the end of the pipeline.
    private func addHTTP1(_ channel: any Channel, facts: ConnectionFacts, settings: ConnectionSettings) throws {
        let codec = GatewayHTTPCodec(settings: settings, connections: connections, accessLog: accessLog, facts: facts)
        let sync = channel.pipeline.syncOperations
        // The codec parses (llhttp) and writes responses as bytes itself.
        try sync.addHandler(codec)
        let requests = GatewayRequestHandler(responder: responder, logger: logger, bufferLimit: settings.bufferBytes, facts: facts,
                                             workers: workers.workers(for: channel.eventLoop))
        try sync.addHandler(requests)
        codec.link(requests)
    }
}
