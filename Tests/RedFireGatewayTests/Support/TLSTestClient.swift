import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOTLS
import X509

@testable import RedFireGateway

/// A real TLS client (swift-nio-ssl, BoringSSL) for the gateway's TLS listeners: chosen SNI, versions,
/// trust roots and client certificate; reports the negotiated version and the certificate the server
/// presented. Requests are written as bytes and responses parsed as `RawHTTP` does, on one keep-alive
/// connection.
final class TLSTestConnection: @unchecked Sendable {
    struct Options {
        /// The SNI sent (and the name verified); nil sends none and skips name verification.
        var serverName: String?
        /// Whether the presented certificate must name `serverName` (false: it must only chain to `trust`).
        var verifyHostname = true
        var trust: [NIOSSLCertificate] = []
        var minimumVersion: TLSVersion = .tlsv1
        var maximumVersion: TLSVersion?
        var clientCertificate: (certificate: String, key: String)?
        var applicationProtocols: [String] = ["http/1.1"]
    }

    private let channel: any Channel
    private let collector: Collector
    /// `TLSv1.3`/`TLSv1.2`, once the handshake is done.
    let tlsVersion: TLSVersion?
    /// The DNS names of the certificate the server presented.
    let presentedNames: [String]
    /// The presented leaf's serial number (tells two certificates for one name apart).
    let presentedSerial: String

    private init(channel: any Channel, collector: Collector, tlsVersion: TLSVersion?, presented: NIOSSLCertificate?) throws {
        self.channel = channel
        self.collector = collector
        self.tlsVersion = tlsVersion
        if let presented {
            let leaf = try Certificate(derEncoded: try presented.toDERBytes())
            presentedNames = ServerTLSMaterial.names(of: leaf)
            presentedSerial = leaf.serialNumber.description
        } else {
            presentedNames = []
            presentedSerial = ""
        }
    }

    /// Connects and completes the handshake; throws the handshake's error when it fails.
    static func connect(port: Int, _ options: Options) async throws -> TLSTestConnection {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = options.minimumVersion
        tls.maximumTLSVersion = options.maximumVersion
        tls.trustRoots = .certificates(options.trust)
        tls.certificateVerification = options.serverName == nil || !options.verifyHostname ? .noHostnameVerification : .fullVerification
        tls.applicationProtocols = options.applicationProtocols
        if let client = options.clientCertificate {
            tls.certificateChain = try NIOSSLCertificate.fromPEMFile(client.certificate).map { .certificate($0) }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: client.key, format: .pem))
        }
        let context = try NIOSSLContext(configuration: tls)
        let collector = Collector()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: options.serverName))
                    try channel.pipeline.syncOperations.addHandler(collector)
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        do {
            try await collector.handshake.futureResult.get()
        } catch {
            try? await channel.close()
            throw error
        }
        let (version, presented) = try await channel.eventLoop.submit {
            let handler = try channel.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self)
            return (handler.tlsVersion, handler.peerCertificate)
        }.get()
        return try TLSTestConnection(channel: channel, collector: collector, tlsVersion: version, presented: presented)
    }

    /// `GET path` (keep-alive) and its response.
    func get(_ path: String, host: String = "127.0.0.1", headers: [(String, String)] = []) async throws -> GatewayHarness.Reply {
        var text = "GET \(path) HTTP/1.1\r\nHost: \(host)\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        text += "\r\n"
        let promise = channel.eventLoop.makePromise(of: GatewayHarness.Reply.self)
        collector.expect(promise, on: channel.eventLoop)
        do {
            try await channel.writeAndFlush(ByteBuffer(string: text))
        } catch {
            promise.fail(error)
        }
        return try await promise.futureResult.get()
    }

    func close() async {
        try? await channel.close()
    }

    /// Writes bytes as they are (inside TLS): frames of another protocol, broken on purpose.
    func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    /// Waits until the server closes the connection (or `timeout` passes); returns whether it did and
    /// every byte it sent.
    func waitForClose(timeout: TimeAmount = .seconds(5)) async -> (closed: Bool, bytes: [UInt8]) {
        let loop = channel.eventLoop
        let done = loop.makePromise(of: Void.self)
        channel.closeFuture.whenComplete { _ in done.succeed() }
        let timer = loop.scheduleTask(in: timeout) { done.succeed() }
        _ = try? await done.futureResult.get()
        timer.cancel()
        let closed = !channel.isActive
        let bytes = (try? await loop.submit { self.collector.bytes }.get()) ?? []
        return (closed, bytes)
    }

    var isActive: Bool { channel.isActive }

    /// One connection's received bytes, handed out a response at a time.
    private final class Collector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        var handshake: EventLoopPromise<Void>!
        private var handshakeSettled = false
        private var received: [UInt8] = []
        /// Everything received and not yet handed out as a response.
        var bytes: [UInt8] { received }
        private var waiting: EventLoopPromise<GatewayHarness.Reply>?
        private var inactive = false

        func handlerAdded(context: ChannelHandlerContext) {
            handshake = context.eventLoop.makePromise()
        }

        func expect(_ promise: EventLoopPromise<GatewayHarness.Reply>, on loop: any EventLoop) {
            loop.execute {
                guard !self.inactive else {
                    promise.fail(RawHTTP.Failure(description: "the connection is closed"))
                    return
                }
                self.waiting = promise
                self.deliver()
            }
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case .handshakeCompleted = event as? TLSUserEvent, !handshakeSettled {
                handshakeSettled = true
                handshake.succeed()
            }
            context.fireUserInboundEventTriggered(event)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            received.append(contentsOf: unwrapInboundIn(data).readableBytesView)
            deliver()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            if !handshakeSettled {
                handshakeSettled = true
                handshake.fail(error)
            }
            waiting?.fail(error)
            waiting = nil
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            inactive = true
            if !handshakeSettled {
                handshakeSettled = true
                handshake.fail(RawHTTP.Failure(description: "closed before the handshake completed"))
            }
            if let waiting {
                if let reply = RawHTTP.parse(received, closed: true) { waiting.succeed(reply) }
                else { waiting.fail(RawHTTP.Failure(description: "closed without a complete response")) }
            }
            waiting = nil
        }

        private func deliver() {
            guard let waiting, let (reply, used) = RawConnection.complete(received) else { return }
            received.removeFirst(used)
            self.waiting = nil
            waiting.succeed(reply)
        }
    }
}
