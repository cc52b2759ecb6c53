import ArgumentParser
import Foundation
import RedFireGateway

/// `redfire-gateway keys …`: API keys in the user store named by a configuration.
struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Manage API keys (X-API-Key): create, list, revoke. A running gateway picks changes up within seconds.",
        subcommands: [Create.self, List.self, Revoke.self]
    )

    static func report(_ error: any Error) -> any Error {
        if let error = error as? APIKeyError {
            printError("error: \(error.description)")
            return ExitCode.failure
        }
        return UsersCommand.report(error)
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a key for a user (acting with the user's roles) or a service account (with its own permissions). The key is printed once.")
        @OptionGroup var store: UsersCommand.StoreOptions
        @Option(name: .long, help: "The user the key acts as.") var user: String?
        @Option(name: .long, help: "A service account name the key acts as.") var serviceAccount: String?
        @Option(name: .long, help: "A permission of the service account, AREA:ACTION (repeatable).") var permission: [String] = []
        @Option(name: .long, help: "A label for listings.") var name: String?
        @Option(name: .long, help: "Lifetime, e.g. 720h; default no expiry.") var expiresIn: String?

        func validate() throws {
            guard (user == nil) != (serviceAccount == nil) else { throw ValidationError("give exactly one of --user and --service-account") }
            if let expiresIn, ConfigDuration.parse(expiresIn) == nil { throw ValidationError("--expires-in must be a duration such as 720h") }
        }

        func run() async throws {
            let (users, _) = try await store.open()
            let expiresAt = expiresIn.flatMap(ConfigDuration.parse).map { Date().addingTimeInterval(Double($0.components.seconds)) }
            do {
                let (key, record) = try await users.createAPIKey(name: name ?? (user ?? serviceAccount ?? "key"), username: user,
                                                                 serviceAccount: serviceAccount, permissions: permission, expiresAt: expiresAt)
                print(key)
                printError("created key \(record.id) for \(record.owner)"
                           + (record.expiresAt.map { ", expires \(ISO8601DateFormatter().string(from: $0))" } ?? "")
                           + ". It is shown only this once: store it now. Send it as X-API-Key.")
            } catch { throw KeysCommand.report(error) }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys (never the keys themselves).")
        @OptionGroup var store: UsersCommand.StoreOptions

        func run() async throws {
            let (users, _) = try await store.open()
            let formatter = ISO8601DateFormatter()
            let now = Date()
            print("ID            NAME                 OWNER                     STATE     EXPIRES               PERMISSIONS")
            for key in try await users.apiKeys() {
                let state = key.revokedAt != nil ? "revoked" : (key.expiresAt.map { $0 <= now } ?? false) ? "expired" : "active"
                func pad(_ text: String, _ width: Int) -> String { text.padding(toLength: max(width, text.count), withPad: " ", startingAt: 0) }
                print("\(pad(key.id, 13)) \(pad(key.name, 20)) \(pad(key.owner, 25)) \(pad(state, 9)) "
                      + "\(pad(key.expiresAt.map { formatter.string(from: $0) } ?? "never", 21)) "
                      + (key.username != nil ? "(the user's roles)" : key.permissions.joined(separator: ",")))
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key by its id (the part after rf_).")
        @OptionGroup var store: UsersCommand.StoreOptions
        @Argument var id: String

        func run() async throws {
            do { try await store.open().0.revokeAPIKey(id) } catch { throw KeysCommand.report(error) }
            print("revoked \(id)")
        }
    }
}
