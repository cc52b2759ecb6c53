// The WebSocket side of `scripts/bench.sh`: a load client and an echo server, on SwiftNIO — and the
// relay that is its reference for what a proxy on SwiftNIO costs at the least (Relay.swift).
//
//   redfire-ws-load echo --port 9400 [--threads 1]
//       a WebSocket echo server on 127.0.0.1 (any path): every message back, unmasked, as one frame.
//   redfire-ws-load run --url ws://127.0.0.1:8080/path --connections 100 [--interval-ms 0] [--size 64]
//                       [--duration 10] [--threads 1]
//       opens the connections (all of them before the clock starts), then each sends a message every
//       interval (0: the next as soon as the last came back) carrying its send time; prints one JSON
//       line: connections open and failed, messages sent and echoed, echoes per second, round-trip
//       latency percentiles (µs), and the first error seen.
//   redfire-ws-load relay --port 18087 --upstreams 19001,19002 [--through handlers|task|parse]
//       relays each connection's bytes to an upstream connection of its own (see Relay.swift).
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import Synchronization

struct Options {
    var mode = ""
    var url = ""
    var port = 9400
    var connections = 100
    var intervalMillis = 0
    var size = 64
    var duration = 10
    var threads = 1
    var upstreams = ""
    var through = "handlers"

    init(_ arguments: [String]) {
        var rest = arguments.dropFirst()
        mode = rest.popFirst() ?? ""
        while let flag = rest.popFirst() {
            let value = rest.popFirst() ?? ""
            switch flag {
            case "--url": url = value
            case "--port": port = Int(value) ?? port
            case "--connections": connections = Int(value) ?? connections
            case "--interval-ms": intervalMillis = Int(value) ?? intervalMillis
            case "--size": size = max(8, Int(value) ?? size)
            case "--duration": duration = Int(value) ?? duration
            case "--threads": threads = max(1, Int(value) ?? threads)
            case "--upstreams": upstreams = value
            case "--through": through = value
            default: fatalError("unknown option \(flag)")
            }
        }
    }
}

/// Raises the soft limit of open files to the hard one: ten thousand connections need more than 1024.
func raiseOpenFileLimit() {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
    limit.rlim_cur = limit.rlim_max
    setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}

// MARK: Echo server

final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary, .continuation:
            context.write(wrapOutboundOut(WebSocketFrame(fin: frame.fin, opcode: frame.opcode, data: frame.unmaskedData)), promise: nil)
        case .ping:
            context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        case .connectionClose:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: frame.unmaskedData)))
                .assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }
}

func runEcho(_ options: Options) throws {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: options.threads)
    let upgrader = NIOWebSocketServerUpgrader(maxFrameSize: 1 << 24, shouldUpgrade: { channel, _ in channel.eventLoop.makeSucceededFuture([:]) },
                                              upgradePipelineHandler: { channel, _ in
                                                  channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(EchoHandler()) }
                                              })
    let server = try ServerBootstrap(group: group)
        .serverChannelOption(.backlog, value: 4096)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
        .childChannelInitializer { channel in
            channel.pipeline.configureHTTPServerPipeline(withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
        }
        .bind(host: "127.0.0.1", port: options.port).wait()
    print("echo listening on 127.0.0.1:\(server.localAddress?.port ?? 0)")
    fflush(nil)
    try server.closeFuture.wait()
}

// MARK: Load client

final class Stats: Sendable {
    struct Values {
        var open = 0
        var failed = 0
        var sent = 0
        var received = 0
        var latencies: [UInt64] = []
        var firstError: String?
    }

    let values = Mutex(Values())
    let measuring = Atomic<Bool>(false)
}

/// Upgrades one connection, then sends messages and times their echoes.
final class LoadHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let options: Options
    let path: String
    let host: String
    let stats: Stats
    let upgraded: EventLoopPromise<Void>
    var received = ByteBuffer()

    init(options: Options, host: String, path: String, stats: Stats, upgraded: EventLoopPromise<Void>) {
        self.options = options
        self.host = host
        self.path = path
        self.stats = stats
        self.upgraded = upgraded
    }

    func channelActive(context: ChannelHandlerContext) {
        var key = ByteBuffer()
        key.writeBytes((0..<16).map { _ in UInt8.random(in: 0...255) })
        let request = "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: \(Data(key.readableBytesView).base64EncodedString())\r\nSec-WebSocket-Version: 13\r\n\r\n"
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: request)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        received.writeBuffer(&bytes)
        guard let end = received.readableBytesView.firstRange(of: Array("\r\n\r\n".utf8)) else { return }
        let head = String(decoding: received.readableBytesView[..<end.upperBound], as: UTF8.self)
        received.moveReaderIndex(to: end.upperBound)
        guard head.hasPrefix("HTTP/1.1 101") else {
            upgraded.fail(ChannelError.inappropriateOperationForState)
            let status = head.split(separator: "\r\n").first.map(String.init) ?? "?"
            stats.values.withLock { if $0.firstError == nil { $0.firstError = "upgrade answered \(status)" } }
            context.close(promise: nil)
            return
        }
        let sync = context.pipeline.syncOperations
        do {
            let sender = MessageSender(options: options, stats: stats)
            try sync.addHandler(ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: 1 << 24)), position: .after(self))
            try sync.addHandler(WebSocketFrameEncoder(), position: .last)
            try sync.addHandler(sender, position: .last)
            let rest = received
            sync.removeHandler(self, promise: nil)
            if rest.readableBytes > 0 { context.fireChannelRead(NIOAny(rest)) }
            upgraded.succeed(())
        } catch {
            upgraded.fail(error)
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        upgraded.fail(error)
        context.close(promise: nil)
    }
}

