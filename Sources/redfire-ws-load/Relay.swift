import NIOCore
import NIOPosix
import RedFireGateway
import Synchronization

// MARK: Relay — the floor of a proxy on SwiftNIO

/// `redfire-ws-load relay --port P --upstreams 19001,19002 [--through handlers|task]`: each client
/// connection gets one upstream connection of its own (round robin over the ports on 127.0.0.1) and the
/// bytes are relayed both ways, one event loop, nothing parsed. It is what any proxy on NIO pays before it
/// does anything of its own — the reference `scripts/bench.sh` measures the gateway against:
/// - `handlers`: the bytes pass from one channel's handler to the other's (two handlers, no task);
/// - `task`: a task per connection, isolated to the loop, awaits the client's bytes, writes them on, then
///   awaits the upstream's (two suspensions per request, as a request task awaiting its request and its
///   response).
/// In `task` mode a request and its response are each expected in one read: right for a keep-alive client
/// that sends its next request after the response (wrk) and small responses, as the benchmark's.
func runRelay(_ options: Options) throws {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let loop = group.next()
    let upstreams = options.upstreams.split(separator: ",").compactMap { Int($0) }
    precondition(!upstreams.isEmpty, "--upstreams PORT[,PORT…]")
    let throughTask = options.through == "task"
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
                        let relay = TaskRelay(client: clientSide, upstream: upstreamSide)
                        clientSide.relay = relay
                        upstreamSide.relay = relay
                        Task(executorPreference: executor) { await relay.run() }
                    }
                    return upstream.pipeline.addHandler(upstreamSide)
                }.connect(host: "127.0.0.1", port: port).map { _ in () }
            }
        }
        .bind(host: "127.0.0.1", port: options.port).wait()
    print("relaying 127.0.0.1:\(options.port) to \(upstreams) through \(throughTask ? "a task" : "handlers")")
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

    init(client: RelayHandler, upstream: RelayHandler) {
        self.client = client
        self.upstream = upstream
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
        while let request = await bytes(from: client) {
            upstream.send(request, flush: true)
            guard let response = await bytes(from: upstream) else { return }
            client.send(response, flush: true)
        }
    }
}
