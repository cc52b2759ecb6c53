import NIOCore

/// One value per event loop of a group, made when the group is known and looked up by loop without a
/// lock (the map never changes). Each value is meant to be touched on its own loop only.
struct PerEventLoop<Value: Sendable>: Sendable {
    private let byLoop: [ObjectIdentifier: Value]

    init(_ group: any EventLoopGroup, make: (any EventLoop) -> Value) {
        var byLoop: [ObjectIdentifier: Value] = [:]
        for loop in group.makeIterator() { byLoop[ObjectIdentifier(loop)] = make(loop) }
        self.byLoop = byLoop
    }

    /// The value of `loop`; nil for a loop of another group.
    subscript(loop: any EventLoop) -> Value? {
        byLoop[ObjectIdentifier(loop)]
    }

    var values: Dictionary<ObjectIdentifier, Value>.Values { byLoop.values }
}
