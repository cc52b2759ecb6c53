import Foundation
import Yams

/// Walks a composed YAML document with key paths, collecting every problem instead of stopping at the
/// first: a typo in one key must not hide an error in another. Unknown keys are problems too, because a
/// misspelt key would otherwise silently leave a setting at its default.
final class ConfigReader {
    private(set) var problems: [ConfigProblem] = []
    let environment: [String: String]
    /// Relative file paths in the configuration are relative to this (the configuration file's directory).
    let baseDirectory: String?

    init(environment: [String: String], baseDirectory: String? = nil) {
        self.environment = environment
        self.baseDirectory = baseDirectory
    }

    /// `file` resolved against the configuration file's directory when relative.
    func resolve(_ file: String) -> String {
        guard let baseDirectory, !file.hasPrefix("/") else { return file }
        return ((baseDirectory.isEmpty ? "." : baseDirectory) as NSString).appendingPathComponent(file)
    }

    func report(_ path: String, _ node: Node?, _ message: String) {
        problems.append(ConfigProblem(path: path, line: node?.mark.map { $0.line }, message: message))
    }

    /// Opens `node` as a mapping, or reports that it is not one.
    func object(_ node: Node, path: String) -> ConfigObject? {
        guard case .mapping(let mapping) = node else {
            report(path, node, "expected a mapping of keys to values")
            return nil
        }
        return ConfigObject(reader: self, path: path, node: node, mapping: mapping)
    }

    /// The text of a scalar with `${VAR}` / `${VAR:-default}` substituted from the environment.
    func scalarText(_ node: Node, path: String) -> String? {
        guard case .scalar(let scalar) = node else {
            report(path, node, "expected a single value, found a \(Self.kind(of: node))")
            return nil
        }
        return substitute(scalar.string, path: path, node: node)
    }

    private func substitute(_ text: String, path: String, node: Node) -> String? {
        guard text.contains("${") else { return text }
        var output = ""
        var rest = Substring(text)
        while let start = rest.range(of: "${") {
            output += rest[rest.startIndex..<start.lowerBound]
            if output.hasSuffix("$") {  // `$${` is a literal `${`
                output.removeLast()
                output += "${"
                rest = rest[start.upperBound...]
                continue
            }
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                report(path, node, "unterminated ${...} reference")
                return nil
            }
            let reference = rest[start.upperBound..<end]
            let name: Substring
            var fallback: Substring?
            if let separator = reference.range(of: ":-") {
                name = reference[reference.startIndex..<separator.lowerBound]
                fallback = reference[separator.upperBound...]
            } else {
                name = reference
            }
            if let value = environment[String(name)], !value.isEmpty {
                output += value
            } else if let fallback {
                output += fallback
            } else {
                report(path, node, "environment variable \(name) is not set")
                return nil
            }
            rest = rest[rest.index(after: end)...]
        }
        output += rest
        return output
    }

    static func kind(of node: Node) -> String {
        switch node {
        case .scalar: return "single value"
        case .mapping: return "mapping"
        case .sequence: return "list"
        case .alias: return "alias"
        }
    }

    static func join(_ path: String, _ key: String) -> String {
        path.isEmpty ? key : "\(path).\(key)"
    }
}

/// One YAML mapping being read. Each key read is marked; `finish()` reports the keys nobody asked for.
final class ConfigObject {
    let reader: ConfigReader
    let path: String
    let node: Node
    private var entries: [(key: String, value: Node, keyNode: Node)] = []
    private var used: Set<String> = []

    init(reader: ConfigReader, path: String, node: Node, mapping: Node.Mapping) {
        self.reader = reader
        self.path = path
        self.node = node
        var seen: Set<String> = []
        for (keyNode, value) in mapping {
            guard case .scalar(let scalar) = keyNode else {
                reader.report(path, keyNode, "keys must be plain text")
                continue
            }
            if !seen.insert(scalar.string).inserted {
                reader.report(ConfigReader.join(path, scalar.string), keyNode, "duplicate key")
                continue
            }
            entries.append((scalar.string, value, keyNode))
        }
    }

    var keys: [String] { entries.map(\.key) }

    func childPath(_ key: String) -> String { ConfigReader.join(path, key) }

    /// The raw node for `key`, marking it as read. A YAML `null` counts as absent.
    func node(_ key: String) -> Node? {
        used.insert(key)
        guard let entry = entries.first(where: { $0.key == key }) else { return nil }
        if case .scalar(let scalar) = entry.value, (scalar.string == "~" || scalar.string == "null" || scalar.string.isEmpty) && scalar.style == .plain {
            return nil
        }
        return entry.value
    }

