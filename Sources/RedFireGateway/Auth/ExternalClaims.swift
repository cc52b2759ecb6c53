import AsyncHTTPClient
import Crypto
import CryptoExtras
import Foundation
import JWTKit
import Logging
import ServiceLifecycle
import Synchronization

/// The claims read from an external issuer's token; `exp` and `sub` are required.
struct ExternalClaims: Decodable {
    var sub: String
    var exp: NumericDate
    var nbf: NumericDate?
    var iss: String
    var aud: Audience
    var jti: String?
    var name: String?
    var preferredUsername: String?
    var roles: [String]

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    static let rolesClaimKey = CodingUserInfoKey(rawValue: "rolesClaim")!

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyKey.self)
        sub = try container.decode(String.self, forKey: AnyKey(stringValue: "sub"))
        exp = try container.decode(NumericDate.self, forKey: AnyKey(stringValue: "exp"))
        nbf = try container.decodeIfPresent(NumericDate.self, forKey: AnyKey(stringValue: "nbf"))
        iss = try container.decode(String.self, forKey: AnyKey(stringValue: "iss"))
        aud = try container.decode(Audience.self, forKey: AnyKey(stringValue: "aud"))
        jti = try container.decodeIfPresent(String.self, forKey: AnyKey(stringValue: "jti"))
        name = try? container.decodeIfPresent(String.self, forKey: AnyKey(stringValue: "name"))
        preferredUsername = try? container.decodeIfPresent(String.self, forKey: AnyKey(stringValue: "preferred_username"))
        let rolesKey = AnyKey(stringValue: decoder.userInfo[Self.rolesClaimKey] as? String ?? "roles")
        if let list = try? container.decode([String].self, forKey: rolesKey) {
            roles = list
        } else if let text = try? container.decode(String.self, forKey: rolesKey) {
            roles = text.split(separator: " ").map(String.init)
        } else {
            roles = []
        }
    }
}
