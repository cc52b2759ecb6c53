import NIOCore
import NIOSSL
import NIOTLS
import Synchronization

/// The TLS contexts of `https://` instances, one per distinct `services.NAME.tls` (a context holds the
/// trust store and client certificate: built once, not per connection). Read when a connection opens.
final class UpstreamTLSContexts: Sendable {
    private let contexts = Mutex<[UpstreamTLSConfig: NIOSSLContext]>([:])

    func context(for config: UpstreamTLSConfig) throws(UpstreamFailure) -> NIOSSLContext {
        if let context = contexts.withLock({ $0[config] }) { return context }
        // The files were read when the configuration loaded; read again here (they may have changed since).
        let context: NIOSSLContext
        do { context = try NIOSSLContext(configuration: try config.clientConfiguration()) }
        catch { throw .tlsFailed }
        contexts.withLock { $0[config] = context }
        return context
    }

    /// The TLS handler for a connection to `host`: SNI and the name verified are `server_name`, or the
    /// host itself — an IP address is sent no SNI and matched against the certificate's IP addresses.
    static func handler(context: NIOSSLContext, config: UpstreamTLSConfig, host: String) throws -> NIOSSLClientHandler {
        let name = config.serverName ?? host
        let isAddress = (try? SocketAddress(ipAddress: name, port: 0)) != nil
        return try NIOSSLClientHandler(context: context, serverHostname: isAddress ? nil : name)
    }
}

/// Completes when the TLS handshake with an instance is done (or fails, or outlasts `timeout`: the
/// connect timeout), so a connection is handed out only once it can carry a request; then steps out of
/// the pipeline.
final class UpstreamTLSHandshake: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    let done: EventLoopPromise<Void>
    private let timeout: TimeAmount
    private var timer: Scheduled<Void>?
    private var settled = false

    /// - Parameter done: completed once (success, failure or timeout); made by whoever awaits it before
    ///   the connection exists, so the outcome cannot be missed.
    init(done: EventLoopPromise<Void>, timeout: TimeAmount) {
        self.done = done
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            fail(ChannelError.connectTimeout(timeout))
            context.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if !settled, case .handshakeCompleted = event as? TLSUserEvent {
            settled = true
            done.succeed()
            context.pipeline.syncOperations.removeHandler(self, promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error)
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(ChannelError.eof)
        context.fireChannelInactive()
    }

    func fail(_ error: any Error) {
        guard !settled else { return }
        settled = true
        done.fail(error)
    }
}
