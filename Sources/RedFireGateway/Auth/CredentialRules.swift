import Crypto
import Foundation
import HummingbirdBcrypt
import NIOPosix

/// The rules every credential store keeps, written once: what a username, password and email must
/// be, how tokens and keys are made and hashed, and what an API key may be bound to.
package enum CredentialRules {
    /// Usernames: 3–32 characters of letters, digits, `_`, `.`, `-`, starting with a letter or digit.
    package static func usernameProblems(_ username: String) -> [FieldProblem] {
        var problems: [FieldProblem] = []
        if !(3...32).contains(username.count) { problems.append(.init(field: "username", message: "must be 3 to 32 characters")) }
        let allowed = username.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "_.-".unicodeScalars.contains($0)) }
        if !allowed { problems.append(.init(field: "username", message: "may use letters, digits, '_', '.' and '-' only")) }
        if let first = username.unicodeScalars.first, !CharacterSet.alphanumerics.contains(first) {
            problems.append(.init(field: "username", message: "must start with a letter or digit"))
        }
        return problems
    }

    /// Passwords: 10–128 characters, not containing the username, not one repeated character (NIST SP 800-63B:
    /// length over composition rules).
    package static func passwordProblems(_ password: String, username: String) -> [FieldProblem] {
        var problems: [FieldProblem] = []
        if password.count < 10 { problems.append(.init(field: "password", message: "must be at least 10 characters")) }
        if password.count > 128 { problems.append(.init(field: "password", message: "must be at most 128 characters")) }
        if username.count >= 3 && password.lowercased().contains(username.lowercased()) {
            problems.append(.init(field: "password", message: "must not contain the username"))
        }
        if let first = password.first, password.allSatisfy({ $0 == first }), !password.isEmpty {
            problems.append(.init(field: "password", message: "must not repeat one character"))
        }
        return problems
    }

    package static func emailProblems(_ email: String?) -> [FieldProblem] {
        guard let email else { return [] }
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard email.count <= 254, parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), !email.contains(where: \.isWhitespace) else {
            return [.init(field: "email", message: "is not an email address")]
        }
        return []
    }

    /// Throws every problem of a new user's input at once.
    static func checkNewUser(username: String, password: String, email: String?) throws {
        let problems = usernameProblems(username) + passwordProblems(password, username: username) + emailProblems(email)
        guard problems.isEmpty else { throw UserStoreError.invalid(problems) }
    }

    static func checkPassword(_ password: String, username: String) throws {
        let problems = passwordProblems(password, username: username)
        guard problems.isEmpty else { throw UserStoreError.invalid(problems) }
    }

    /// Lower-case hex SHA-256 of a token (API keys are hashed on every request: no per-byte formatting).
    static func tokenHash(_ token: String) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        hex.reserveCapacity(64)
        for byte in SHA256.hash(data: Array(token.utf8)) {
            hex.append(digits[Int(byte >> 4)])
            hex.append(digits[Int(byte & 15)])
        }
        return String(decoding: hex, as: UTF8.self)
    }

    /// A refresh token: 256 random bits, base64url.
    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return Base64URL.encode((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    /// Checks what a new API key is bound to (exactly one user or one service account; permissions
    /// only for a service account).
    static func checkAPIKey(username: String?, serviceAccount: String?, permissions: [String]) throws {
        guard (username == nil) != (serviceAccount == nil) else { throw APIKeyError.invalid("a key belongs to exactly one user or one service account") }
        if let serviceAccount, !GatewayConfig.isValidName(serviceAccount) {
            throw APIKeyError.invalid("service account names use letters, digits, '_', '.' and '-'")
        }
        if let bad = permissions.first(where: { !GatewayConfig.isValidPermission($0) }) {
            throw APIKeyError.invalid("\"\(bad)\" is not a permission: use AREA:ACTION")
        }
        if username != nil && !permissions.isEmpty { throw APIKeyError.invalid("a user's key has the user's permissions; --permission is for service accounts") }
    }

    /// A new API key `rf_ID_SECRET`: a 12-hex-digit id to find it by, 256 random bits of secret.
    static func newAPIKey() -> (id: String, key: String) {
        var generator = SystemRandomNumberGenerator()
        let digits = Array("0123456789abcdef".utf8)
        let id = String(decoding: (0..<12).map { _ in digits[Int.random(in: 0..<16, using: &generator)] }, as: UTF8.self)
        let secret = Base64URL.encode((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
        return (id, "rf_\(id)_\(secret)")
    }
}

/// bcrypt on NIO's blocking thread pool, never on an event loop or the concurrency pool's few threads.
struct PasswordHasher: Sendable {
    let cost: Int
    /// A real hash of a random password, verified against when a username does not exist, so that an
    /// unknown user costs the same time as a wrong password.
    private let decoyHash: String

    init(cost: Int) {
        self.cost = cost
        decoyHash = Bcrypt.hash(UUID().uuidString, cost: UInt8(cost))
    }

    func hash(_ password: String) async throws -> String {
        let cost = UInt8(cost)
        return try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(password, cost: cost) }
    }

    func verify(_ password: String, hash: String) async throws -> Bool {
        try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: hash) }
    }

    /// The same work as a verification, for a username that does not exist.
    func verifyDecoy(_ password: String) async throws {
        _ = try await verify(password, hash: decoyHash)
    }

    /// A login's decision on what the store found for the username (the user and their hash, or nil):
    /// the user when the password is theirs and they are not disabled. An unknown username costs one
    /// verification too, so it cannot be told apart by timing.
    func authenticate(_ password: String, found: (user: User, hash: String)?) async throws -> User? {
        guard let (user, hash) = found else {
            try await verifyDecoy(password)
            return nil
        }
        guard try await verify(password, hash: hash), !user.disabled else { return nil }
        return user
    }
}
