import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `/api/v1/auth/*`, answered by the gateway itself: register, login, refresh, logout, me.
struct AuthEndpoints: Sendable {
    let auth: AuthService
    let registrationOpen: Bool

    static let prefix = "/api/v1/auth/"
    /// Every operation served here, as `METHOD /path` (the OpenAPI test compares it with the document).
    static let operations = ["POST /api/v1/auth/register", "POST /api/v1/auth/login", "POST /api/v1/auth/refresh",
                             "POST /api/v1/auth/logout", "GET /api/v1/auth/me"]

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

    func respond(to request: Request, path: Substring, requestID: String, clientAddress: String?) async -> Response {
        let action = path.dropFirst(Self.prefix.count)
        let method = request.method
        let expected: HTTPRequest.Method
        switch action {
        case "register", "login", "refresh", "logout": expected = .post
        case "me": expected = .get
        default: return ErrorEnvelope.response(.routeNotFound, requestID: requestID)
        }
        guard method == expected || (expected == .get && method == .head) else {
            return ErrorEnvelope.response(.methodNotAllowed, requestID: requestID, headers: [.allow: expected == .get ? "GET, HEAD" : "POST"])
        }
        do {
            switch action {
            case "register": return try await register(request, requestID: requestID)
            case "login": return try await login(request, requestID: requestID, clientAddress: clientAddress)
            case "refresh": return try await refresh(request, requestID: requestID)
            case "logout": return try await logout(request, requestID: requestID)
            default: return try await me(request, requestID: requestID)
            }
        } catch let error as BodyError {
            return ErrorEnvelope.response(.invalidRequest.with(message: error.message), requestID: requestID)
        } catch {
            return ErrorEnvelope.response(.internalError, requestID: requestID)
        }
    }

    struct BodyError: Error {
        var message: String
    }

    private func decode<T: Decodable>(_ type: T.Type, _ request: Request, example: String) async throws -> T {
        guard let body = try? await request.body.collect(upTo: 16 * 1024) else { throw BodyError(message: "The body must be at most 16 KB of JSON.") }
        do {
            return try Self.decoder.decode(T.self, from: body)
        } catch {
            throw BodyError(message: "The body must be JSON: \(example).")
        }
    }

    private func json(_ status: HTTPResponse.Status, _ value: some Encodable, requestID: String) throws -> Response {
        let data = try Self.encoder.encode(value)
        return Response(status: status, headers: [.contentType: "application/json", .requestID: requestID, .cacheControl: "no-store"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The identity in the request's `Authorization: Bearer` access token, if valid.
    func identity(_ request: Request) -> Identity? {
        Authorizer.bearerToken(request.headers).flatMap(auth.verifyAccessToken)
    }

    private func unauthorized(_ requestID: String) -> Response {
        ErrorEnvelope.response(.invalidToken, requestID: requestID, headers: [.wwwAuthenticate: Authorizer.invalidTokenChallenge])
    }

    private func register(_ request: Request, requestID: String) async throws -> Response {
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

    private func login(_ request: Request, requestID: String, clientAddress: String?) async throws -> Response {
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

    private func refresh(_ request: Request, requestID: String) async throws -> Response {
        let body = try await decode(RefreshBody.self, request, example: #"{"refresh_token": "..."}"#)
        guard let tokens = try await auth.refresh(body.refreshToken) else { return unauthorized(requestID) }
        return try json(.ok, tokens, requestID: requestID)
    }

    private func logout(_ request: Request, requestID: String) async throws -> Response {
        guard let identity = identity(request) else { return unauthorized(requestID) }
        try await auth.logout(identity)
        return Response(status: .noContent, headers: [.requestID: requestID, .cacheControl: "no-store"])
    }

    private func me(_ request: Request, requestID: String) async throws -> Response {
        guard let identity = identity(request) else { return unauthorized(requestID) }
        return try json(.ok, MeBody(id: identity.userID, username: identity.username, roles: identity.roles, permissions: identity.permissions),
                        requestID: requestID)
    }
}
