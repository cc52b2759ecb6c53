import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `/api/v1/auth/*`, answered by the gateway itself: register, login, refresh, logout, me — on a
/// Hummingbird router like the admin API (the OpenAPI test reads the operations from it).
struct AuthEndpoints: Sendable {
    let auth: AuthService
    let registrationOpen: Bool
    private let responder: RouterResponder<GatewayRequestContext>
    /// The methods each path accepts, read from the router once: a known path with another method is
    /// 405 with `Allow`, an unknown one 404 `route_not_found`.
    private let methods: [String: Set<HTTPRequest.Method>]

    static let prefix = "/api/v1/auth/"

    init(auth: AuthService, registrationOpen: Bool) {
        self.auth = auth
        self.registrationOpen = registrationOpen
        // The handlers capture a copy without the router (it is what is being built).
        let endpoints = Handlers(auth: auth, registrationOpen: registrationOpen)
        let router = Self.router(endpoints)
        var methods: [String: Set<HTTPRequest.Method>] = [:]
        for route in router.routes { methods["/" + route.path.description.split(separator: "/").joined(separator: "/"), default: []].insert(route.method) }
        self.methods = methods
        self.responder = router.buildResponder()
    }

    /// The routes, as served.
    static func router(_ endpoints: Handlers) -> Router<GatewayRequestContext> {
        let router = Router(context: GatewayRequestContext.self)
        router.post("/api/v1/auth/register") { request, context in try await endpoints.register(request, requestID: context.requestID) }
        router.post("/api/v1/auth/login") { request, context in
            // Failed logins are counted per resolved client (behind a trusted proxy, not per proxy).
            try await endpoints.login(request, requestID: context.requestID, clientAddress: context.clientAddress)
        }
        router.post("/api/v1/auth/refresh") { request, context in try await endpoints.refresh(request, requestID: context.requestID) }
        router.post("/api/v1/auth/logout") { request, context in try await endpoints.logout(request, requestID: context.requestID) }
        router.get("/api/v1/auth/me") { request, context in try await endpoints.me(request, requestID: context.requestID) }
        return router
    }

    /// - Parameter target: the normalized request target; the router sees this path, not the raw one.
    func respond(to request: Request, target: RequestTarget, context: GatewayRequestContext) async -> Response {
        let requestID = context.requestID
        guard let allowed = methods[target.path] else { return ErrorEnvelope.response(.routeNotFound, requestID: requestID) }
        var head = request.head
        head.path = target.upstreamTarget
        // HEAD is GET without the body (the connection writes none).
        if head.method == .head, allowed.contains(.get) { head.method = .get }
        guard allowed.contains(head.method) else {
            let allow = allowed.contains(.get) ? "GET, HEAD" : allowed.map(\.rawValue).sorted().joined(separator: ", ")
            return ErrorEnvelope.response(.methodNotAllowed, requestID: requestID, headers: [.allow: allow])
        }
        do {
            return try await responder.respond(to: Request(head: head, body: request.body), context: context)
        } catch let error as Handlers.BodyError {
            return ErrorEnvelope.response(.invalidRequest.with(message: error.message), requestID: requestID)
        } catch is CredentialStoreUnavailable {
            // Nothing is issued that is not stored: no login, refresh or logout while the store is away.
            return ErrorEnvelope.response(.authUnavailable.with(message: "The user store cannot be reached. Retry after the time in Retry-After."),
                                          requestID: requestID, headers: [.retryAfter: "5"])
        } catch {
            return ErrorEnvelope.response(.internalError, requestID: requestID)
        }
    }
}

extension AuthEndpoints {
    /// What each operation does.
    struct Handlers: Sendable {
        let auth: AuthService
        let registrationOpen: Bool

        struct Credentials: Decodable {
            var username: String
            var password: String
            var email: String?
        }

        struct RefreshBody: Decodable {
            var refreshToken: String
        }

        struct UserBody: Encodable {
            var id: Int64
            var username: String
            var email: String?
            var roles: [String]
            var createdAt: Date
        }

