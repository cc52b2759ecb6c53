import Synchronization

/// Why the gateway ends a stream that is still running.
package enum StreamEnd: Sendable {
    /// Its instance is draining and the drain deadline passed.
    case drainDeadline
    /// The gateway is shutting down.
    case shutdown
    /// The access token that opened it was revoked (logout, refresh-token reuse, the user disabled, a new
    /// password, roles changed).
    case revoked
}

/// A long-lived stream (a relayed WebSocket, an event stream) the gateway can end cleanly: a WebSocket
/// with close 1001 to both sides, an event stream with the end of its response.
protocol EndableStream: AnyObject, Sendable {
    func end(_ reason: StreamEnd)
    /// Whether the authorization it was opened with has been revoked since.
    var authorizationRevoked: Bool { get }
}

/// The open streams of one instance, or of the whole gateway: what a drain deadline or a shutdown ends.
/// Touched when a stream opens or closes, never per message.
final class OpenStreams: Sendable {
    private let streams = Mutex<[ObjectIdentifier: any EndableStream]>([:])

    func add(_ stream: any EndableStream) {
        streams.withLock { $0[ObjectIdentifier(stream)] = stream }
    }

    func remove(_ stream: any EndableStream) {
        _ = streams.withLock { $0.removeValue(forKey: ObjectIdentifier(stream)) }
    }

    var count: Int { streams.withLock { $0.count } }

    /// Ends every stream open now (each ends on its own event loop; they leave this set as they close).
    func endAll(_ reason: StreamEnd) {
        let open = streams.withLock { Array($0.values) }
        for stream in open { stream.end(reason) }
    }

    /// Ends the streams whose authorization was revoked since they opened; returns how many.
    @discardableResult
    func endRevoked() -> Int {
        let open = streams.withLock { Array($0.values) }
        var ended = 0
        for stream in open where stream.authorizationRevoked {
            stream.end(.revoked)
            ended += 1
        }
        return ended
    }
}