final class MessageSender: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let options: Options
    let stats: Stats
    var task: Scheduled<Void>?
    var started = false

    init(options: Options, stats: Stats) {
        self.options = options
        self.stats = stats
    }

    /// Starts sending (the clock started): every interval, or the next message once one came back.
    func start(context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        if options.intervalMillis > 0 {
            let interval = TimeAmount.milliseconds(Int64(options.intervalMillis))
            // Spread over the first interval, so the connections do not send in lockstep.
            schedule(in: .nanoseconds(Int64.random(in: 0..<interval.nanoseconds)), every: interval, context: context)
        } else {
            send(context: context)
        }
    }

    func schedule(in delay: TimeAmount, every interval: TimeAmount, context: ChannelHandlerContext) {
        task = context.eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
            send(context: context)
            schedule(in: interval, every: interval, context: context)
        }
    }

    func send(context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        var payload = context.channel.allocator.buffer(capacity: options.size)
        payload.writeInteger(DispatchTime.now().uptimeNanoseconds)
        payload.writeRepeatingByte(UInt8(ascii: "x"), count: options.size - 8)
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .binary, maskKey: .random(), data: payload)), promise: nil)
        if stats.measuring.load(ordering: .relaxed) { stats.values.withLock { $0.sent += 1 } }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard frame.opcode == .binary, let sent = frame.data.getInteger(at: frame.data.readerIndex, as: UInt64.self) else {
            if frame.opcode == .connectionClose { context.close(promise: nil) }
            return
        }
        let latency = DispatchTime.now().uptimeNanoseconds &- sent
        if stats.measuring.load(ordering: .relaxed) {
            stats.values.withLock { values in
                values.received += 1
                values.latencies.append(latency / 1000)
            }
        }
        if options.intervalMillis == 0 { send(context: context) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event as? String == "start" { start(context: context) } else { context.fireUserInboundEventTriggered(event) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        task?.cancel()
        if stats.measuring.load(ordering: .relaxed) {
            stats.values.withLock { values in
                values.open -= 1
                if values.firstError == nil { values.firstError = "a connection closed during the run" }
            }
        }
        context.fireChannelInactive()
    }
}

func runLoad(_ options: Options) throws {
    guard let url = URL(string: options.url), let host = url.host, let port = url.port else { fatalError("--url ws://HOST:PORT/PATH") }
    let path = url.path.isEmpty ? "/" : url.path + (url.query.map { "?" + $0 } ?? "")
    let group = MultiThreadedEventLoopGroup(numberOfThreads: options.threads)
    let stats = Stats()
    var channels: [any Channel] = []
    // Connect in batches, so the listen backlogs are never the limit.
    var index = 0
    while index < options.connections {
        let batch = min(200, options.connections - index)
        var pending: [(EventLoopFuture<any Channel>, EventLoopFuture<Void>)] = []
        for _ in 0..<batch {
            let loop = group.next()
            let upgraded = loop.makePromise(of: Void.self)
            let channel = ClientBootstrap(group: loop)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(LoadHandler(options: options, host: "\(host):\(port)", path: path,
                                                                                   stats: stats, upgraded: upgraded))
                    }
                }
                .connect(host: host, port: port)
            channel.whenFailure { upgraded.fail($0) }
            pending.append((channel, upgraded.futureResult))
        }
        for (channel, upgraded) in pending {
            do {
                let channel = try channel.wait()
                try upgraded.wait()
                channels.append(channel)
            } catch {
                stats.values.withLock { values in
                    values.failed += 1
                    if values.firstError == nil { values.firstError = "\(error)" }
                }
            }
        }
        index += batch
    }
    stats.values.withLock { $0.open = channels.count }
    stats.measuring.store(true, ordering: .relaxed)
    let start = DispatchTime.now()
    for channel in channels { channel.pipeline.fireUserInboundEventTriggered("start") }
    Thread.sleep(forTimeInterval: Double(options.duration))
    stats.measuring.store(false, ordering: .relaxed)
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    let values = stats.values.withLock { $0 }
    let sorted = values.latencies.sorted()
    func percentile(_ p: Double) -> UInt64 { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
    var result: [String: Any] = [
        "connections": options.connections, "open": values.open, "failed": values.failed, "sent": values.sent, "received": values.received,
        "seconds": (seconds * 100).rounded() / 100, "rate": Int(Double(values.received) / seconds),
        "p50_us": percentile(0.5), "p99_us": percentile(0.99), "max_us": sorted.last ?? 0,
    ]
    if let error = values.firstError { result["error"] = error }
    let json = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
    print(String(decoding: json, as: UTF8.self))
    fflush(nil)
    for channel in channels { channel.close(promise: nil) }
    try? group.syncShutdownGracefully()
}

raiseOpenFileLimit()
let options = Options(CommandLine.arguments)
switch options.mode {
case "echo": try runEcho(options)
case "run": try runLoad(options)
case "relay": try runRelay(options)
default:
    print("usage: redfire-ws-load echo --port P | run --url ws://HOST:PORT/PATH --connections N [--interval-ms I] [--size B] [--duration S] | relay --port P --upstreams P1,P2 [--through handlers|task|parse]")
    exit(2)
}
