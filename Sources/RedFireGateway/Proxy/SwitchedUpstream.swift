import NIOCore
import NIOHTTP1

/// An instance's connection that answered an upgrade with `101 Switching Protocols`: it belongs to the
/// stream from now on and never returns to the pool. If nobody takes it over (the client went away
/// before its 101 was written), it is closed. Confined to its event loop.
final class SwitchedUpstream: @unchecked Sendable {
    let channel: any Channel
    private var taken = false

    init(channel: any Channel) {
        self.channel = channel
    }

    /// Removes the HTTP handlers; `install` adds the new protocol's at the end of the pipeline, and they
    /// get what the instance sent right after its 101 (held, unparsed, by the HTTP decoder) first.
    func takeOver(_ install: (any Channel) throws -> Void) throws {
        channel.eventLoop.preconditionInEventLoop()
        taken = true
        let pipeline = channel.pipeline.syncOperations
        // Its timers stop with it; the request writer goes before anything new is written.
        pipeline.removeHandler(try pipeline.handler(type: UpstreamConnectionHandler.self), promise: nil)
        pipeline.removeHandler(try pipeline.handler(type: UpstreamRequestBytes.self), promise: nil)
        try install(channel)
        pipeline.removeHandler(try pipeline.handler(type: ByteToMessageHandler<HTTPResponseDecoder>.self), promise: nil)
    }

    deinit {
        if !taken { channel.close(promise: nil) }
    }
}
