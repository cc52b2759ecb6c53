import Atomics

/// One instance as a balancer sees it: its runtime facts plus the weight and address from the snapshot.
/// A class: a request holds the one it was given as one reference, not as a copy of each of its strings.
package final class PoolMember: Sendable {
    package let runtime: InstanceRuntime
    package let url: UpstreamURL
    package let weight: Int
    package let version: String?
    package let metadata: [String: String]
    /// `scheme://host:port`, built once per snapshot rather than per request.
    let baseURL: String
    /// `host:port`, the `Host` the instance receives.
    let authority: String

    init(runtime: InstanceRuntime, url: UpstreamURL, weight: Int, version: String?, metadata: [String: String]) {
        self.runtime = runtime
        self.url = url
        self.weight = weight
        self.version = version
        self.metadata = metadata
        self.baseURL = url.description
        self.authority = url.authority
    }

    var id: String { runtime.id }
}

/// Chooses one member of a pool for a request. A balancer is built for one fixed list of eligible
/// members (a snapshot) and is rebuilt whenever that list changes, so any precomputation (schedules,
/// rings) happens off the request path.
protocol Balancer: Sendable {
    /// Picks a member, skipping those in `excluding` (instances already tried by this request).
    /// `hashKey` is only computed for balancers that want one.
    func pick(hashKey: String?, excluding: [InstanceRuntime]) -> PoolMember?
}

extension Balancer {
    func pick() -> PoolMember? { pick(hashKey: nil, excluding: []) }
}

func isExcluded(_ member: PoolMember, _ excluding: [InstanceRuntime]) -> Bool {
    guard !excluding.isEmpty else { return false }
    return excluding.contains { $0 === member.runtime }
}
