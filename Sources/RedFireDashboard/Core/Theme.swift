import Foundation
import RedFireGateway
import Yams

/// A named part of the screen a theme gives a style to. `themes/README.md` lists every role.
public enum ThemeRole: String, CaseIterable, Sendable {
    case text
    case dim
    case header
    case banner
    case bannerCritical = "banner_critical"
    case border
    case title
    case titleFocused = "title_focused"
    case columnHeader = "column_header"
    case selected
    case service
    case healthy
    case unhealthy
    case unknown
    case draining
    case drained
    case ejected
    case lease
    case warning
    case error
    case histogramBar = "histogram_bar"
    case histogramMarker = "histogram_marker"
    case sparkline
    case rateLimited = "rate_limited"
    case footer
    case footerKey = "footer_key"
    case dialog
    case dialogTitle = "dialog_title"
    case button
    case buttonFocused = "button_focused"
    case input

    /// One character per role for style masks in snapshot tests.
    public var maskCode: Character {
        let codes: [ThemeRole: Character] = [
            .text: ".", .dim: ",", .header: "H", .banner: "B", .bannerCritical: "C", .border: "-", .title: "t", .titleFocused: "T",
            .columnHeader: "c", .selected: "S", .service: "s", .healthy: "h", .unhealthy: "u", .unknown: "?", .draining: "d",
            .drained: "D", .ejected: "e", .lease: "l", .warning: "w", .error: "E", .histogramBar: "#", .histogramMarker: "m",
            .sparkline: "~", .rateLimited: "r", .footer: "f", .footerKey: "k", .dialog: "g", .dialogTitle: "G", .button: "b",
            .buttonFocused: "F", .input: "i",
        ]
        return codes[self] ?? "."
    }

    /// Attributes used on top of the theme's own when colours are off (`NO_COLOR`, monochrome terminal),
    /// so every role still reads without colour.
    var monochromeFallback: TextAttributes {
        switch self {
        case .header, .selected, .buttonFocused, .bannerCritical: return [.reverse]
        case .titleFocused, .unhealthy, .error, .dialogTitle, .banner, .footerKey, .service: return [.bold]
        case .columnHeader, .warning, .ejected: return [.underline]
        case .dim, .drained: return [.dim]
        default: return []
        }
    }
}

public struct TextAttributes: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let bold = TextAttributes(rawValue: 1)
    public static let dim = TextAttributes(rawValue: 2)
    public static let underline = TextAttributes(rawValue: 4)
    public static let reverse = TextAttributes(rawValue: 8)

    static let names: [(String, TextAttributes)] = [("bold", .bold), ("dim", .dim), ("underline", .underline), ("reverse", .reverse)]
}

/// A colour as a theme file names it: the terminal's default, one of the 256 xterm colours, or RGB.
public enum ThemeColor: Sendable, Hashable {
    case terminalDefault
    case indexed(Int)
    case rgb(UInt8, UInt8, UInt8)

    static let names: [String: Int] = [
        "black": 0, "red": 1, "green": 2, "yellow": 3, "blue": 4, "magenta": 5, "cyan": 6, "white": 7,
        "bright_black": 8, "grey": 8, "gray": 8, "bright_red": 9, "bright_green": 10, "bright_yellow": 11,
        "bright_blue": 12, "bright_magenta": 13, "bright_cyan": 14, "bright_white": 15,
    ]

