import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Authenticates admin requests and turns every failure into the error envelope. Accepted: the
/// configured `admin.token` (an operator's break-glass credential), or a user's access token whose
/// permissions include `gateway:admin` (or `gateway:*`); a valid token without it is 403.
struct AdminResponder: Sendable {
    let router: RouterResponder<GatewayRequestContext>
    let registry: ServiceRegistry
    /// `admin.token`, an access token or an API key; guessing any of them is limited per client like
    /// invalid credentials on routes.
    let authenticator: Authenticator

    static let permission = "gateway:admin"

    /// - Parameter target: the normalized request target; the router sees this path, not the raw one.
    func respond(to request: Request, context: GatewayRequestContext, target: RequestTarget) async -> Response {
        var context = context
        var head = request.head
        head.path = target.upstreamTarget
        let request = Request(head: head, body: request.body)
        // Read per request, so a reload can rotate the token.
        let adminToken = registry.state.config.adminToken
        guard adminToken != nil || authenticator.auth != nil else { return ErrorEnvelope.response(.adminDisabled, requestID: context.requestID) }
        switch await authenticator.authenticate(request.headers, client: context.clientAddress ?? context.clientIP, adminToken: adminToken) {
        case .success(.adminToken):
            context.actor = "admin-api"
        case .success(.identity(let identity)):
            guard identity.holds(Self.permission) else {
                let refusal = authenticator.lacks(Self.permission)
                return ErrorEnvelope.response(refusal.error, requestID: context.requestID, headers: refusal.headers)
            }
            context.actor = "admin-api:\(identity.username)"
        case .failure(let refusal):
            return ErrorEnvelope.response(refusal.error, requestID: context.requestID, headers: refusal.headers)
        }
        do {
            let response = try await router.respond(to: request, context: context)
            // The router answers unknown paths with a bare 404; give it the envelope.
            if response.status == .notFound && response.headers[.contentType] == nil {
                return ErrorEnvelope.response(.notFound, requestID: context.requestID)
            }
            return response
        } catch let error as ControlError {
            return error.response(requestID: context.requestID)
        } catch let error as HTTPError where error.status == .notFound {
            return ErrorEnvelope.response(.notFound, requestID: context.requestID)
        } catch {
            return ErrorEnvelope.response(.internalError, requestID: context.requestID)
        }
    }
}
