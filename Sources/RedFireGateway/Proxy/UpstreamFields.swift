import HTTPTypes

/// The fields of an upstream request. For a forwarded request (`HeaderPolicy.upstreamFields`): the
/// client's that the policy passes, in their order, then the gateway's own — `X-Forwarded-For`,
/// `X-Real-IP`, `X-Forwarded-Proto`, `X-Forwarded-Host`, `X-Request-ID`, `X-Gateway-Service`, the verified
/// identity — then `extra`. For a request of the gateway's own (a health check): its fields as they are.
///
/// Kept as the client's fields and the values to add, not as a new field list: the HTTP/1 writer reads
/// them once, straight into the request's bytes (`HTTP1RequestWriter`), so a forwarded request builds no
/// second list and no field object for what the gateway adds. `fields` builds the list for a transport
/// that takes one.
struct UpstreamFields: Sendable {
    /// What the header policy decided for a forwarded request.
    struct Forwarding: Sendable {
        let listed: HeaderPolicy.ConnectionListed
        let identity: UpstreamIdentity
        let filter: ClientHeaderFilter
        let traceFields: HeaderPolicy.TraceFieldPolicy
        let forwardedFor: String?
        let realIP: String?
        let forwardedProto: String
        let forwardedHost: String?
        let requestID: String
    }

    private let client: HTTPFields
    private let forwarding: Forwarding?
    /// Fields after the others (a WebSocket upgrade's `Upgrade` and `Connection`, its `traceparent`).
    var extra: HTTPFields = [:]

    /// A forwarded request's fields.
    init(client: HTTPFields, forwarding: Forwarding) {
        self.client = client
        self.forwarding = forwarding
    }

    /// Fields sent as they are (a request the gateway makes itself).
    init(_ fields: HTTPFields) {
        self.client = fields
        self.forwarding = nil
    }

    /// Each field in order, as name and value.
    func forEach(_ body: (HTTPField.Name, String) -> Void) {
        // By index, each field read where it is (iterating would copy every field out first).
        if let forwarding {
            forEachForwarded(forwarding, body)
        } else {
            for index in client.indices { body(client[index].name, client[index].value) }
        }
        for index in extra.indices { body(extra[index].name, extra[index].value) }
    }

    /// The client's fields the policy passes, then the gateway's own.
    private func forEachForwarded(_ forwarding: Forwarding, _ body: (HTTPField.Name, String) -> Void) {
        let dropCredentials = !forwarding.identity.keepCredentials
        for index in client.indices
        where HeaderPolicy.forwardsToInstance(client[index].name, dropCredentials: dropCredentials, filter: forwarding.filter,
                                              listed: forwarding.listed, traceFields: forwarding.traceFields) {
            body(client[index].name, client[index].value)
        }
        if let forwardedFor = forwarding.forwardedFor { body(.forwardedFor, forwardedFor) }
        if let realIP = forwarding.realIP { body(.realIP, realIP) }
        body(.forwardedProto, forwarding.forwardedProto)
        if let forwardedHost = forwarding.forwardedHost { body(.forwardedHost, forwardedHost) }
        body(.requestID, forwarding.requestID)
        body(.gatewayService, "api-gateway")
        if let user = forwarding.identity.identity {
            body(.userID, user.userID)
            body(.userName, user.username)
            body(.userRoles, user.roles.joined(separator: ","))
        }
        if let token = forwarding.identity.gatewayToken { body(token.name, token.value) }
    }

    /// The fields as a list.
    var fields: HTTPFields {
        var fields = HTTPFields()
        fields.reserveCapacity(client.count + extra.count + 10)
        forEach { name, value in fields.append(HTTPField(name: name, value: value)) }
        return fields
    }
}