    /// Parses `default`, a colour name, `0`–`255`, `color208` or `#rrggbb`.
    public init?(parsing raw: String) {
        let text = raw.trimmingCharacters(in: .whitespaces).lowercased().replacingOccurrences(of: "-", with: "_")
        if text == "default" { self = .terminalDefault; return }
        if let index = Self.names[text] { self = .indexed(index); return }
        let digits = text.hasPrefix("color") ? String(text.dropFirst(5)) : text
        if let index = Int(digits), (0...255).contains(index) { self = .indexed(index); return }
        if text.hasPrefix("#"), text.count == 7, let value = UInt32(text.dropFirst(), radix: 16) {
            self = .rgb(UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF))
            return
        }
        return nil
    }

    /// The colour number to use on a terminal with `colors` colours (256, 16 or 8); -1 is the default.
    public func index(forColors colors: Int) -> Int {
        switch self {
        case .terminalDefault: return -1
        case .indexed(let index):
            if index < colors { return index }
            return Self.nearest(Self.rgb(of: index), among: colors)
        case .rgb(let r, let g, let b):
            return Self.nearest((Int(r), Int(g), Int(b)), among: colors >= 256 ? 256 : colors, skipSystem: colors >= 256)
        }
    }

    /// xterm's RGB for a colour number.
    static func rgb(of index: Int) -> (Int, Int, Int) {
        let system: [(Int, Int, Int)] = [
            (0, 0, 0), (205, 0, 0), (0, 205, 0), (205, 205, 0), (0, 0, 238), (205, 0, 205), (0, 205, 205), (229, 229, 229),
            (127, 127, 127), (255, 0, 0), (0, 255, 0), (255, 255, 0), (92, 92, 255), (255, 0, 255), (0, 255, 255), (255, 255, 255),
        ]
        if index < 16 { return system[max(0, index)] }
        if index < 232 {
            let cube = index - 16
            let level = { (value: Int) in value == 0 ? 0 : 55 + value * 40 }
            return (level(cube / 36), level(cube / 6 % 6), level(cube % 6))
        }
        let grey = 8 + (index - 232) * 10
        return (grey, grey, grey)
    }

    /// The closest colour number below `count` (skipping the terminal-defined 0–15 for RGB on 256 colours).
    static func nearest(_ target: (Int, Int, Int), among count: Int, skipSystem: Bool = false) -> Int {
        var best = 0
        var bestDistance = Int.max
        for index in (skipSystem ? 16 : 0)..<max(1, count) {
            let (r, g, b) = rgb(of: index)
            // Weighted for the eye's sensitivity (green > red > blue).
            let distance = 3 * (r - target.0) * (r - target.0) + 4 * (g - target.1) * (g - target.1) + 2 * (b - target.2) * (b - target.2)
            if distance < bestDistance { bestDistance = distance; best = index }
        }
        return best
    }
}

/// How one role is drawn.
public struct ThemeStyle: Sendable, Hashable {
    public var foreground: ThemeColor
    public var background: ThemeColor
    public var attributes: TextAttributes

    public init(foreground: ThemeColor = .terminalDefault, background: ThemeColor = .terminalDefault, attributes: TextAttributes = []) {
        self.foreground = foreground
        self.background = background
        self.attributes = attributes
    }
}

/// A style resolved for a terminal: colour numbers (-1 = default) and attributes.
public struct ResolvedStyle: Sendable, Hashable {
    public var foreground: Int
    public var background: Int
    public var attributes: TextAttributes
}

/// A complete theme: a style for every role.
public struct Theme: Sendable {
    public var name: String
    public var styles: [ThemeRole: ThemeStyle]

    public init(name: String, styles: [ThemeRole: ThemeStyle]) {
        self.name = name
        self.styles = styles
    }

    public func style(_ role: ThemeRole) -> ThemeStyle {
        styles[role] ?? styles[.text] ?? ThemeStyle()
    }

    /// The style to draw `role` with on a terminal with these capabilities.
    public func resolve(_ role: ThemeRole, for capabilities: TerminalCapabilities) -> ResolvedStyle {
        let style = style(role)
        guard capabilities.colors >= 8 else {
            return ResolvedStyle(foreground: -1, background: -1, attributes: style.attributes.union(role.monochromeFallback))
        }
        return ResolvedStyle(foreground: style.foreground.index(forColors: capabilities.colors),
                             background: style.background.index(forColors: capabilities.colors), attributes: style.attributes)
    }
}

/// A theme file that cannot be used, with the file and line of each problem.
public struct ThemeError: Error, Sendable, CustomStringConvertible {
    public var file: String
    public var problems: [(line: Int?, message: String)]

    public var description: String {
        problems.map { problem in
            "\(file)\(problem.line.map { ":\($0)" } ?? ""): \(problem.message)"
        }.joined(separator: "\n")
    }
}

