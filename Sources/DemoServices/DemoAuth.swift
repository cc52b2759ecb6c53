import Foundation
import RedFireGateway

/// A user the demo creates at start, with a fresh random password (printed in the banner).
public struct DemoUser: Sendable {
    public let username: String
    public let password: String
    public let role: String
}

/// Authentication for the demo: route permissions per service, a trader and an admin role, and the
/// two users the traffic generator logs in as.
public enum DemoAuth {
    /// The roles of the demo: a trader reads everything and places orders; an admin does everything,
    /// the admin API included.
    public static let roles: [String: [String]] = [
        "trader": DemoServiceKind.allCases.map { "\($0.permissionArea):read" } + ["trading:write"],
        "admin": ["gateway:admin"] + DemoServiceKind.allCases.map { "\($0.permissionArea):*" },
    ]

    /// `demo-admin` and `demo-trader`, with random passwords.
    public static func users() -> [DemoUser] {
        [DemoUser(username: "demo-admin", password: randomPassword(), role: "admin"),
         DemoUser(username: "demo-trader", password: randomPassword(), role: "trader")]
    }

    static func randomPassword() -> String {
        let alphabet = Array("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<16).map { _ in alphabet[Int(generator.next(upperBound: UInt(alphabet.count)))] })
    }

    /// Turns authentication on: every demo route requires `AREA:read` for reads and `AREA:write` for
    /// writes; users live in `dataDirectory`.
    public static func configure(_ config: inout GatewayConfig, secret: String, dataDirectory: String) {
        config.dataDirectory = dataDirectory
        config.auth.jwtSecret = secret
        config.auth.bcryptCost = 10
        config.auth.roles = roles
        config.auth.registration = true
        for index in config.routes.indices {
            guard let kind = DemoServiceKind.allCases.first(where: { $0.rawValue == config.routes[index].service }) else { continue }
            config.routes[index].permissions = RoutePermissions(read: "\(kind.permissionArea):read", write: "\(kind.permissionArea):write")
        }
    }

    /// Creates (or resets the password and role of) each user in the configuration's user store.
    public static func provision(_ users: [DemoUser], config: GatewayConfig) async throws {
        let store = try UserStore(path: config.auth.databasePath(dataDirectory: config.dataDirectory), bcryptCost: config.auth.bcryptCost)
        for user in users {
            if try await store.user(named: user.username) == nil {
                _ = try await store.addUser(username: user.username, password: user.password, roles: [user.role])
            } else {
                try await store.setPassword(user.username, user.password)
                try await store.grant(user.username, role: user.role)
            }
        }
    }
}

extension DemoServiceKind {
    /// The `AREA` of the permissions guarding the service's route (`trading:read`, `vnpy:write`).
    public var permissionArea: String {
        switch self {
        case .userTrading: return "trading"
        case .vnpyCore: return "vnpy"
        case .strategyData: return "strategy"
        case .gatewayAdapter: return "adapter"
        case .monitor: return "monitor"
        }
    }
}
