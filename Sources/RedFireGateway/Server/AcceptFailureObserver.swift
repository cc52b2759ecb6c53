#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import Synchronization

/// First in the listening channel's pipeline: when `accept` fails for want of descriptors, gives the
/// process its reserve of descriptors (`AcceptPressure`), stops accepting, and tries again once the
/// reserve could be taken back (checked every `retryInterval`), while the connections already open go on
/// being served; the first accept that succeeds ends the episode.
///
/// NIO's own `AcceptBackoffHandler` does not help here: when the very first `accept` of a readable
/// event fails, the channel still counts a read as pending and keeps the listening socket in the
/// poller, so a level-triggered epoll reports it readable again at once — the event loop spins on
/// failing accepts at 100 % CPU (measured: ~4,000 failed `accept4` calls per second). Turning `autoRead`
/// off removes the socket from the poller; turning it on again re-registers it.
final class AcceptFailureObserver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = any Channel
    let pressure: AcceptPressure
    private var paused = false

    /// How long accepting pauses after a failure: each retry costs one failed `accept`.
    static let retryInterval: TimeAmount = .milliseconds(100)

    init(pressure: AcceptPressure) {
        self.pressure = pressure
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        pressure.accepted()
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let error = error as? IOError, error.errnoCode == EMFILE || error.errnoCode == ENFILE else {
            context.fireErrorCaught(error)
            return
        }
        pressure.acceptFailed(error)
        pressure.releaseReserve()
        guard !paused, let options = context.channel.syncOptions else { return }
        paused = true
        try? options.setOption(ChannelOptions.autoRead, value: false)
        resumeWhenReserved(context: context)
    }

    /// Accepting resumes once the reserve is whole again (connections have closed); until then it stays
    /// paused, checking every `retryInterval`.
    private func resumeWhenReserved(context: ChannelHandlerContext) {
        context.eventLoop.assumeIsolated().scheduleTask(in: Self.retryInterval) { [self] in
            guard pressure.refillReserve() else { return resumeWhenReserved(context: context) }
            paused = false
            try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
        }
    }
}