        struct MeBody: Encodable {
            var id: String
            var username: String
            var roles: [String]
            var permissions: [String]
        }

        struct FieldBody: Encodable {
            var field: String
            var message: String
        }

        static let encoder = APIJSON.encoder
        static let decoder = APIJSON.decoder

        struct BodyError: Error {
            var message: String
        }

        func decode<T: Decodable>(_ type: T.Type, _ request: Request, example: String) async throws -> T {
            guard let body = try? await request.body.collect(upTo: 16 * 1024) else { throw BodyError(message: "The body must be at most 16 KB of JSON.") }
            do {
                return try Self.decoder.decode(T.self, from: body)
            } catch {
                throw BodyError(message: "The body must be JSON: \(example).")
            }
        }

        func json(_ status: HTTPResponse.Status, _ value: some Encodable, requestID: String) throws -> Response {
            let data = try Self.encoder.encode(value)
            return Response(status: status, headers: [.contentType: "application/json", .requestID: requestID, .cacheControl: "no-store"],
                            body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }

        /// The identity in the request's `Authorization: Bearer` access token, if valid.
        func identity(_ request: Request) -> Identity? {
            Authenticator.bearerToken(request.headers).flatMap(auth.verifyAccessToken)
        }

        func unauthorized(_ requestID: String) -> Response {
            ErrorEnvelope.response(.invalidToken, requestID: requestID, headers: [.wwwAuthenticate: Authenticator.challenge(Authenticator.gatewayRealm, error: "invalid_token")])
        }

        func register(_ request: Request, requestID: String) async throws -> Response {
            guard registrationOpen else { return ErrorEnvelope.response(.registrationClosed, requestID: requestID) }
            let body = try await decode(Credentials.self, request, example: #"{"username": "...", "password": "...", "email": "..." (optional)}"#)
            do {
                let user = try await auth.register(username: body.username, password: body.password, email: body.email)
                return try json(.created, UserBody(id: user.id, username: user.username, email: user.email, roles: user.roles, createdAt: user.createdAt),
                                requestID: requestID)
            } catch UserStoreError.usernameTaken {
                return ErrorEnvelope.response(.usernameTaken, requestID: requestID)
            } catch UserStoreError.invalid(let problems) {
                let details = try Self.encoder.encode(problems.map { FieldBody(field: $0.field, message: $0.message) })
                return ErrorEnvelope.response(.validationFailed, requestID: requestID, details: ByteBuffer(bytes: details))
            }
        }

        func login(_ request: Request, requestID: String, clientAddress: String?) async throws -> Response {
            let body = try await decode(Credentials.self, request, example: #"{"username": "...", "password": "..."}"#)
            switch try await auth.login(username: body.username, password: body.password, clientAddress: clientAddress) {
            case .success(let tokens):
                return try json(.ok, tokens, requestID: requestID)
            case .refused:
                return ErrorEnvelope.response(.invalidCredentials, requestID: requestID)
            case .throttled(let seconds):
                return ErrorEnvelope.response(.tooManyAttempts, requestID: requestID, headers: [.retryAfter: String(seconds)])
            }
        }

        func refresh(_ request: Request, requestID: String) async throws -> Response {
            let body = try await decode(RefreshBody.self, request, example: #"{"refresh_token": "..."}"#)
            guard let tokens = try await auth.refresh(body.refreshToken) else { return unauthorized(requestID) }
            return try json(.ok, tokens, requestID: requestID)
        }

        func logout(_ request: Request, requestID: String) async throws -> Response {
            guard let identity = identity(request) else { return unauthorized(requestID) }
            try await auth.logout(identity)
            return Response(status: .noContent, headers: [.requestID: requestID, .cacheControl: "no-store"])
        }

        func me(_ request: Request, requestID: String) async throws -> Response {
            guard let identity = identity(request) else { return unauthorized(requestID) }
            return try json(.ok, MeBody(id: identity.userID, username: identity.username, roles: identity.roles, permissions: identity.permissions),
                            requestID: requestID)
        }
    }
}
