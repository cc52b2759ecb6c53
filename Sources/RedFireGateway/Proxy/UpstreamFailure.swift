import HTTPTypes
import NIOCore

/// How a forwarding attempt failed, in the terms that decide status, retry and ejection.
enum UpstreamFailure: Error, Sendable, Equatable {
    /// No connection could be made: nothing was sent.
    case connectFailed
    /// Connecting took longer than the service's `timeouts.connect`: nothing was sent.
    case connectTimeout
    /// The response headers did not arrive within `timeouts.response_headers`.
    case responseTimeout
    /// The connection broke or the instance answered with something that is not HTTP.
    case connectionFailed
    /// The TLS handshake with an `https://` instance failed — most often its certificate was not
    /// verified (unknown authority, wrong name, expired): nothing was sent.
    case tlsFailed

    var nothingSent: Bool { self == .connectFailed || self == .connectTimeout || self == .tlsFailed }
}