extension Theme {
    /// Parses a theme file:
    ///
    /// ```yaml
    /// name: default-dark
    /// roles:
    ///   header: { fg: white, bg: "#005f87", attrs: [bold] }
    /// ```
    ///
    /// Every role must be known and every colour valid; roles left out fall back to `text`.
    public static func parse(yaml: String, file: String) throws(ThemeError) -> Theme {
        var problems: [(line: Int?, message: String)] = []
        func line(_ node: Node?) -> Int? { node?.mark.map { $0.line } }
        let root: Node
        do {
            guard let composed = try Yams.compose(yaml: yaml) else { throw ThemeError(file: file, problems: [(nil, "the file is empty")]) }
            root = composed
        } catch let error as ThemeError {
            throw error
        } catch let error as YamlError {
            var reportedLine: Int?
            if case .scanner(_, _, let mark, _) = error { reportedLine = mark.line }
            if case .parser(_, _, let mark, _) = error { reportedLine = mark.line }
            throw ThemeError(file: file, problems: [(reportedLine, "not valid YAML")])
        } catch {
            throw ThemeError(file: file, problems: [(nil, "not valid YAML")])
        }
        guard let mapping = root.mapping else { throw ThemeError(file: file, problems: [(line(root), "expected a mapping with `name` and `roles`")]) }
        var name = URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
        var styles: [ThemeRole: ThemeStyle] = [:]
        for (keyNode, value) in mapping {
            switch keyNode.string ?? "" {
            case "name":
                if let text = value.string, !text.isEmpty { name = text } else { problems.append((line(value), "`name` must be a non-empty string")) }
            case "description":
                break
            case "roles":
                guard let roles = value.mapping else { problems.append((line(value), "`roles` must map role names to styles")); continue }
                for (roleNode, styleNode) in roles {
                    let roleName = roleNode.string ?? ""
                    guard let role = ThemeRole(rawValue: roleName) else {
                        let hint = ThemeRole.allCases.map(\.rawValue).min { editDistance($0, roleName) < editDistance($1, roleName) }
                        problems.append((line(roleNode), "unknown role \"\(roleName)\"" + (hint.map { "; did you mean \"\($0)\"?" } ?? "")))
                        continue
                    }
                    guard let fields = styleNode.mapping else {
                        problems.append((line(styleNode), "role \(roleName): expected { fg, bg, attrs }"))
                        continue
                    }
                    var style = ThemeStyle()
                    for (fieldNode, fieldValue) in fields {
                        switch fieldNode.string ?? "" {
                        case "fg", "bg":
                            guard let text = fieldValue.string ?? fieldValue.int.map(String.init), let color = ThemeColor(parsing: text) else {
                                problems.append((line(fieldValue), "role \(roleName): bad colour \"\(fieldValue.string ?? "")\" (use default, a name like bright_red, 0–255 or #rrggbb)"))
                                continue
                            }
                            if fieldNode.string == "fg" { style.foreground = color } else { style.background = color }
                        case "attrs":
                            let items = fieldValue.sequence.map { Array($0) } ?? [fieldValue]
                            for item in items {
                                guard let attribute = TextAttributes.names.first(where: { $0.0 == item.string })?.1 else {
                                    problems.append((line(item), "role \(roleName): unknown attribute \"\(item.string ?? "")\" (bold, dim, underline, reverse)"))
                                    continue
                                }
                                style.attributes.insert(attribute)
                            }
                        default:
                            problems.append((line(fieldNode), "role \(roleName): unknown field \"\(fieldNode.string ?? "")\" (fg, bg, attrs)"))
                        }
                    }
                    styles[role] = style
                }
            default:
                problems.append((line(keyNode), "unknown key \"\(keyNode.string ?? "")\" (name, description, roles)"))
            }
        }
        guard problems.isEmpty else { throw ThemeError(file: file, problems: problems) }
        return Theme(name: name, styles: styles)
    }

    public static func load(path: String) throws(ThemeError) -> Theme {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ThemeError(file: path, problems: [(nil, "cannot read the file")])
        }
        return try parse(yaml: text, file: path)
    }

    /// The themes shipped with the gateway, in cycling order.
    public static let builtinNames = ["default-dark", "default-light", "high-contrast", "colorblind-safe", "mono"]

    /// Finds a theme by name or path: a path to a file; else `NAME.yaml` in `$REDFIRE_THEMES_DIR`, in
    /// `themes/` of the working directory or of `searchDirectories`; else the copy built into the binary.
    public static func named(_ nameOrPath: String, searchDirectories: [String] = []) throws(ThemeError) -> Theme {
        if nameOrPath.contains("/") || nameOrPath.hasSuffix(".yaml") || nameOrPath.hasSuffix(".yml") {
            return try load(path: nameOrPath)
        }
        var directories: [String] = []
        if let fromEnvironment = ProcessInfo.processInfo.environment["REDFIRE_THEMES_DIR"] { directories.append(fromEnvironment) }
        directories.append(FileManager.default.currentDirectoryPath + "/themes")
        directories += searchDirectories.map { $0 + "/themes" }
        for directory in directories {
            let path = directory + "/" + nameOrPath + ".yaml"
            if FileManager.default.fileExists(atPath: path) { return try load(path: path) }
        }
        if let builtin = BuiltinThemes.files[nameOrPath] { return try parse(yaml: builtin, file: "themes/\(nameOrPath).yaml") }
        throw ThemeError(file: nameOrPath, problems: [(nil, "no such theme; shipped themes: \(builtinNames.joined(separator: ", "))")])
    }
}
