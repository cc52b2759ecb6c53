import Foundation
import RedFireGateway
import Testing

@testable import RedFireDashboard

/// Frames compared with golden files in `Snapshots/` (text, then the role of every cell). Set
/// `RECORD_SNAPSHOTS=1` to rewrite them after an intended change, and review the diff.
@Suite("Console rendering")
struct RenderTests {
    static let snapshotDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Snapshots")

    static func assertMatchesGolden(_ name: String, _ content: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let url = snapshotDirectory.appendingPathComponent(name + ".txt")
        if ProcessInfo.processInfo.environment["RECORD_SNAPSHOTS"] == "1" || !FileManager.default.fileExists(atPath: url.path) {
            try content.write(to: url, atomically: true, encoding: .utf8)
            Issue.record("recorded \(url.lastPathComponent); review it and run again", sourceLocation: sourceLocation)
            return
        }
        let golden = try String(contentsOf: url, encoding: .utf8)
        if golden != content {
            let goldenLines = golden.split(separator: "\n", omittingEmptySubsequences: false)
            let lines = content.split(separator: "\n", omittingEmptySubsequences: false)
            let first = zip(goldenLines, lines).enumerated().first { $0.element.0 != $0.element.1 }
            Issue.record("\(name) differs from its golden file at line \((first?.offset ?? min(goldenLines.count, lines.count)) + 1):\n  golden: \(first.map { String($0.element.0) } ?? "")\n  now:    \(first.map { String($0.element.1) } ?? "")",
                         sourceLocation: sourceLocation)
        }
    }

    static func frame(_ scenario: Fixtures.Scenario, _ size: ScreenSize, capabilities: TerminalCapabilities = .color256,
                      view: ViewState = Fixtures.view()) -> ScreenBuffer {
        render(view, Fixtures.snapshot(scenario), theme: Fixtures.theme, capabilities: capabilities, size: size)
    }

    static func document(_ buffer: ScreenBuffer) -> String {
        buffer.lines.joined(separator: "\n") + "\n--- roles (ThemeRole.maskCode) ---\n" + buffer.styleMask.joined(separator: "\n") + "\n"
    }

    /// The attributes each cell gets on a terminal without colour: R reverse, B bold, U underline,
    /// D dim, `.` plain (combinations use the first that applies, in that order).
    static func monochromeMask(_ buffer: ScreenBuffer, theme: Theme) -> [String] {
        let caps = TerminalCapabilities(colors: 0, unicode: false)
        var codes: [ThemeRole: Character] = [:]
        for role in ThemeRole.allCases {
            let attributes = theme.resolve(role, for: caps).attributes
            codes[role] = attributes.contains(.reverse) ? "R" : attributes.contains(.bold) ? "B" : attributes.contains(.underline) ? "U" : attributes.contains(.dim) ? "D" : "."
        }
        return buffer.styleMask.indices.map { row in
            String((0..<buffer.size.width).map { codes[buffer[row, $0].1]! })
        }
    }

    @Test(arguments: Fixtures.Scenario.allCases, [ScreenSize(width: 80, height: 24), ScreenSize(width: 160, height: 48)])
    func colourFramesMatchTheirGoldenFiles(scenario: Fixtures.Scenario, size: ScreenSize) throws {
        try Self.assertMatchesGolden("\(scenario.rawValue)-\(size.width)x\(size.height)", Self.document(Self.frame(scenario, size)))
    }

    @Test(arguments: Fixtures.Scenario.allCases, [ScreenSize(width: 80, height: 24), ScreenSize(width: 160, height: 48)])
    func monochromeAsciiFramesMatchTheirGoldenFiles(scenario: Fixtures.Scenario, size: ScreenSize) throws {
        let theme = try Theme.named("mono")
        let buffer = Self.frame(scenario, size, capabilities: TerminalCapabilities(colors: 0, unicode: false))
        let content = buffer.lines.joined(separator: "\n") + "\n--- attributes without colour (R reverse, B bold, U underline, D dim) ---\n"
            + Self.monochromeMask(buffer, theme: theme).joined(separator: "\n") + "\n"
        try Self.assertMatchesGolden("\(scenario.rawValue)-\(size.width)x\(size.height)-mono-ascii", content)
    }

    @Test func healthyFrameShowsWhatAnOperatorNeeds() {
        let text = Self.frame(.healthy, ScreenSize(width: 80, height: 24)).text
        #expect(text.contains("RedFire"))
        #expect(text.contains("up 1h02m"))
        #expect(text.contains("config v3"))
        #expect(text.contains("conns 57"))
        for (service, strategy, _) in Fixtures.services.prefix(3) {
            #expect(text.contains(service))
            #expect(text.contains(strategy.rawValue))
        }
        #expect(text.contains("user_trading-1"))
        #expect(text.contains("healthy"))
        #expect(text.contains("/api/v1/trading"))
        #expect(text.contains("redfire/gateway.log"), "the log file's path is in the footer")
        #expect(!text.contains("NO HEALTHY"))
    }

