import HTTPTypes
import NIOHTTP1

/// What the gateway tells a service about the caller.
struct UpstreamIdentity {
    /// The verified caller; nil on public paths and without auth.
    var identity: Identity?
    /// `X-Gateway-Token` for the target service.
    var gatewayToken: HTTPField?
    /// Pass the client's `Authorization` and `X-API-Key` on (the route opts in, or auth is off).
    var keepCredentials: Bool

    /// Without auth the gateway authenticates no one and passes credentials through.
    static let transparent = UpstreamIdentity(identity: nil, gatewayToken: nil, keepCredentials: true)
}
