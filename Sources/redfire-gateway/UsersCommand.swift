import ArgumentParser
import Foundation
import RedFireGateway

/// `redfire-gateway users …`: the user store named by a configuration (`auth.database`).
struct UsersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "users",
        abstract: "Manage the gateway's users: add, list, disable, enable, passwd, grant, revoke.",
        subcommands: [Add.self, List.self, Disable.self, Enable.self, Passwd.self, Grant.self, Revoke.self]
    )

    struct StoreOptions: ParsableArguments {
        @Option(name: .long, help: "The gateway's configuration (its auth.database, or its cluster.store in cluster mode, is the user store).")
        var config: String

        /// The store the configuration names: the cluster's PostgreSQL when `cluster.store` is set (every
        /// node sees a change within the propagation time), else the SQLite file.
        func open() async throws -> (any CredentialStore, GatewayConfig) {
            let gatewayConfig: GatewayConfig
            do {
                gatewayConfig = try GatewayConfig.load(path: config)
            } catch let error as ConfigError {
                printError(error.description)
                throw Exit.invalidConfig
            }
            if let url = gatewayConfig.cluster.store {
                do {
                    return (try await PostgresCredentialStore.open(url: url, bcryptCost: gatewayConfig.auth.bcryptCost), gatewayConfig)
                } catch {
                    printError("error: cannot open the user store in the cluster store \(url): \(error)")
                    throw Exit.startFailed
                }
            }
            let path = gatewayConfig.auth.databasePath(dataDirectory: gatewayConfig.dataDirectory)
            do {
                return (try UserStore(path: path, bcryptCost: gatewayConfig.auth.bcryptCost), gatewayConfig)
            } catch {
                printError("error: cannot open the user store \(path): \(error)")
                throw Exit.startFailed
            }
        }
    }

    struct PasswordOptions: ParsableArguments {
        @Flag(name: .long, help: "Read the password from the first line of standard input (for scripts).")
        var passwordStdin = false

        /// The new password: from standard input, or typed twice at a terminal prompt without echo.
        func read(for username: String) throws -> String {
            if passwordStdin || isatty(STDIN_FILENO) == 0 {
                guard let line = Swift.readLine(strippingNewline: true), !line.isEmpty else {
                    throw ValidationError("no password on standard input")
                }
                return line
            }
            guard let first = getpass("Password for \(username): ").map({ String(cString: $0) }),
                  let second = getpass("Again: ").map({ String(cString: $0) }) else { throw ValidationError("no password given") }
            guard first == second else { throw ValidationError("the two passwords differ") }
            return first
        }
    }

    static func checkRole(_ role: String, _ config: GatewayConfig) throws {
        guard config.auth.roles[role] != nil else {
            let known = config.auth.roles.keys.sorted()
            printError("error: no role \(role) in auth.roles" + (known.isEmpty ? " (none are configured)" : "; roles: \(known.joined(separator: ", "))"))
            throw ExitCode.failure
        }
    }

    static func report(_ error: any Error) -> any Error {
        if let error = error as? UserStoreError {
            printError("error: \(error.description)")
            return ExitCode.failure
        }
        if let error = error as? CredentialStoreUnavailable {
            printError("error: \(error.description)")
            return ExitCode.failure
        }
        return error
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a user (the password is asked for, or read with --password-stdin).")
        @OptionGroup var store: StoreOptions
        @OptionGroup var password: PasswordOptions
        @Argument(help: "Username: 3-32 letters, digits, '_', '.', '-'.") var username: String
        @Option(name: .long, help: "A role from auth.roles (repeatable).") var role: [String] = []
        @Option(name: .long, help: "Email address.") var email: String?

        func run() async throws {
            let (users, config) = try await store.open()
            for role in role { try UsersCommand.checkRole(role, config) }
            let secret = try password.read(for: username)
            do {
                let user = try await users.addUser(username: username, password: secret, email: email, roles: role)
                print("added \(user.username) (id \(user.id))" + (user.roles.isEmpty ? "" : " with roles \(user.roles.joined(separator: ", "))"))
            } catch { throw UsersCommand.report(error) }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List users with their roles and permissions.")
        @OptionGroup var store: StoreOptions

        func run() async throws {
            let (users, config) = try await store.open()
            let all = try await users.users()
            print("ID  USERNAME             STATE     ROLES                PERMISSIONS")
            for user in all {
                let roles = user.roles.joined(separator: ",")
                print("\(String(user.id).padding(toLength: 3, withPad: " ", startingAt: 0)) \(user.username.padding(toLength: 20, withPad: " ", startingAt: 0)) "
                      + "\((user.disabled ? "disabled" : "active").padding(toLength: 9, withPad: " ", startingAt: 0)) "
                      + "\(roles.padding(toLength: 20, withPad: " ", startingAt: 0)) \(config.auth.permissions(of: user.roles).joined(separator: ","))")
            }
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable a user: they can no longer log in.")
        @OptionGroup var store: StoreOptions
        @Argument var username: String

        func run() async throws {
            do { try await store.open().0.setDisabled(username, true) } catch { throw UsersCommand.report(error) }
            print("disabled \(username)")
        }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a disabled user.")
        @OptionGroup var store: StoreOptions
        @Argument var username: String

        func run() async throws {
            do { try await store.open().0.setDisabled(username, false) } catch { throw UsersCommand.report(error) }
            print("enabled \(username)")
        }
    }

    struct Passwd: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a user's password.")
        @OptionGroup var store: StoreOptions
        @OptionGroup var password: PasswordOptions
        @Argument var username: String

        func run() async throws {
            let (users, _) = try await store.open()
            let secret = try password.read(for: username)
            do { try await users.setPassword(username, secret) } catch { throw UsersCommand.report(error) }
            print("password of \(username) changed")
        }
    }

    struct Grant: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Give a user a role.")
        @OptionGroup var store: StoreOptions
        @Argument var username: String
        @Argument var role: String

        func run() async throws {
            let (users, config) = try await store.open()
            try UsersCommand.checkRole(role, config)
            do { try await users.grant(username, role: role) } catch { throw UsersCommand.report(error) }
            print("\(username) now has role \(role)")
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Take a role from a user.")
        @OptionGroup var store: StoreOptions
        @Argument var username: String
        @Argument var role: String

        func run() async throws {
            do { try await store.open().0.revoke(username, role: role) } catch { throw UsersCommand.report(error) }
            print("\(username) no longer has role \(role)")
        }
    }
}
