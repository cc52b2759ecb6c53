import Foundation
import RedFireGateway
import Testing

@testable import RedFireDashboard

@Suite("Themes")
struct ThemeTests {
    static let themesDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("themes")

    static var themeFiles: [URL] {
        ((try? FileManager.default.contentsOfDirectory(at: themesDirectory, includingPropertiesForKeys: nil)) ?? [])
            .filter { $0.pathExtension == "yaml" }.sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    @Test func everyThemeFileParsesAndStylesEveryRole() throws {
        let files = Self.themeFiles
        #expect(Set(files.map { $0.deletingPathExtension().lastPathComponent }).isSuperset(of: Theme.builtinNames))
        for file in files {
            let theme = try Theme.load(path: file.path)
            #expect(theme.name == file.deletingPathExtension().lastPathComponent)
            let missing = ThemeRole.allCases.filter { theme.styles[$0] == nil }
            #expect(missing.isEmpty, "\(file.lastPathComponent) leaves out \(missing.map(\.rawValue))")
        }
    }

    @Test func themesReadmeListsEveryRole() throws {
        let readme = try String(contentsOf: Self.themesDirectory.appendingPathComponent("README.md"), encoding: .utf8)
        for role in ThemeRole.allCases { #expect(readme.contains("`\(role.rawValue)`"), "README lists \(role.rawValue)") }
    }

    @Test func builtInCopiesMatchTheFiles() throws {
        for file in Self.themeFiles {
            let name = file.deletingPathExtension().lastPathComponent
            let text = try String(contentsOf: file, encoding: .utf8)
            #expect(BuiltinThemes.files[name]?.trimmingCharacters(in: .whitespacesAndNewlines) == text.trimmingCharacters(in: .whitespacesAndNewlines),
                    "run scripts/embed-themes.sh after editing \(file.lastPathComponent)")
        }
    }

    @Test func unknownRoleIsAnErrorWithFileAndLine() {
        let yaml = """
        name: broken
        roles:
          header: { fg: white }
          healty: { fg: green }
          border: { fg: "#12345" }
          title: { attrs: [blink] }
        """
        #expect {
            try Theme.parse(yaml: yaml, file: "themes/broken.yaml")
        } throws: { error in
            let text = (error as? ThemeError)?.description ?? ""
            return text.contains("themes/broken.yaml:4: unknown role \"healty\"; did you mean \"healthy\"?")
                && text.contains("themes/broken.yaml:5: role border: bad colour \"#12345\"")
                && text.contains("themes/broken.yaml:6: role title: unknown attribute \"blink\"")
        }
    }

    @Test func coloursQuantiseTo16And8() {
        let orange = ThemeColor(parsing: "#ff8700")!
        #expect(orange.index(forColors: 256) == 208)
        #expect((0..<16).contains(orange.index(forColors: 16)))
        #expect((0..<8).contains(orange.index(forColors: 8)))
        #expect(ThemeColor(parsing: "bright_red")!.index(forColors: 8) == 1, "bright red becomes red")
        #expect(ThemeColor(parsing: "196")!.index(forColors: 16) == 9)
        #expect(ThemeColor(parsing: "default")!.index(forColors: 256) == -1)
        #expect(ThemeColor(parsing: "#00000") == nil)
    }

    @Test func withoutColourEveryStateStillReads() throws {
        let theme = try Theme.named("default-dark")
        let mono = TerminalCapabilities(colors: 0, unicode: true)
        for role in ThemeRole.allCases {
            let resolved = theme.resolve(role, for: mono)
            #expect(resolved.foreground == -1 && resolved.background == -1, "no colour for \(role)")
        }
        #expect(theme.resolve(.selected, for: mono).attributes.contains(.reverse))
        #expect(theme.resolve(.unhealthy, for: mono).attributes.contains(.bold))
        #expect(theme.resolve(.header, for: mono).attributes.contains(.reverse))
    }

    @Test func namedFindsBuiltInsAndRejectsUnknownNames() throws {
        for name in Theme.builtinNames { #expect(try Theme.named(name).name == name) }
        #expect(throws: ThemeError.self) { try Theme.named("no-such-theme") }
    }
}