    func has(_ key: String) -> Bool { entries.contains { $0.key == key } }

    func string(_ key: String) -> String? {
        guard let node = node(key) else { return nil }
        return reader.scalarText(node, path: childPath(key))
    }

    func string(_ key: String, oneOf choices: [String]) -> String? {
        guard let value = string(key) else { return nil }
        guard choices.contains(value) else {
            reader.report(childPath(key), node(key), "must be one of \(choices.joined(separator: ", ")), not \"\(value)\"")
            return nil
        }
        return value
    }

    func int(_ key: String, in range: ClosedRange<Int>) -> Int? {
        guard let text = string(key) else { return nil }
        guard let value = Int(text) else {
            reader.report(childPath(key), node(key), "expected a whole number, found \"\(text)\"")
            return nil
        }
        guard range.contains(value) else {
            reader.report(childPath(key), node(key), "must be between \(range.lowerBound) and \(range.upperBound), found \(value)")
            return nil
        }
        return value
    }

    func double(_ key: String, in range: ClosedRange<Double>) -> Double? {
        guard let text = string(key) else { return nil }
        var cleaned = text
        var scale = 1.0
        if cleaned.hasSuffix("%") { cleaned.removeLast(); scale = 0.01 }
        guard let raw = Double(cleaned) else {
            reader.report(childPath(key), node(key), "expected a number, found \"\(text)\"")
            return nil
        }
        let value = raw * scale
        guard range.contains(value) else {
            reader.report(childPath(key), node(key), "must be between \(range.lowerBound) and \(range.upperBound), found \(text)")
            return nil
        }
        return value
    }

    func bool(_ key: String) -> Bool? {
        guard let text = string(key) else { return nil }
        switch text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            reader.report(childPath(key), node(key), "expected true or false, found \"\(text)\"")
            return nil
        }
    }

    func duration(_ key: String, atLeast minimum: Duration = .zero) -> Duration? {
        guard let text = string(key) else { return nil }
        guard let value = ConfigDuration.parse(text) else {
            reader.report(childPath(key), node(key), "invalid duration \"\(text)\" (use a number with a unit: 250ms, 5s, 2m, 1h)")
            return nil
        }
        guard value >= minimum else {
            reader.report(childPath(key), node(key), "must be at least \(ConfigDuration.format(minimum))")
            return nil
        }
        return value
    }

    func stringList(_ key: String) -> [String]? {
        guard let node = node(key) else { return nil }
        let path = childPath(key)
        if case .scalar = node {
            return reader.scalarText(node, path: path).map { [$0] }
        }
        guard case .sequence(let sequence) = node else {
            reader.report(path, node, "expected a list")
            return nil
        }
        var values: [String] = []
        for (index, element) in sequence.enumerated() {
            if let text = reader.scalarText(element, path: "\(path)[\(index)]") { values.append(text) }
        }
        return values
    }

    func object(_ key: String) -> ConfigObject? {
        guard let node = node(key) else { return nil }
        return reader.object(node, path: childPath(key))
    }

    /// Elements of a list with their paths (`routes[0]`, `routes[1]`, ...).
    func list(_ key: String) -> [(path: String, node: Node)]? {
        guard let node = node(key) else { return nil }
        guard case .sequence(let sequence) = node else {
            reader.report(childPath(key), node, "expected a list")
            return nil
        }
        return sequence.enumerated().map { ("\(childPath(key))[\($0.offset)]", $0.element) }
    }

    /// Entries of a mapping whose keys are names chosen by the user (e.g. service names).
    func namedEntries(_ key: String) -> [(name: String, path: String, node: Node)]? {
        guard let object = object(key) else { return nil }
        let result = object.entries.map { ($0.key, object.childPath($0.key), $0.value) }
        object.used = Set(object.entries.map(\.key))
        return result
    }

    func require<T>(_ value: T?, _ key: String) -> T? {
        if value == nil, !has(key) {
            reader.report(childPath(key), node, "is required")
        }
        return value
    }

    /// Reports every key present in the mapping that no reader asked for.
    func finish() {
        for entry in entries where !used.contains(entry.key) {
            let known = used.sorted()
            var message = "unknown key"
            if let suggestion = known.min(by: { editDistance($0, entry.key) < editDistance($1, entry.key) }),
               editDistance(suggestion, entry.key) <= 2 {
                message += " (did you mean \"\(suggestion)\"?)"
            }
            reader.report(childPath(entry.key), entry.keyNode, message)
        }
    }
}

/// Levenshtein distance: how "did you mean" suggestions (configuration keys, theme roles) are chosen.
package func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return previous[b.count]
}
