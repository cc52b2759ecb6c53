import NIOCore
import NIOPosix
import RedFireGateway
import Synchronization

// MARK: Relay — the floor of a proxy on SwiftNIO

/// `redfire-ws-load relay --port P --upstreams 19001,19002 [--through handlers|task|parse]`: each client
/// connection gets one upstream connection of its own (round robin over the ports on 127.0.0.1) and the
/// bytes are relayed both ways, one event loop, nothing parsed. It is what any proxy on NIO pays before it
/// does anything of its own — the reference `scripts/bench.sh` measures the gateway against:
/// - `handlers`: the bytes pass from one channel's handler to the other's (two handlers, no task);
/// - `task`: a task per connection, isolated to the loop, awaits the client's bytes, writes them on, then
///   awaits the upstream's (two suspensions per request, as a request task awaiting its request and its
///   response).
/// - `parse`: the `task` mode doing the least a gateway does on the bytes (`HTTPTranslation`): each message
///   parsed, the request's route matched, its fields copied on with the proxy's own added.
/// In `task` mode a request and its response are each expected in one read: right for a keep-alive client
/// that sends its next request after the response (wrk) and small responses, as the benchmark's (`parse`
/// reads until the parser says a message ended).
func runRelay(_ options: Options) throws {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let loop = group.next()
    let upstreams = options.upstreams.split(separator: ",").compactMap { Int($0) }
    precondition(!upstreams.isEmpty, "--upstreams PORT[,PORT…]")
    let throughTask = options.through == "task" || options.through == "parse"
    let parsing = options.through == "parse"
    let executor = EventLoopTaskExecutor(loop)
    let accepted = AcceptedCount()
    let server = try ServerBootstrap(group: loop)
        .serverChannelOption(ChannelOptions.backlog, value: 4096)
        .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
        .childChannelInitializer { client in
            let port = upstreams[accepted.count.add(1, ordering: .relaxed).newValue % upstreams.count]
            let clientSide = RelayHandler()
            return client.pipeline.addHandler(clientSide).flatMap {
                ClientBootstrap(group: client.eventLoop).channelInitializer { upstream in
                    let upstreamSide = RelayHandler()
                    clientSide.partner = upstreamSide
                    upstreamSide.partner = clientSide
                    if throughTask {
                        let relay = TaskRelay(client: clientSide, upstream: upstreamSide,
                                              translation: parsing ? HTTPTranslation(upstreamPort: port, allocator: client.allocator) : nil)
                        clientSide.relay = relay
                        upstreamSide.relay = relay
                        Task(executorPreference: executor) { await relay.run() }
                    }
                    return upstream.pipeline.addHandler(upstreamSide)
                }.connect(host: "127.0.0.1", port: port).map { _ in () }
            }
        }
        .bind(host: "127.0.0.1", port: options.port).wait()
    print("relaying 127.0.0.1:\(options.port) to \(upstreams) through \(parsing ? "a task, parsing" : throughTask ? "a task" : "handlers")")
    fflush(nil)
    try server.closeFuture.wait()
}

final class AcceptedCount: Sendable {
    let count = Atomic(0)
}

