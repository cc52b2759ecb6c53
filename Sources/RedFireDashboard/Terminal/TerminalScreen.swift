import CNcurses
import CTerminalSupport
import Foundation

/// The ncurses side of the console: opens and restores the terminal, maps theme roles to colour
/// pairs, blits a `ScreenBuffer` and decodes keys. Used from one thread only.
final class TerminalScreen {
    private(set) var capabilities = TerminalCapabilities(colors: 0, unicode: false)
    private(set) var size = ScreenSize(width: 80, height: 24)
    private var window: UnsafeMutablePointer<WINDOW>?
    private var styles: [ThemeRole: (attributes: attr_t, pair: Int32)] = [:]
    private var previous: ScreenBuffer?

    /// Takes over the terminal. Returns false when curses cannot start (no terminal, unknown TERM).
    func open() -> Bool {
        setlocale(LC_ALL, "")
        let codeset = String(cString: redfire_codeset())
        redfire_save_terminal(STDOUT_FILENO)
        guard let screen = redfire_newterm() else { return false }
        _ = set_term(screen)
        redfire_install_crash_handlers()
        window = redfire_stdscr()
        cbreak()
        noecho()
        nonl()
        keypad(window, true)
        _ = curs_set(0)
        set_escdelay(25)
        var colors = 0
        if ProcessInfo.processInfo.environment["NO_COLOR"].map({ !$0.isEmpty }) != true && has_colors() {
            start_color()
            use_default_colors()
            colors = Int(redfire_colors()) >= 256 ? 256 : (Int(redfire_colors()) >= 16 ? 16 : 8)
        }
        capabilities = TerminalCapabilities(colors: colors, unicode: codeset.uppercased().replacingOccurrences(of: "-", with: "") == "UTF8")
        size = ScreenSize(width: Int(redfire_cols()), height: Int(redfire_lines()))
        return true
    }

    func close() {
        guard window != nil else { return }
        endwin()
        redfire_remove_crash_handlers()
        window = nil
        redfire_flush_stdout()
    }

    func resized() {
        size = ScreenSize(width: Int(redfire_cols()), height: Int(redfire_lines()))
        previous = nil
        wclear(window)
    }

    /// Sets up one colour pair per role for `theme`, quantised to what the terminal has.
    func apply(theme: Theme) {
        styles = [:]
        for (index, role) in ThemeRole.allCases.enumerated() {
            let style = theme.resolve(role, for: capabilities)
            var attributes = redfire_attr_normal()
            if style.attributes.contains(.bold) { attributes |= redfire_attr_bold() }
            if style.attributes.contains(.dim) { attributes |= redfire_attr_dim() }
            if style.attributes.contains(.underline) { attributes |= redfire_attr_underline() }
            if style.attributes.contains(.reverse) { attributes |= redfire_attr_reverse() }
            var pair: Int32 = 0
            if capabilities.colors > 0 {
                pair = Int32(index + 1)
                init_extended_pair(pair, Int32(style.foreground), Int32(style.background))
            }
            styles[role] = (attributes, pair)
        }
        previous = nil
    }

    /// Draws the rows that changed since the last frame, in runs of one role.
    func draw(_ buffer: ScreenBuffer) {
        guard let window, buffer.size == size else { return }
        var characters: [wchar_t] = []
        characters.reserveCapacity(size.width)
        for row in 0..<size.height {
            if let previous, previous.size == buffer.size, Self.rowEqual(previous, buffer, row: row) { continue }
            var column = 0
            while column < size.width {
                let role = buffer[row, column].1
                characters.removeAll(keepingCapacity: true)
                var end = column
                while end < size.width && buffer[row, end].1 == role {
                    for scalar in buffer[row, end].0.unicodeScalars.prefix(1) { characters.append(wchar_t(bitPattern: scalar.value)) }
                    end += 1
                }
                var (attributes, pair) = styles[role] ?? (redfire_attr_normal(), 0)
                wattr_set(window, attributes, 0, &pair)
                characters.withUnsafeBufferPointer { pointer in
                    _ = mvwaddnwstr(window, Int32(row), Int32(column), pointer.baseAddress, Int32(pointer.count))
                }
                column = end
            }
        }
        wnoutrefresh(window)
        doupdate()
        previous = buffer
    }

    private static func rowEqual(_ a: ScreenBuffer, _ b: ScreenBuffer, row: Int) -> Bool {
        for column in 0..<a.size.width where a[row, column] != b[row, column] { return false }
        return true
    }

    /// Waits up to `timeoutMillis` for a key.
    func readKey(timeoutMillis: Int) -> Key? {
        guard let window else { return nil }
        wtimeout(window, Int32(timeoutMillis))
        var code: wint_t = 0
        let result = wget_wch(window, &code)
        if result == KEY_CODE_YES {
            switch Int32(code) {
            case KEY_UP: return .up
            case KEY_DOWN: return .down
            case KEY_LEFT: return .left
            case KEY_RIGHT: return .right
            case KEY_NPAGE: return .pageDown
            case KEY_PPAGE: return .pageUp
            case KEY_HOME: return .home
            case KEY_END: return .end
            case KEY_BTAB: return .backTab
            case KEY_ENTER: return .enter
            case KEY_BACKSPACE: return .backspace
            case KEY_RESIZE: return .resize
            default: return nil
            }
        }
        guard result == OK else { return nil }
        switch code {
        case 9: return .tab
        case 10, 13: return .enter
        case 27: return .escape
        case 8, 127: return .backspace
        default:
            guard code >= 32, let scalar = Unicode.Scalar(UInt32(code)) else { return nil }
            return .character(Character(scalar))
        }
    }
}
