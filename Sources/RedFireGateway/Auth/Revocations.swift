import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// What has been revoked before it expired, checked for every token on every request (cached or not):
/// one token (`jti`), a login session (`sid`: logout, refresh-token reuse), or every token of a user
/// issued up to a cutoff (disabled, new password, roles changed) — compared to the millisecond: the
/// gateway's `iat` keeps milliseconds, and a token issued after a cutoff is dated after it
/// (`AuthService.issue`), even on a node whose clock is a little behind the store's. Entries are forgotten once no
/// token they cover can still be valid.
struct Revocations {
    var tokens: [String: Date] = [:]
    var sessions: [String: Date] = [:]
    /// User id → (cutoff, forgotten after).
    var users: [String: (cutoff: Date, until: Date)] = [:]

    func refuses(_ identity: Identity) -> Bool {
        if !tokens.isEmpty, tokens[identity.tokenID] != nil { return true }
        if !sessions.isEmpty, !identity.session.isEmpty, sessions[identity.session] != nil { return true }
        if !users.isEmpty, let cutoff = users[identity.userID]?.cutoff, identity.issuedAt <= cutoff { return true }
        return false
    }

    mutating func forgetExpired(now: Date) {
        tokens = tokens.filter { $0.value > now }
        sessions = sessions.filter { $0.value > now }
        users = users.filter { $0.value.until > now }
    }
}
