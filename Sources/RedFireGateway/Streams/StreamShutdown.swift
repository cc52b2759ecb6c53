import ServiceLifecycle

/// Ends every open stream as soon as a graceful shutdown begins — WebSockets with close 1001 "going
/// away" to both sides, event streams with the end of their response — so that clients reconnect to
/// another replica at once and the listeners' drain is not held up until `shutdown_grace`.
struct StreamShutdown: Service {
    let streams: OpenStreams

    func run() async throws {
        try? await gracefulShutdown()
        streams.endAll(.shutdown)
    }
}
