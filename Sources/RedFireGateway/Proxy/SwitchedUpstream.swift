import NIOCore

/// An instance's connection that answered an upgrade with `101 Switching Protocols`: it belongs to the
/// stream from now on and never returns to the pool. If nobody takes it over (the client went away
/// before its 101 was written), it is closed. Confined to its event loop.
final class SwitchedUpstream: @unchecked Sendable {
    let channel: any Channel
    private var taken = false

    init(channel: any Channel) {
        self.channel = channel
    }

    /// Removes the HTTP handler; `install` adds the new protocol's at the end of the pipeline, and they
    /// get what the instance sent right after its 101 (held, unparsed, by the HTTP handler) first.
    func takeOver(_ install: (any Channel) throws -> Void) throws {
        channel.eventLoop.preconditionInEventLoop()
        taken = true
        let pipeline = channel.pipeline.syncOperations
        let handler = try pipeline.handler(type: UpstreamConnectionHandler.self)
        try install(channel)
        // Its timers stop as it leaves; what it held goes to the new protocol's handlers.
        handler.handOver(context: try pipeline.context(handler: handler))
    }

    deinit {
        if !taken { channel.close(promise: nil) }
    }
}
