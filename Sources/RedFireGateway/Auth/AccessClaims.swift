import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// The claims of an access token (RFC 7519 names; dates are NumericDate seconds). Verification is done
/// by `AuthService.verifyAccessToken`, which checks the signature with the configured key first.
struct AccessClaims: Codable, Equatable {
    var sub: String
    var name: String
    var roles: [String]
    var permissions: [String]
    var iat: NumericDate
    var nbf: NumericDate
    var exp: NumericDate
    var iss: String
    var aud: Audience
    var jti: String
    var typ: String
    /// The refresh family (session) the token was issued in; logout revokes it.
    var sid: String
}

/// A JWT NumericDate: seconds since the epoch, integral or not (RFC 7519 §2). Written integral, except
/// an `iat` made with millisecond precision (`precise`), which a user cutoff is compared with exactly.
struct NumericDate: Codable, Equatable, Comparable {
    var seconds: Double

    init(_ date: Date) { seconds = date.timeIntervalSince1970.rounded(.down) }
    init(seconds: Double) { self.seconds = seconds }
    /// Milliseconds kept (rounded down).
    init(precise date: Date) { seconds = (date.timeIntervalSince1970 * 1000).rounded(.down) / 1000 }

    init(from decoder: any Decoder) throws {
        seconds = try decoder.singleValueContainer().decode(Double.self)
        guard seconds.isFinite else { throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a number")) }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if seconds == seconds.rounded(.down) {
            try container.encode(Int64(seconds))
        } else {
            try container.encode(seconds)
        }
    }

    var date: Date { Date(timeIntervalSince1970: seconds) }
    static func < (lhs: Self, rhs: Self) -> Bool { lhs.seconds < rhs.seconds }
}

/// `aud`: one string or an array of strings (RFC 7519 §4.1.3).
struct Audience: Codable, Equatable {
    var values: [String]

    init(_ values: [String]) { self.values = values }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let one = try? container.decode(String.self) { values = [one] } else { values = try container.decode([String].self) }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if values.count == 1 { try container.encode(values[0]) } else { try container.encode(values) }
    }
}
