import HTTPTypes
import Hummingbird
import NIOCore

/// Every error the gateway itself answers with, defined once: code, status and the message a client
/// sees. The list is documented in `docs/errors.md`; codes are stable, messages may improve.
package struct GatewayError: Sendable, Hashable {
    package let code: String
    package let status: HTTPResponse.Status
    package let message: String

    package static let routeNotFound = Self(code: "route_not_found", status: .notFound, message: "No route matches this path.")
    package static let methodNotAllowed = Self(code: "method_not_allowed", status: .methodNotAllowed, message: "This method is not allowed on this route.")
    package static let upstreamUnavailable = Self(code: "upstream_unavailable", status: .serviceUnavailable, message: "No healthy instance of the service is available. Retry later.")
    package static let upstreamTimeout = Self(code: "upstream_timeout", status: .gatewayTimeout, message: "The service did not answer in time.")
    package static let badGateway = Self(code: "bad_gateway", status: .badGateway, message: "The service could not be reached or gave an invalid response.")
    package static let notReady = Self(code: "not_ready", status: .serviceUnavailable, message: "No route has a healthy instance yet.")
    package static let unauthorized = Self(code: "unauthorized", status: .unauthorized, message: "Credentials are missing or invalid.")
    package static let adminDisabled = Self(code: "admin_disabled", status: .forbidden, message: "The admin API is disabled: set admin.token or auth in the configuration.")
    package static let forbidden = Self(code: "forbidden", status: .forbidden, message: "The credentials lack a permission this needs.")
    package static let notFound = Self(code: "not_found", status: .notFound, message: "No such admin resource.")
    package static let serviceNotFound = Self(code: "service_not_found", status: .notFound, message: "No such service.")
    package static let instanceNotFound = Self(code: "instance_not_found", status: .notFound, message: "No such instance.")
    package static let conflict = Self(code: "conflict", status: .conflict, message: "The request conflicts with the current state.")
    package static let invalidRequest = Self(code: "invalid_request", status: .badRequest, message: "The request is malformed.")
    package static let invalidConfig = Self(code: "invalid_config", status: .unprocessableContent, message: "The configuration file was refused; the running configuration is unchanged.")
    package static let invalidCredentials = Self(code: "invalid_credentials", status: .unauthorized, message: "The username or password is wrong.")
    package static let invalidToken = Self(code: "invalid_token", status: .unauthorized, message: "The token is missing, malformed, expired or revoked.")
    package static let tooManyAttempts = Self(code: "too_many_attempts", status: .tooManyRequests, message: "Too many failed logins. Retry after the time in Retry-After.")
    package static let usernameTaken = Self(code: "username_taken", status: .conflict, message: "This username is taken.")
    package static let registrationClosed = Self(code: "registration_closed", status: .forbidden, message: "Registration is closed on this gateway.")
    package static let validationFailed = Self(code: "validation_failed", status: .badRequest, message: "Some fields are invalid; see details.")
    package static let invalidAPIKey = Self(code: "invalid_api_key", status: .unauthorized, message: "The API key is unknown, revoked or expired.")
    package static let authUnavailable = Self(code: "auth_unavailable", status: .serviceUnavailable,
                                             message: "The token's identity provider cannot be reached to verify it. Retry later.")
    package static let rateLimited = Self(code: "rate_limited", status: .tooManyRequests, message: "Too many requests. Retry after the time in Retry-After.")
    package static let rateLimitUnavailable = Self(code: "rate_limit_unavailable", status: .serviceUnavailable,
                                                  message: "The cluster-wide rate limit cannot be decided now. Retry after the time in Retry-After.")
    package static let serviceBusy = Self(code: "service_busy", status: .serviceUnavailable,
                                         message: "The service has too many requests in flight. Retry after the time in Retry-After.")
    package static let uriTooLong = Self(code: "uri_too_long", status: .uriTooLong, message: "The request target is longer than this gateway accepts.")
    package static let headersTooLarge = Self(code: "headers_too_large", status: .requestHeaderFieldsTooLarge,
                                             message: "The request has more or larger header fields than this gateway accepts.")
    package static let bodyTooLarge = Self(code: "body_too_large", status: .contentTooLarge, message: "The request body is larger than this route accepts.")
    package static let invalidPath = Self(code: "invalid_path", status: .badRequest, message: "The request path is not allowed.")
    package static let malformedRequest = Self(code: "malformed_request", status: .badRequest,
                                              message: "The request is not valid HTTP/1.1 (framing, header syntax or Host); the connection is closed.")
    package static let requestTimeout = Self(code: "request_timeout", status: .requestTimeout, message: "The request header section did not arrive in time.")
    package static let misdirectedRequest = Self(code: "misdirected_request", status: .misdirectedRequest,
                                                message: "This gateway does not serve the host named in the request target.")
    package static let notImplemented = Self(code: "not_implemented", status: .notImplemented,
                                            message: "The gateway does not support this method or transfer coding.")
    /// The client closed its connection before the response was complete (nginx's 499). Written to a
    /// client that only half-closed; otherwise seen in the access log only.
    package static let clientClosedRequest = Self(code: "client_closed_request", status: HTTPResponse.Status(code: 499, reasonPhrase: "Client Closed Request"),
                                                 message: "The client closed the connection before the response was complete.")
    /// The instance's response broke off after its head (the client's connection is closed). Recorded in
    /// the access log and telemetry; never sent, since the client already has the head.
    package static let upstreamTruncated = Self(code: "upstream_truncated", status: .badGateway, message: "The service ended its response early.")
    /// A WebSocket upgrade on a route without `websocket`.
    package static let websocketNotAllowed = Self(code: "websocket_not_allowed", status: .badRequest,
                                                 message: "This route does not accept WebSocket upgrades.")
    /// A WebSocket upgrade that RFC 6455 §4.2.1 does not allow (method, version, missing or bad key).
    package static let invalidUpgrade = Self(code: "invalid_upgrade", status: .badRequest, message: "The WebSocket upgrade request is malformed.")
    /// A WebSocket version other than 13 (RFC 6455 §4.4): 426 with `Sec-WebSocket-Version: 13`.
    package static let unsupportedWebSocketVersion = Self(code: "unsupported_websocket_version", status: .upgradeRequired,
                                                         message: "This gateway speaks WebSocket version 13 only.")
    /// A browser page from an origin the route does not allow tried to open a WebSocket.
    package static let originNotAllowed = Self(code: "origin_not_allowed", status: .forbidden,
                                              message: "WebSocket connections from this origin are not allowed.")
    package static let internalError = Self(code: "internal_error", status: .internalServerError, message: "The gateway failed to handle this request.")

    package static let all: [GatewayError] = [
        .routeNotFound, .methodNotAllowed, .upstreamUnavailable, .upstreamTimeout, .badGateway, .notReady,
        .unauthorized, .adminDisabled, .notFound, .serviceNotFound, .instanceNotFound, .conflict, .invalidRequest, .invalidConfig, .internalError,
        .forbidden, .invalidCredentials, .invalidToken, .tooManyAttempts, .usernameTaken, .registrationClosed, .validationFailed,
        .invalidPath, .invalidAPIKey, .authUnavailable, .rateLimited, .rateLimitUnavailable, .serviceBusy, .uriTooLong, .headersTooLarge, .bodyTooLarge,
        .malformedRequest, .requestTimeout, .misdirectedRequest, .notImplemented, .clientClosedRequest, .upstreamTruncated,
        .websocketNotAllowed, .invalidUpgrade, .unsupportedWebSocketVersion, .originNotAllowed,
    ]

    /// The same code with a more specific message (admin API answers name what was not found).
    func with(message: String) -> GatewayError {
        GatewayError(code: code, status: status, message: message)
    }
}
