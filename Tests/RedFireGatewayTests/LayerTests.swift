import Foundation
import Testing

/// The engine's folders are floors: a file may use types declared on its own floor or below, never above.
/// The floors are read from docs/architecture.md ("Floors and the dependency rule"), so the document and
/// this check cannot drift apart. Swift has no per-file imports inside a module, so "uses" means: a type
/// name declared at the top level of a file in another folder appears in the file's code (comments and
/// string literals removed). Names declared in two folders are ambiguous and skipped.
@Suite("Layers")
struct LayerTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let engine = root.appendingPathComponent("Sources/RedFireGateway")
    /// What the top-level files of the engine are called in the floor table.
    static let topLevel = "(top)"

    /// Floor number per folder, from the table in docs/architecture.md.
    static func floors() throws -> [String: Int] {
        let text = try String(contentsOf: root.appendingPathComponent("docs/architecture.md"), encoding: .utf8)
        let marker = try #require(text.range(of: "<!-- floors -->"), "docs/architecture.md lost its floor table")
        var floors: [String: Int] = [:]
        let table = text[marker.upperBound...].split(separator: "\n").drop { !$0.hasPrefix("```") }.dropFirst().prefix { !$0.hasPrefix("```") }
        for line in table {
            let columns = line.split(separator: " ", omittingEmptySubsequences: true)
            guard columns.count >= 2, let floor = Int(columns[0]) else { continue }
            floors[String(columns[1]).trimmingCharacters(in: CharacterSet(charactersIn: "/"))] = floor
        }
        return floors
    }

    struct SourceFile {
        let path: String
        let folder: String
        let code: String
        let lines: Int
    }

    static func sources() throws -> [SourceFile] {
        let enumerator = try #require(FileManager.default.enumerator(at: engine, includingPropertiesForKeys: nil))
        var files: [SourceFile] = []
        for case let url as URL in enumerator where url.pathExtension == "swift" {
            let relative = String(url.path.dropFirst(engine.path.count + 1))
            let parts = relative.split(separator: "/")
            let text = try String(contentsOf: url, encoding: .utf8)
            files.append(SourceFile(path: relative, folder: parts.count > 1 ? String(parts[0]) : topLevel,
                                    code: strippingCommentsAndStrings(text), lines: text.split(separator: "\n", omittingEmptySubsequences: false).count))
        }
        return files.sorted { $0.path < $1.path }
    }

    /// The code with comments and string literals (single-line, multi-line and raw) blanked out.
    static func strippingCommentsAndStrings(_ text: String) -> String {
        var output = ""
        output.reserveCapacity(text.utf8.count)
        let characters = Array(text)
        var index = 0
        func at(_ offset: Int, _ string: String) -> Bool {
            var position = index + offset
            for character in string {
                guard position < characters.count, characters[position] == character else { return false }
                position += 1
            }
            return true
        }
        while index < characters.count {
            if at(0, "//") {
                while index < characters.count, characters[index] != "\n" { index += 1 }
            } else if at(0, "/*") {
                index += 2
                while index < characters.count, !at(0, "*/") { index += 1 }
                index += 2
            } else if characters[index] == "#" || characters[index] == "\"" {
                var hashes = 0
                while at(hashes, "#") { hashes += 1 }
                guard at(hashes, "\"") else {
                    output.append(characters[index])
                    index += 1
                    continue
                }
                let multiLine = at(hashes, "\"\"\"")
                let close = (multiLine ? "\"\"\"" : "\"") + String(repeating: "#", count: hashes)
                index += hashes + (multiLine ? 3 : 1)
                while index < characters.count, !at(0, close) {
                    if hashes == 0, characters[index] == "\\" { index += 1 }
                    index += 1
                }
                index += close.count
                output.append("\"\"")
            } else {
                output.append(characters[index])
                index += 1
            }
        }
        return output
    }

    static var declaration: Regex<AnyRegexOutput> { try! Regex(#"(?m)^(?:@\w+(?:\([^)]*\))?\s+)*(?:(?:public|package|internal|fileprivate|private|final|indirect)\s+)*(?:struct|class|enum|protocol|actor|typealias)\s+([A-Z]\w*)"#) }
    static var memberDeclaration: Regex<AnyRegexOutput> {
        try! Regex(#"(?m)^\s+(?:@\w+\s+)*(?:(?:public|package|internal|fileprivate|private|static|final|override|mutating|nonisolated|convenience|required)\s+)*(?:func|var|let|case)\s+`?([a-zA-Z_]\w*)"#)
    }
    static var extensionBlock: Regex<AnyRegexOutput> { try! Regex(#"(?m)^extension [\w.]+[^{]*\{\n([\s\S]*?)\n\}"#) }
    static var extensionMember: Regex<AnyRegexOutput> {
        try! Regex(#"(?m)^    (?:@\w+\s+)*(?:(?:public|package|internal|static|mutating|nonisolated)\s+)*(?:func|var|let)\s+`?([a-zA-Z_]\w*)"#)
    }
    static var identifier: Regex<AnyRegexOutput> { try! Regex(#"\b[A-Z]\w*\b"#) }

    @Test func noFloorUsesAFloorAboveIt() throws {
        let floors = try Self.floors()
        let files = try Self.sources()
        #expect(floors.count >= 8, "floor table: \(floors)")
        for file in files {
            #expect(floors[file.folder] != nil, "\(file.path): its folder \(file.folder) is on no floor in docs/architecture.md")
        }

        var owners: [String: Set<String>] = [:]
        for file in files {
            for match in file.code.matches(of: Self.declaration) {
                if let name = match.output[1].substring { owners[String(name), default: []].insert(file.folder) }
            }
        }
        let owner = owners.compactMapValues { $0.count == 1 ? $0.first : nil }

        var violations: [String] = []
        for file in files {
            guard let floor = floors[file.folder] else { continue }
            var seen: Set<String> = []
            for match in file.code.matches(of: Self.identifier) {
                let name = String(file.code[match.range])
                guard seen.insert(name).inserted, let folder = owner[name], folder != file.folder,
                      let used = floors[folder], used > floor else { continue }
                violations.append("\(file.path) (\(file.folder), floor \(floor)) uses \(name) from \(folder) (floor \(used))")
            }
        }
        // Members added by `extension` to a type (often one from another module: `HTTPFields`,
        // `Substring`, `HTTPField.Name`) belong to the extension's floor too: `.name` in a lower floor
        // is a use. Only names declared once in the module are followed.
        var declarations: [String: Int] = [:]
        for file in files {
            for match in file.code.matches(of: Self.memberDeclaration) {
                if let name = match.output[1].substring { declarations[String(name), default: 0] += 1 }
            }
        }
        for file in files {
            guard let floor = floors[file.folder] else { continue }
            for block in file.code.matches(of: Self.extensionBlock) {
                guard let body = block.output[1].substring else { continue }
                for match in body.matches(of: Self.extensionMember) {
                    guard let name = match.output[1].substring.map(String.init), declarations[name] == 1 else { continue }
                    for user in files where user.folder != file.folder {
                        guard let userFloor = floors[user.folder], userFloor < floor,
                              user.code.contains(try! Regex("\\.\(name)\\b")) else { continue }
                        violations.append("\(user.path) (\(user.folder), floor \(userFloor)) uses .\(name) from \(file.path) (floor \(floor))")
                    }
                }
            }
        }
        #expect(violations.isEmpty, Comment(rawValue: "\(violations.count) uses of a higher floor:\n" + violations.joined(separator: "\n")))
    }

    /// Files stay readable: none over 500 lines unless docs/architecture.md names it and says why.
    @Test func noSourceFileIsOver500LinesUnlessExplained() throws {
        let architecture = try String(contentsOf: Self.root.appendingPathComponent("docs/architecture.md"), encoding: .utf8)
        let sources = Self.root.appendingPathComponent("Sources")
        let enumerator = try #require(FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil))
        var long: [String] = []
        for case let url as URL in enumerator where url.pathExtension == "swift" {
            let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).count
            let relative = String(url.path.dropFirst(sources.path.count + 1))
            if lines > 500, !architecture.contains("`\(url.lastPathComponent)` (over 500 lines") {
                long.append("\(relative): \(lines) lines")
            }
        }
        #expect(long.isEmpty, "files over 500 lines that docs/architecture.md does not explain: \(long.sorted())" as Comment)
    }

    /// The check itself: a use of a higher floor is found, one in a comment or a string is not.
    @Test func theScanSeesCodeOnly() {
        let code = Self.strippingCommentsAndStrings(#"""
        let a = Lower() // Higher
        /* Higher */ let b = "Higher \(x)"
        let c = #"Higher"#
        let d = """
            Higher
            """
        let e = Other()
        """#)
        let names = Set(code.matches(of: Self.identifier).map { String(code[$0.range]) })
        #expect(names == ["Lower", "Other"])
    }
}
