import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// Who made a request, once its access token verified.
package struct Identity: Sendable, Equatable {
    package var userID: String
    package var username: String
    package var roles: [String]
    package var permissions: [String]
    var tokenID: String
    var session: String
    var expiresAt: Date
    /// `iat` of the token (API keys: their creation is not tracked, `.distantFuture` never cut off).
    var issuedAt: Date = .distantFuture
}