/// One side of a relayed connection: what it reads goes to its partner's channel (or to the task).
final class RelayHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    var partner: RelayHandler?
    var relay: TaskRelay?
    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    func send(_ buffer: ByteBuffer, flush: Bool) {
        guard let context else { return }
        context.write(wrapOutboundOut(buffer), promise: nil)
        if flush { context.flush() }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        if let relay {
            relay.arrived(buffer, from: self)
        } else {
            partner?.send(buffer, flush: false)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if relay == nil { partner?.context?.flush() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.context?.close(promise: nil)
        relay?.closed()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// The `task` mode's task, run as the gateway runs its request tasks: preferring the loop's
/// `EventLoopTaskExecutor`, so its awaits resume on the loop; its state is touched there only.
final class TaskRelay: @unchecked Sendable {
    let client: RelayHandler
    let upstream: RelayHandler
    private var waiting: UnsafeContinuation<ByteBuffer?, Never>?
    private var waitingFor: RelayHandler?
    private var arrivedBytes: [(from: RelayHandler, buffer: ByteBuffer)] = []
    private var done = false
    private let translation: HTTPTranslation?

    init(client: RelayHandler, upstream: RelayHandler, translation: HTTPTranslation? = nil) {
        self.client = client
        self.upstream = upstream
        self.translation = translation
    }

    /// Called by the handlers, on the loop.
    func arrived(_ buffer: ByteBuffer, from side: RelayHandler) {
        if let waiting, waitingFor === side {
            self.waiting = nil
            waiting.resume(returning: buffer)
        } else {
            arrivedBytes.append((side, buffer))
        }
    }

    func closed() {
        done = true
        waiting?.resume(returning: nil)
        waiting = nil
    }

    private func bytes(from side: RelayHandler) async -> ByteBuffer? {
        if let index = arrivedBytes.firstIndex(where: { $0.from === side }) { return arrivedBytes.remove(at: index).buffer }
        if done { return nil }
        return await withUnsafeContinuation { continuation in
            waiting = continuation
            waitingFor = side
        }
    }

    nonisolated(nonsending) func run() async {
        guard let translation else {
            while let request = await bytes(from: client) {
                upstream.send(request, flush: true)
                guard let response = await bytes(from: upstream) else { return }
                client.send(response, flush: true)
            }
            return
        }
        while true {
            translation.begin(request: true)
            repeat {
                guard let bytes = await bytes(from: client), translation.request(bytes) else { return }
            } while !translation.requestEnded
            guard let out = translation.upstreamRequest() else {
                client.send(translation.notFound(), flush: true)
                continue
            }
            upstream.send(out, flush: true)
            translation.begin(request: false)
            repeat {
                guard let bytes = await bytes(from: upstream), translation.response(bytes) else { return }
            } while !translation.responseEnded
            client.send(translation.clientResponse(), flush: true)
        }
    }
}

/// The `parse` mode's work per request, the least a gateway does on the bytes: each message parsed by the
/// gateway's own parser (llhttp), the request's route matched and its prefix stripped, its fields copied
/// on as bytes (hop-by-hop ones, the framing and `Host` left out) with `Host`, `X-Forwarded-For`,
/// `X-Forwarded-Proto`, a new `X-Request-ID` (a counter in hex) and the body's `Content-Length` added; the response's fields copied back the same way (without `Server` and
/// the framing), with the request ID and a `Content-Length`. No header list, no policy, no telemetry:
/// what the gateway costs above this is its data model and its policies.
final class HTTPTranslation: HTTP1ParserDelegate {
    private static let prefix = Array("/api/v1/trading".utf8)
    private let requestParser = HTTP1Parser(kind: .request, limits: .init(fieldBytes: 8192, headBytes: 81920, fieldCount: 100))
    private let responseParser = HTTP1Parser(kind: .response, limits: .init(fieldBytes: 81920, headBytes: 81920, fieldCount: 65534))
    private let allocator: ByteBufferAllocator
    private let host: String
    private var parsingRequest = true
    private var fields: ByteBuffer
    private var body: ByteBuffer?
    private var method = ""
    private var target = ""
    private var status = 0
    private var requestID: UInt64 = 0x5eed
    private(set) var requestEnded = false
    private(set) var responseEnded = false

    init(upstreamPort: Int, allocator: ByteBufferAllocator) {
        self.allocator = allocator
        host = "127.0.0.1:\(upstreamPort)"
        fields = allocator.buffer(capacity: 1024)
        requestParser.delegate = self
        responseParser.delegate = self
    }

    /// The next message read is a request (or the response to it).
    func begin(request: Bool) {
        parsingRequest = request
        if request { requestEnded = false } else { responseEnded = false }
        fields.clear()
        body = nil
    }

    func request(_ bytes: ByteBuffer) -> Bool { (try? requestParser.feed(bytes)) != nil }
    func response(_ bytes: ByteBuffer) -> Bool { (try? responseParser.feed(bytes)) != nil }

    /// Fields the proxy writes itself (`Host`, the framing) or that end at each hop; `Server` is not passed back.
    func parsedField(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        if ASCII.equalsIgnoringCase(bytes: name, "connection") || ASCII.equalsIgnoringCase(bytes: name, "keep-alive")
            || ASCII.equalsIgnoringCase(bytes: name, "content-length") || ASCII.equalsIgnoringCase(bytes: name, "transfer-encoding")
            || ASCII.equalsIgnoringCase(bytes: name, parsingRequest ? "host" : "server") {
            return
        }
        fields.writeBytes(name)
        fields.writeStaticString(": ")
        fields.writeBytes(value)
        fields.writeStaticString("\r\n")
    }

    func parsedHead(_ head: HTTP1Parser.Head) -> HTTP1Parser.Continuation {
        if parsingRequest {
            method = head.method
            target = head.target
        } else {
            status = head.status
        }
        return .body
    }

    func parsedBody(_ bytes: ByteBuffer) {
        if body == nil { body = bytes } else { body!.writeImmutableBuffer(bytes) }
    }

    func parsedEnd() {
        if parsingRequest { requestEnded = true } else { responseEnded = true }
    }

    /// The request for the instance, or nil when no route matches.
    func upstreamRequest() -> ByteBuffer? {
        guard target.utf8.starts(with: Self.prefix) else { return nil }
        requestID &+= 0x9e37_79b9_7f4a_7c15
        var out = allocator.buffer(capacity: 256 + fields.readableBytes + (body?.readableBytes ?? 0))
        out.writeString(method)
        out.writeStaticString(" ")
        let rest = target.utf8.dropFirst(Self.prefix.count)
        if rest.first != UInt8(ascii: "/") { out.writeStaticString("/") }
        out.writeBytes(rest)
        out.writeStaticString(" HTTP/1.1\r\nHost: ")
        out.writeString(host)
        out.writeStaticString("\r\n")
        out.writeImmutableBuffer(fields)
        out.writeStaticString("X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Request-ID: ")
        writeRequestID(to: &out)
        if let body {
            out.writeStaticString("\r\nContent-Length: ")
            out.writeString(String(body.readableBytes))
        }
        out.writeStaticString("\r\n\r\n")
        if let body { out.writeImmutableBuffer(body) }
        return out
    }

    func clientResponse() -> ByteBuffer {
        var out = allocator.buffer(capacity: 128 + fields.readableBytes + (body?.readableBytes ?? 0))
        out.writeStaticString("HTTP/1.1 ")
        out.writeString(String(status))
        out.writeStaticString(status == 200 ? " OK\r\n" : " \r\n")
        out.writeImmutableBuffer(fields)
        out.writeStaticString("X-Request-ID: ")
        writeRequestID(to: &out)
        out.writeStaticString("\r\nContent-Length: ")
        out.writeString(String(body?.readableBytes ?? 0))
        out.writeStaticString("\r\n\r\n")
        if let body { out.writeImmutableBuffer(body) }
        return out
    }

    func notFound() -> ByteBuffer {
        var out = allocator.buffer(capacity: 64)
        out.writeStaticString("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        return out
    }

    private func writeRequestID(to out: inout ByteBuffer) {
        let id = requestID
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: 16) { bytes in
            for index in 0..<16 {
                let digit = UInt8(truncatingIfNeeded: id >> (UInt64(index) * 4)) & 0xf
                bytes[index] = digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10
            }
            return 16
        }
    }
}
