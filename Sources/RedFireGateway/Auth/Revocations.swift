import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// What has been revoked before it expired, checked for every token on every request (cached or not):
/// one token (`jti`), a login session (`sid`: logout, refresh-token reuse), or every token of a user
/// issued before a cutoff (disabled, new password, roles changed). Entries are forgotten once no
/// token they cover can still be valid.
struct Revocations {
    var tokens: [String: Date] = [:]
    var sessions: [String: Date] = [:]
    /// User id → (cutoff, forgotten after).
    var users: [String: (cutoff: Date, until: Date)] = [:]

    func refuses(_ identity: Identity) -> Bool {
        if !tokens.isEmpty, tokens[identity.tokenID] != nil { return true }
        if !sessions.isEmpty, !identity.session.isEmpty, sessions[identity.session] != nil { return true }
        if !users.isEmpty, let cutoff = users[identity.userID]?.cutoff, identity.issuedAt.timeIntervalSince1970 < Self.second(after: cutoff) { return true }
        return false
    }

    /// `iat` has whole seconds: a cutoff covers every token of its second, and a token issued after it
    /// carries the next second at least (`AuthService.issue`).
    static func second(after cutoff: Date) -> Double {
        (cutoff.timeIntervalSince1970).rounded(.up)
    }

    mutating func forgetExpired(now: Date) {
        tokens = tokens.filter { $0.value > now }
        sessions = sessions.filter { $0.value > now }
        users = users.filter { $0.value.until > now }
    }
}