    @Test func listenersShowConnectionsByTLSVersionAndCertificateExpiry() {
        var snapshot = Fixtures.snapshot(.healthy)
        snapshot.listeners = [
            .init(url: "https://0.0.0.0:8443", open: 12, tls13: 10, tls12: 2, http2: 7, tls: true, soonestCertificate: "api.redfire.example", certificateDaysLeft: 83),
            .init(url: "http://0.0.0.0:8080", open: 1, redirectsToHTTPS: true),
        ]
        let view = Fixtures.view()
        var text = render(view, snapshot, theme: Fixtures.theme, capabilities: .color256, size: ScreenSize(width: 160, height: 48)).text
        #expect(text.contains("listening https://0.0.0.0:8443 12 (h2: 7, 1.3: 10, 1.2: 2) cert 83d"), "\(text.split(separator: "\n").prefix(3))")
        #expect(text.contains("http://0.0.0.0:8080 → https 1"))
        #expect(!text.contains("EXPIRES"))
        snapshot.listeners[0].certificateDaysLeft = 9
        text = render(view, snapshot, theme: Fixtures.theme, capabilities: .color256, size: ScreenSize(width: 160, height: 48)).text
        #expect(text.contains("TLS CERTIFICATE api.redfire.example EXPIRES IN 9 DAYS"))
    }

    @Test func degradedFrameRaisesBannersAndNamesStatesInText() {
        let buffer = Self.frame(.degraded, ScreenSize(width: 160, height: 48))
        let text = buffer.text
        #expect(text.contains("NO HEALTHY INSTANCE: vnpy_core"))
        #expect(text.contains("CONFIG RELOAD FAILED"))
        #expect(text.contains("UNHEALTHY"))
        #expect(text.contains("FAIL connection"))
        #expect(text.contains("ejected 12s"))
        #expect(text.contains("lease 2.4s"))
        #expect(text.contains("203.0.113.7"), "top limited keys are listed")
        // State is carried by colour role AND text: the UNHEALTHY cells use the `unhealthy` role.
        let row = buffer.lines.firstIndex { $0.contains("vnpy_core-1") && $0.contains("UNHEALTHY") }!
        let column = buffer.lines[row].distance(from: buffer.lines[row].startIndex, to: buffer.lines[row].range(of: "UNHEALTHY")!.lowerBound)
        #expect(buffer[row, column].1 == .unhealthy)
    }

    /// The listener out of file descriptors: a critical banner with the limit and the open connections,
    /// and a detail view that counts responses instances broke off.
    @Test func descriptorExhaustionAndTruncatedResponsesAreShown() {
        var snapshot = Fixtures.snapshot(.healthy)
        snapshot.acceptPausedFor = .seconds(3)
        snapshot.openFileLimit = 1024
        snapshot.openConnections = 1010
        var buffer = render(Fixtures.view(), snapshot, theme: Fixtures.theme, capabilities: .color256, size: ScreenSize(width: 160, height: 48))
        let row = buffer.lines.firstIndex { $0.contains("OUT OF FILE DESCRIPTORS") }
        #expect(row == 1, "the banner line")
        if let row {
            let line = buffer.lines[row]
            #expect(line.contains("limit 1024") && line.contains("conns 1010"))
            let column = line.distance(from: line.startIndex, to: line.range(of: "OUT OF FILE")!.lowerBound)
            #expect(buffer[row, column].1 == .bannerCritical)
        }

        snapshot.services[0].instances[0].figures.upstreamErrors = 4
        snapshot.services[0].instances[0].figures.upstreamTruncated = 3
        var view = Fixtures.view()
        view.detail = .instance(service: snapshot.services[0].name, id: snapshot.services[0].instances[0].id)
        buffer = render(view, snapshot, theme: Fixtures.theme, capabilities: .color256, size: ScreenSize(width: 160, height: 48))
        #expect(buffer.text.contains("upstream errors 4  timeouts 0  truncated 3"), "\(buffer.text)")
    }

