import Foundation
import HTTPTypes
import Yams

extension AuthConfig {
    /// `auth:` — decoded in place over the defaults; every problem is reported with its key path.
    mutating func load(_ auth: ConfigObject, reader: ConfigReader, mergeSlashes: Bool) {
        if let database = auth.string("database") {
            if database.isEmpty { reader.report(auth.childPath("database"), auth.node("database"), "must not be empty") } else { self.database = database }
        }
        if let cost = auth.int("bcrypt_cost", in: 4...31) { self.bcryptCost = cost }
        if let lifetime = auth.duration("max_token_lifetime", atLeast: .seconds(60)) { self.maxTokenLifetime = lifetime }
        if let secret = auth.string("jwt_secret") {
            if secret.utf8.count >= 32 { self.jwtSecret = secret }
            else { reader.report(auth.childPath("jwt_secret"), auth.node("jwt_secret"), "must be at least 32 bytes (use ${JWT_SECRET} and a long random value)") }
        }
        if let file = auth.string("jwt_secret_file") {
            if let data = FileManager.default.contents(atPath: reader.resolve(file)), let text = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines) {
                if text.utf8.count >= 32 { self.jwtSecret = text }
                else { reader.report(auth.childPath("jwt_secret_file"), auth.node("jwt_secret_file"), "the secret in \(file) must be at least 32 bytes") }
            } else {
                reader.report(auth.childPath("jwt_secret_file"), auth.node("jwt_secret_file"), "cannot read \(file)")
            }
        }
        if let kid = auth.string("key_id") {
            if GatewayConfig.isValidName(kid) { self.keyID = kid } else { reader.report(auth.childPath("key_id"), auth.node("key_id"), "use letters, digits, '_', '.' and '-'") }
        }
        if let spec = auth.object("signing_key") {
            if let key = JWTKeyConfig.decode(spec, reader: reader, requirePrivate: true) { self.signingKey = key }
        }
        if let keys = auth.list("verification_keys") {
            for (path, node) in keys {
                guard let spec = reader.object(node, path: path) else { continue }
                if let key = JWTKeyConfig.decode(spec, reader: reader, requirePrivate: false) {
                    if self.verificationKeys.contains(where: { $0.keyID == key.keyID }) || self.signingKey?.keyID == key.keyID {
                        reader.report(spec.childPath("key_id"), spec.node("key_id"), "key id \(key.keyID) is used by another key")
                    }
                    self.verificationKeys.append(key)
                }
            }
        }
        if let issuers = auth.list("external_issuers") {
            for (path, node) in issuers {
                guard let spec = reader.object(node, path: path) else { continue }
                defer { spec.finish() }
                let issuer = spec.require(spec.string("issuer"), "issuer")
                let url = spec.require(spec.string("jwks_url"), "jwks_url")
                guard let issuer, let url else { continue }
                var external = ExternalIssuerConfig(issuer: issuer, jwksURL: url)
                external.allowHTTPLoopback = spec.bool("allow_http_loopback") ?? false
                guard external.jwksURLIsAcceptable else {
                    reader.report(spec.childPath("jwks_url"), spec.node("jwks_url"),
                                  "must be an https:// URL (http:// only on a loopback address, with allow_http_loopback: true)")
                    continue
                }
                external.audience = spec.string("audience")
                if let claim = spec.string("roles_claim"), !claim.isEmpty { external.rolesClaim = claim }
                if let interval = spec.duration("refresh_interval", atLeast: .seconds(10)) { external.refreshInterval = interval }
                if let interval = spec.duration("min_refetch_interval", atLeast: .seconds(1)) { external.minRefetchInterval = interval }
                if self.externalIssuers.contains(where: { $0.issuer == issuer }) {
                    reader.report(spec.childPath("issuer"), spec.node("issuer"), "issuer \(issuer) is listed twice")
                }
                self.externalIssuers.append(external)
            }
        }
        if let issuer = auth.string("issuer"), !issuer.isEmpty { self.issuer = issuer }
        if let audience = auth.string("audience"), !audience.isEmpty { self.audience = audience }
        if let ttl = auth.duration("access_token_ttl", atLeast: .seconds(10)) { self.accessTokenTTL = ttl }
        if let ttl = auth.duration("refresh_token_ttl", atLeast: .seconds(60)) { self.refreshTokenTTL = ttl }
        if let leeway = auth.duration("leeway") { self.leeway = leeway }
        if let registration = auth.bool("registration") { self.registration = registration }
        if let roles = auth.stringList("default_roles") { self.defaultRoles = roles }
        if let failures = auth.int("max_login_failures", in: 1...1000) { self.maxLoginFailures = failures }
        if let failures = auth.int("max_credential_failures", in: 1...100_000) { self.maxCredentialFailures = failures }
        if let lockout = auth.duration("lockout", atLeast: .milliseconds(10)) { self.lockout = lockout }
        if let lockout = auth.duration("max_lockout", atLeast: .seconds(1)) { self.maxLockout = lockout }
        if let paths = auth.stringList("public_paths") {
            for path in paths {
                let normalized = try? RequestTarget.parse(path, mergeSlashes: mergeSlashes)
                if normalized?.path != path || normalized?.query != nil {
                    reader.report(auth.childPath("public_paths"), auth.node("public_paths"),
                                  "\"\(path)\" is not a normalized path (starts with /, no query, escapes, dot segments or repeated slashes)")
                }
            }
            self.publicPaths = paths
        }
        if let file = auth.string("gateway_token_key_file") {
            if file.isEmpty { reader.report(auth.childPath("gateway_token_key_file"), auth.node("gateway_token_key_file"), "must not be empty") }
            else { self.gatewayTokenKeyFile = file }
        }
        if let ttl = auth.duration("gateway_token_ttl", atLeast: .seconds(5)) {
            if ttl <= .seconds(3600) { self.gatewayTokenTTL = ttl }
            else { reader.report(auth.childPath("gateway_token_ttl"), auth.node("gateway_token_ttl"), "must be at most 1h") }
        }
        if let roles = auth.object("roles") {
            for role in roles.keys {
                guard let permissions = roles.stringList(role) else { continue }
                if !GatewayConfig.isValidName(role) {
                    reader.report(roles.childPath(role), roles.node(role), "role names use letters, digits, '_', '.' and '-' only")
                }
                for permission in permissions where !GatewayConfig.isValidPermission(permission) {
                    reader.report(roles.childPath(role), roles.node(role), "\"\(permission)\" is not a permission: use AREA:ACTION, e.g. trading:read")
                }
                self.roles[role] = permissions
            }
            roles.finish()
        }
        auth.finish()
        for role in self.defaultRoles where self.roles[role] == nil {
            reader.report("auth.default_roles", nil, "no role \(role) in auth.roles")
        }
    }
}

