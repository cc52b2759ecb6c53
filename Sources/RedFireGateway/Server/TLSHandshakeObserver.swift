import NIOCore
import NIOSSL
import NIOTLS

/// What the handlers of one client connection share about it: the listener, the TLS version once the
/// handshake is done, the HTTP version of the last request head. Lives on the connection's event loop
/// (its HTTP/2 streams share that loop), hence `@unchecked Sendable`.
final class ConnectionFacts: @unchecked Sendable {
    let listener: ListenerRuntime
    var tlsVersion: TLSVersion?
    /// `HTTP/1.1` or `HTTP/1.0`, as the last request head said.
    var httpVersion = "HTTP/1.1"
    /// The handshake did not complete within `limits.header_timeout`.
    var handshakeTimedOut = false

    /// The listener's `hsts` and `redirect_https` when the connection opened (a reload applies to
    /// connections opened after it).
    private let hsts: String?
    private let redirectHTTPSPort: Int?

    init(listener: ListenerRuntime) {
        self.listener = listener
        self.hsts = listener.tls?.config.hsts
        self.redirectHTTPSPort = listener.config.redirectHTTPSPort
    }

    /// What a request on this connection knows of it (HSTS only once TLS is up: never on plain HTTP).
    var transport: ClientTransport {
        guard let tlsVersion else { return ClientTransport(redirectHTTPSPort: redirectHTTPSPort) }
        return ClientTransport(tls: ClientTransport.name(of: tlsVersion), hsts: hsts)
    }

    /// `Strict-Transport-Security` for the connection's responses.
    var strictTransportSecurity: String? { tlsVersion == nil ? nil : hsts }

    private var peerFound: (address: SocketAddress?, ip: String?)?

    /// The client's address and its text, found once per connection: an HTTP/2 connection's streams
    /// all share it.
    func peer(of channel: any Channel) -> (address: SocketAddress?, ip: String?) {
        if let peerFound { return peerFound }
        let address = channel.remoteAddress
        let found = (address: address, ip: address?.ipAddress)
        peerFound = found
        return found
    }
}

/// Sits behind the TLS handler of a TLS listener's connection: records the negotiated version when the
/// handshake completes and counts handshakes and their failures by reason. A failed handshake ends
/// here — the connection is closed without an HTTP answer (there is no channel to answer on).
final class TLSHandshakeObserver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let state: TLSListenerState
    private let facts: ConnectionFacts
    private let deadline: TLSHandshakeDeadline
    private var done = false

    init(state: TLSListenerState, facts: ConnectionFacts, deadline: TLSHandshakeDeadline) {
        self.state = state
        self.facts = facts
        self.deadline = deadline
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if !done, case .handshakeCompleted = event as? TLSUserEvent {
            done = true
            context.pipeline.syncOperations.removeHandler(deadline, promise: nil)
            facts.tlsVersion = (try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self))?.tlsVersion
            state.handshakeSucceeded()
            if let version = facts.tlsVersion { facts.listener.tlsCount(version)?.opened() }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !done else {
            context.fireErrorCaught(error)
            return
        }
        done = true
        state.handshakeFailed(facts.handshakeTimedOut ? "handshake_timeout" : Self.reason(error))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if done {
            if let version = facts.tlsVersion { facts.listener.tlsCount(version)?.closed() }
        } else {
            // Gone before the handshake completed: a port check, a client that gave up, a timeout.
            done = true
            state.handshakeFailed(facts.handshakeTimedOut ? "handshake_timeout" : "closed_before_handshake")
        }
        context.fireChannelInactive()
    }

    /// A failed handshake's reason, from BoringSSL's error names: what an operator can act on.
    static func reason(_ error: any Error) -> String {
        if error is CertificateSelector.UnknownServerName { return "unknown_server_name" }
        let text = String(describing: error).uppercased()
        let reasons: [(String, String)] = [
            ("HTTP_REQUEST", "plain_http"), ("HTTPS_PROXY_REQUEST", "plain_http"),
            ("UNSUPPORTED_PROTOCOL", "protocol_version"), ("WRONG_VERSION_NUMBER", "protocol_version"),
            ("TLSV1_ALERT_PROTOCOL_VERSION", "protocol_version"),
            ("NO_SHARED_CIPHER", "no_shared_cipher"), ("NO_SHARED_GROUP", "no_shared_cipher"),
            ("PEER_DID_NOT_RETURN_A_CERTIFICATE", "client_certificate_missing"),
            ("CERTIFICATE_VERIFY_FAILED", "client_certificate_invalid"),
            ("ALERT_UNKNOWN_CA", "certificate_rejected_by_client"), ("ALERT_BAD_CERTIFICATE", "certificate_rejected_by_client"),
            ("ALERT_CERTIFICATE_UNKNOWN", "certificate_rejected_by_client"), ("ALERT_CERTIFICATE_EXPIRED", "certificate_rejected_by_client"),
            ("CERT_CB_ERROR", "unknown_server_name"), ("NO_APPLICATION_PROTOCOL", "no_application_protocol"),
            ("EXCESSIVE_MESSAGE_SIZE", "malformed"), ("DECODE_ERROR", "malformed"), ("UNEXPECTED_MESSAGE", "malformed"),
        ]
        for (name, reason) in reasons where text.contains(name) { return reason }
        if let error = error as? NIOSSLError, case .uncleanShutdown = error { return "closed_before_handshake" }
        return "other"
    }
}

/// Bounds a TLS handshake by `limits.header_timeout`: a client that opens a connection and sends its
/// hello slowly, or nothing, is cut off like a slow header section. Sits in front of the TLS handler, so
/// its close goes straight to the socket (a close through the TLS handler waits for a TLS shutdown the
/// peer may never answer). Removed once the handshake completes.
final class TLSHandshakeDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let timeout: TimeAmount
    private let facts: ConnectionFacts
    private var timer: Scheduled<Void>?

    init(timeout: TimeAmount, facts: ConnectionFacts) {
        self.timeout = timeout
        self.facts = facts
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    private func arm(_ context: ChannelHandlerContext) {
        guard timer == nil else { return }
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            guard facts.tlsVersion == nil else { return }
            facts.handshakeTimedOut = true
            context.close(promise: nil)
        }
    }
}