    /// In a cluster the header names this node and the nodes alive; a store out of reach is a
    /// critical banner that says the node serves on with its last state.
    @Test func clusterNodeAndAnUnreachableStoreAreShown() {
        var snapshot = Fixtures.snapshot(.healthy)
        snapshot.cluster = GatewaySnapshot.Cluster(node: "node-b", nodesAlive: ["node-a", "node-b", "node-c"])
        var buffer = render(Fixtures.view(), snapshot, theme: Fixtures.theme, capabilities: .color256, size: ScreenSize(width: 160, height: 48))
        #expect(buffer.lines[0].contains("node-b · 3 nodes"), "\(buffer.lines[0])")
        #expect(!buffer.text.contains("CLUSTER STORE"))

        snapshot.cluster?.storeUnreachableSince = Date(timeIntervalSince1970: 9 * 3600 + 30 * 60)  // 09:30:00 UTC
        snapshot.cluster?.nodesAlive = ["node-b"]
        buffer = render(Fixtures.view(), snapshot, theme: Fixtures.theme, capabilities: .color256, size: ScreenSize(width: 160, height: 48))
        #expect(buffer.lines[0].contains("node-b · 1 node"), "\(buffer.lines[0])")
        let row = buffer.lines.firstIndex { $0.contains("CLUSTER STORE UNREACHABLE SINCE 09:30:00") }
        #expect(row == 1, "the banner line: \(buffer.lines[1])")
        if let row {
            let line = buffer.lines[row]
            let column = line.distance(from: line.startIndex, to: line.range(of: "CLUSTER STORE")!.lowerBound)
            #expect(buffer[row, column].1 == .bannerCritical)
        }

        // Nodes that disagree about an instance: its detail view says what each one sees.
        snapshot.services[0].instances[0].healthByNode = ["node-b": "unhealthy", "node-a": "healthy"]
        var view = Fixtures.view()
        view.detail = .instance(service: snapshot.services[0].name, id: snapshot.services[0].instances[0].id)
        buffer = render(view, snapshot, theme: Fixtures.theme, capabilities: .color256, size: ScreenSize(width: 160, height: 48))
        #expect(buffer.text.contains("nodes node-a: healthy · node-b: UNHEALTHY"), "\(buffer.text)")
    }

    @Test func drainingFrameCountsInFlightDown() {
        let text = Self.frame(.draining, ScreenSize(width: 80, height: 24)).text
        #expect(text.contains("draining (3)"))
        #expect(text.contains("drained"))
    }

    @Test func wideFrameShowsHistogramWithQuantileMarks() {
        let text = Self.frame(.healthy, ScreenSize(width: 160, height: 48)).text
        #expect(text.contains("Latency · service user_trading · 1m"))
        for mark in ["p50", "p90", "p99", "p99.9", "max"] { #expect(text.contains("◂") && text.contains(mark)) }
        #expect(text.contains("Rate limiting"))
        #expect(text.contains("ADDRESS"))
        #expect(text.contains("127.0.0.1:9101"))
    }

    @Test func tooSmallTerminalSaysWhatItNeeds() {
        let text = Self.frame(.healthy, ScreenSize(width: 60, height: 20)).text
        #expect(text.contains("terminal too small: need 80×24"))
        #expect(!text.contains("user_trading"))
    }

    @Test func asciiFallbackUsesNoUnicodeGlyphs() {
        let buffer = Self.frame(.healthy, ScreenSize(width: 120, height: 40), capabilities: TerminalCapabilities(colors: 8, unicode: false))
        let nonASCII = buffer.text.unicodeScalars.filter { !$0.isASCII }
        #expect(nonASCII.isEmpty, "non-ASCII: \(String(String.UnicodeScalarView(nonASCII.prefix(10))))")
    }

    @Test func detailViewShowsHistogramAndChecks() {
        let snapshot = Fixtures.snapshot(.degraded)
        var view = Fixtures.view()
        view.detail = .instance(service: "vnpy_core", id: "vnpy_core-1")
        var text = render(view, snapshot, theme: Fixtures.theme, capabilities: .color256, size: .minimum).text
        #expect(text.contains("Instance vnpy_core-1 of vnpy_core"))
        #expect(text.contains("FAIL connection refused"))
        view.detail = .route("/api/v1/trading")
        text = render(view, snapshot, theme: Fixtures.theme, capabilities: .color256, size: ScreenSize(width: 100, height: 40)).text
        #expect(text.contains("Route /api/v1/trading"))
        #expect(text.contains("p99.9"))
        // The slowest recent requests, with their trace and request ids.
        text = render(view, snapshot, theme: Fixtures.theme, capabilities: .color256, size: ScreenSize(width: 160, height: 48)).text
        #expect(text.contains("slowest requests, last 60 s"))
        #expect(text.contains("412ms  502  POST /api/v1/trading/orders"))
        #expect(text.contains("trace 4bf92f3577b34da6a3ce929d0e0e4736  req req-7f3a91c2e4b5d6a8"))
    }

    @Test func pausedAndStaleBanners() {
        var view = Fixtures.view { $0.paused = true }
        #expect(render(view, Fixtures.snapshot(.healthy), theme: Fixtures.theme, capabilities: .color256, size: .minimum).text.contains("PAUSED"))
        view = Fixtures.view { $0.now = Fixtures.takenAt.addingTimeInterval(9) }
        #expect(render(view, Fixtures.snapshot(.healthy), theme: Fixtures.theme, capabilities: .color256, size: .minimum).text.contains("STALE 9s"))
    }

    @Test func strategyPickerPreviewsTheLastMinute() {
        let snapshot = Fixtures.snapshot(.healthy)
        var view = Fixtures.view()
        view.modal = .strategy(.init(service: "user_trading", current: .roundRobin, index: 0))
        let text = render(view, snapshot, theme: Fixtures.theme, capabilities: .color256, size: .minimum).text
        // Weights 1 and 2: round robin sends a third and two thirds of the 1200 requests.
        #expect(text.contains("Last minute: 1200 requests"))
        #expect(text.contains("400 33%"))
        #expect(text.contains("800 67%"))
    }
}