extension JWTKeyConfig {
    /// `{algorithm, key_id, key_file | secret | secret_file}`: the material is read and parsed now, so a
    /// bad key is a configuration problem with its key path, not a failure at start.
    static func decode(_ spec: ConfigObject, reader: ConfigReader, requirePrivate: Bool) -> JWTKeyConfig? {
        defer { spec.finish() }
        let choices = JWSAlgorithm.allCases.map(\.rawValue)
        let algorithmText = spec.require(spec.string("algorithm", oneOf: choices), "algorithm")
        let keyID = spec.require(spec.string("key_id"), "key_id")
        let keyFile = spec.string("key_file")
        let secret = spec.string("secret")
        let secretFile = spec.string("secret_file")
        guard let algorithmText, let algorithm = JWSAlgorithm(rawValue: algorithmText), let keyID else { return nil }
        guard GatewayConfig.isValidName(keyID) else {
            reader.report(spec.childPath("key_id"), spec.node("key_id"), "use letters, digits, '_', '.' and '-'")
            return nil
        }
        var material: String?
        if algorithm == .hs256 {
            if let secret { material = secret }
            else if let secretFile {
                material = FileManager.default.contents(atPath: reader.resolve(secretFile)).flatMap { String(data: $0, encoding: .utf8) }?
                    .trimmingCharacters(in: .whitespacesAndNewlines)
                if material == nil { reader.report(spec.childPath("secret_file"), spec.node("secret_file"), "cannot read \(secretFile)"); return nil }
            } else {
                reader.report(spec.path, nil, "HS256 needs secret or secret_file")
                return nil
            }
        } else {
            guard let keyFile else { reader.report(spec.path, nil, "\(algorithm.rawValue) needs key_file (a PEM key)"); return nil }
            material = FileManager.default.contents(atPath: reader.resolve(keyFile)).flatMap { String(data: $0, encoding: .utf8) }
            if material == nil { reader.report(spec.childPath("key_file"), spec.node("key_file"), "cannot read \(keyFile)"); return nil }
        }
        let key = JWTKeyConfig(keyID: keyID, algorithm: algorithm, material: material ?? "")
        do {
            if requirePrivate { _ = try key.signingKey() } else { _ = try key.verificationKey() }
        } catch {
            let field = algorithm == .hs256 ? (secret != nil ? "secret" : "secret_file") : "key_file"
            reader.report(spec.childPath(field), spec.node(field), error.description)
            return nil
        }
        return key
    }
}
