/// One thing wrong with a configuration file, located by its key path and, where known, its line.
public struct ConfigProblem: Sendable, Hashable, CustomStringConvertible {
    /// Dotted key path, e.g. `services.user_trading.health_check.interval` or `routes[2].service`.
    public var path: String
    /// 1-based line in the file, when the YAML parser reported one.
    public var line: Int?
    /// What is wrong, in words an operator can act on.
    public var message: String

    public init(path: String, line: Int?, message: String) {
        self.path = path
        self.line = line
        self.message = message
    }

    public var description: String {
        let location = path.isEmpty ? "(top level)" : path
        if let line { return "\(location) (line \(line)): \(message)" }
        return "\(location): \(message)"
    }
}

/// A configuration that cannot be used, with every problem found in it (not just the first).
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var source: String
    public var problems: [ConfigProblem]

    public init(source: String, problems: [ConfigProblem]) {
        self.source = source
        self.problems = problems
    }

    public var description: String {
        var text = "\(source): \(problems.count) problem\(problems.count == 1 ? "" : "s")"
        for problem in problems { text += "\n  - \(problem)" }
        return text
    }
}
