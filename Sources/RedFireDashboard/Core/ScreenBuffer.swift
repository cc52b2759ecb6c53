/// What the terminal can show: how many colours (0 = none, or NO_COLOR) and whether the locale can
/// print Unicode (block characters, box drawing); without it sparklines and borders use ASCII.
public struct TerminalCapabilities: Sendable, Equatable {
    public var colors: Int
    public var unicode: Bool

    public init(colors: Int, unicode: Bool) {
        self.colors = colors
        self.unicode = unicode
    }

    public static let color256 = TerminalCapabilities(colors: 256, unicode: true)
    public static let monochrome = TerminalCapabilities(colors: 0, unicode: true)
    public static let ascii = TerminalCapabilities(colors: 8, unicode: false)
}

/// The characters that differ between a Unicode and an ASCII terminal.
struct Glyphs: Sendable {
    var horizontal: Character
    var sparks: [Character]
    var bar: Character
    var partialBars: [Character]
    var marker: Character
    var selection: Character
    var bullet: Character
    var ellipsis: Character
    var arrowUp: Character
    var arrowDown: Character

    static let unicode = Glyphs(horizontal: "─", sparks: ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"], bar: "█",
                                partialBars: ["▏", "▎", "▍", "▌", "▋", "▊", "▉"], marker: "◂", selection: "▸", bullet: "·",
                                ellipsis: "…", arrowUp: "↑", arrowDown: "↓")
    static let ascii = Glyphs(horizontal: "-", sparks: ["_", ".", ",", "-", "~", "=", "*", "#"], bar: "#",
                              partialBars: [], marker: "<", selection: ">", bullet: "|", ellipsis: "~", arrowUp: "^", arrowDown: "v")
}

public struct ScreenSize: Sendable, Equatable {
    public var width: Int
    public var height: Int

    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }

    public static let minimum = ScreenSize(width: 80, height: 24)
}

/// A frame: one character and one theme role per cell. The terminal layer blits it; tests read its
/// text and its style mask.
public struct ScreenBuffer: Sendable, Equatable {
    public let size: ScreenSize
    public private(set) var characters: [Character]
    public private(set) var roles: [ThemeRole]
    /// Replace every non-ASCII character written (for terminals whose locale is not UTF-8).
    public var asciiOnly = false

    public init(size: ScreenSize, fill role: ThemeRole = .text) {
        self.size = size
        characters = Array(repeating: " ", count: size.width * size.height)
        roles = Array(repeating: role, count: size.width * size.height)
    }

    public subscript(row: Int, column: Int) -> (Character, ThemeRole) {
        (characters[row * size.width + column], roles[row * size.width + column])
    }

    /// Writes `text` from (row, column), clipped to `width` cells (default: to the right edge). Returns
    /// the column after the last written cell.
    @discardableResult
    public mutating func put(_ text: String, row: Int, column: Int, role: ThemeRole, width: Int? = nil) -> Int {
        guard row >= 0 && row < size.height else { return column }
        let limit = min(size.width, width.map { column + $0 } ?? size.width)
        var col = column
        for character in text {
            guard col < limit else { break }
            if col >= 0 {
                characters[row * size.width + col] = asciiOnly && !character.isASCII ? Self.transliterate(character) : character
                roles[row * size.width + col] = role
            }
            col += 1
        }
        return col
    }

    static func transliterate(_ character: Character) -> Character {
        switch character {
        case "→", "▸", "▶": return ">"
        case "←", "◂", "◀": return "<"
        case "↑": return "^"
        case "↓": return "v"
        case "µ": return "u"
        case "…": return "~"
        case "·", "│", "┃": return "|"
        case "─", "━", "—", "–": return "-"
        case "×": return "x"
        case "┌", "┐", "└", "┘", "├", "┤", "┼": return "+"
        default: return character.isLetter ? "?" : "#"
        }
    }

    /// Fills `width` cells of a row with one character and role.
    public mutating func fill(row: Int, column: Int = 0, width: Int? = nil, character: Character = " ", role: ThemeRole) {
        guard row >= 0 && row < size.height else { return }
        let end = min(size.width, width.map { column + $0 } ?? size.width)
        var col = max(0, column)
        while col < end {
            characters[row * size.width + col] = character
            roles[row * size.width + col] = role
            col += 1
        }
    }

    /// Changes the role of cells without touching their characters (selection highlight).
    public mutating func restyle(row: Int, column: Int = 0, width: Int? = nil, role: ThemeRole) {
        guard row >= 0 && row < size.height else { return }
        let end = min(size.width, width.map { column + $0 } ?? size.width)
        for col in max(0, column)..<max(max(0, column), end) { roles[row * size.width + col] = role }
    }

    /// The screen's text, one line per row, trailing spaces kept.
    public var lines: [String] {
        (0..<size.height).map { row in String(characters[(row * size.width)..<((row + 1) * size.width)]) }
    }

    /// One mask character per cell naming its role (see `ThemeRole.maskCode`).
    public var styleMask: [String] {
        (0..<size.height).map { row in String(roles[(row * size.width)..<((row + 1) * size.width)].map(\.maskCode)) }
    }

    public var text: String { lines.joined(separator: "\n") }
}
