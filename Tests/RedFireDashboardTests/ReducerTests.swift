import RedFireGateway
import Testing

@testable import RedFireDashboard

/// Every key the help overlay lists does what it says; dialogs default to Cancel; draining the last
/// healthy instance needs its id typed.
@Suite("Console keys")
struct ReducerTests {
    let snapshot = Fixtures.snapshot(.healthy)

    func press(_ keys: [Key], from state: ViewState = Fixtures.view(), snapshot: GatewaySnapshot? = nil) -> (ViewState, [Command]) {
        var state = state
        var commands: [Command] = []
        for key in keys {
            let (next, emitted) = reduce(state, key, snapshot: snapshot ?? self.snapshot)
            state = next
            commands += emitted
        }
        return (state, commands)
    }

    func chars(_ text: String) -> [Key] { text.map { .character($0) } }

    @Test func helpListsEveryKeyTheReducerHandles() {
        let listed = KeyHelp.entries.map(\.keys).joined(separator: " ")
        for key in ["j", "k", "g", "G", "Tab", "Enter", "Esc", "/", "p", "w", "t", "d", "s", ":", "?", "q", "PgUp"] {
            #expect(listed.contains(key), "help lists \(key)")
        }
        let (state, _) = press([.character("?")])
        #expect(state.showHelp)
        #expect(press([.character("?"), .character("x")]).0.showHelp == false, "any key closes the help")
    }

    @Test func arrowsAndVimKeysMoveTheSelection() {
        #expect(press([.down, .down]).0.serviceRow == 2)
        #expect(press([.character("j"), .character("j"), .character("k")]).0.serviceRow == 1)
        #expect(press([.up]).0.serviceRow == 0, "stops at the top")
        #expect(press([.character("G")]).0.serviceRow == 14, "5 services + 10 instances")
        #expect(press([.character("G"), .character("g")]).0.serviceRow == 0)
        #expect(press([.pageDown]).0.serviceRow == 10)
        #expect(press([.end, .pageUp]).0.serviceRow == 4)
    }

    @Test func tabCyclesPanesAndSelectionFollowsThePane() {
        #expect(press([.tab]).0.focus == .routes)
        #expect(press([.tab, .tab]).0.focus == .events)
        #expect(press([.tab, .tab, .tab]).0.focus == .services)
        #expect(press([.backTab]).0.focus == .events)
        let (state, _) = press([.tab, .down, .down])
        #expect(state.routeRow == 2)
        #expect(state.serviceRow == 0)
    }

    @Test func enterOpensDetailAndEscapeCloses() {
        var (state, _) = press([.down, .enter])
        #expect(state.detail == .instance(service: "user_trading", id: "user_trading-1"))
        state = press([.escape], from: state).0
        #expect(state.detail == nil)
        #expect(press([.enter]).0.detail == .service("user_trading"))
        #expect(press([.tab, .down, .enter]).0.detail == .route("/api/v1/vnpy"))
    }

    @Test func slashFiltersAndEscapeClears() {
        var (state, _) = press([.character("/")] + chars("vnpy") + [.enter])
        #expect(state.filter == "vnpy")
        #expect(!state.editingFilter)
        #expect(state.serviceRows(snapshot).count == 3, "vnpy_core and its two instances")
        #expect(state.routeRows(snapshot).map(\.name) == ["/api/v1/vnpy"])
        state = press([.escape], from: state).0
        #expect(state.filter.isEmpty)
        let typing = press([.character("/")] + chars("xyz") + [.backspace]).0
        #expect(typing.filter == "xy" && typing.editingFilter)
        #expect(press([.character("/")] + chars("q")).0.modal == nil, "q while filtering types a q")
    }

    @Test func pauseWindowAndTheme() {
        #expect(press([.character("p")]).0.paused)
        #expect(!press([.character("p"), .character("p")]).0.paused)
        #expect(press([.character("w")]).0.window == .fifteenMinutes)
        #expect(press([.character("w"), .character("w")]).0.window == .tenSeconds)
        #expect(press([.character("w"), .character("w"), .character("w")]).0.window == .oneMinute)
        let themed = press([.character("t")]).0
        #expect(themed.themeName == "default-light")
        #expect(press(Array(repeating: .character("t"), count: 5)).0.themeName == "default-dark")
        // Paused: navigation still works.
        #expect(press([.character("p"), .down]).0.serviceRow == 1)
    }

    @Test func drainAsksFirstWithCancelAsTheDefault() {
        let (state, commands) = press([.down, .character("d")])
        guard case .drain(let confirmation)? = state.modal else { Issue.record("no confirmation"); return }
        #expect(confirmation.instance == "user_trading-1")
        #expect(confirmation.healthyLeft == 1)
        #expect(confirmation.focus == .cancel)
        #expect(commands.isEmpty)
        // Enter on the default button cancels.
        let cancelled = press([.enter], from: state)
        #expect(cancelled.0.modal == nil && cancelled.1.isEmpty)
        // Moving to Drain and pressing Enter drains.
        let confirmed = press([.tab, .enter], from: state)
        #expect(confirmed.1 == [.drain(service: "user_trading", instance: "user_trading-1")])
        #expect(press([.escape], from: state).1.isEmpty)
    }

    @Test func drainOnAServiceRowExplainsWhatToSelect() {
        let (state, commands) = press([.character("d")])
        #expect(state.modal == nil && commands.isEmpty)
        #expect(state.message?.contains("select an instance") == true)
    }

    @Test func lastHealthyInstanceNeedsItsIdTyped() {
        var snapshot = Fixtures.snapshot(.healthy)
        snapshot.services[0].instances[1].eligible = false
        snapshot.services[0].instances[1].state = .unhealthy
        var (state, _) = press([.down, .character("d")], snapshot: snapshot)
        guard case .drain(let confirmation)? = state.modal else { Issue.record("no confirmation"); return }
        #expect(confirmation.requiresTyping)
        #expect(render(state, snapshot, theme: Fixtures.theme, capabilities: .color256, size: .minimum).text.contains("Type user_trading-1 to confirm"))
        // Confirm without typing: refused, dialog stays.
        var result = press([.tab, .enter], from: state, snapshot: snapshot)
        #expect(result.1.isEmpty)
        #expect(result.0.modal != nil)
        // Wrong id: refused.
        result = press(chars("user_trading-2") + [.tab, .enter], from: state, snapshot: snapshot)
        #expect(result.1.isEmpty)
        state = press(chars("user_trading-1") + [.tab, .enter], from: state, snapshot: snapshot).0
        result = press(chars("user_trading-1") + [.tab, .enter], from: press([.down, .character("d")], snapshot: snapshot).0, snapshot: snapshot)
        #expect(result.1 == [.drain(service: "user_trading", instance: "user_trading-1")])
    }

    @Test func dOnADrainedInstanceUndrains() {
        let snapshot = Fixtures.snapshot(.draining)
        let state = press([.down, .down, .character("d")], snapshot: snapshot).0
        guard case .drain(let confirmation)? = state.modal else { Issue.record("no confirmation"); return }
        #expect(confirmation.undrain)
        #expect(press([.tab, .enter], from: state, snapshot: snapshot).1 == [.undrain(service: "user_trading", instance: "user_trading-2")])
    }

    @Test func strategyPickerChoosesAndConfirms() {
        let (state, _) = press([.down, .character("s")])
        guard case .strategy(let picker)? = state.modal else { Issue.record("no picker"); return }
        #expect(picker.service == "user_trading")
        #expect(picker.choice == .roundRobin)
        #expect(press([.down, .down, .enter], from: state).1 == [.setStrategy(service: "user_trading", strategy: .leastConnections)])
        #expect(press([.enter], from: state).1.isEmpty, "keeping the current strategy changes nothing")
        #expect(press([.down, .escape], from: state).1.isEmpty)
    }

    @Test func colonCommandsActByName() {
        #expect(press([.character(":")] + chars("strategy vnpy_core random") + [.enter]).1 == [.setStrategy(service: "vnpy_core", strategy: .random)])
        #expect(press([.character(":")] + chars("reload") + [.enter]).1 == [.reload])
        let drain = press([.character(":")] + chars("drain vnpy_core-2") + [.enter]).0
        guard case .drain(let confirmation)? = drain.modal else { Issue.record("drain by name asks too"); return }
        #expect(confirmation.instance == "vnpy_core-2" && confirmation.focus == .cancel)
        #expect(press([.character(":")] + chars("window 15m") + [.enter]).0.window == .fifteenMinutes)
        #expect(press([.character(":")] + chars("theme mono") + [.enter]).0.themeName == "mono")
        #expect(press([.character(":")] + chars("strategy nope random") + [.enter]).0.message == "no service nope")
        #expect(press([.character(":")] + chars("frobnicate") + [.enter]).0.message?.hasPrefix("unknown command") == true)
        #expect(press([.character(":")] + chars("quit") + [.enter]).0.modal == .quit(.cancel))
    }

    @Test func quitAsksFirstWithCancelAsTheDefault() {
        let (state, commands) = press([.character("q")])
        #expect(state.modal == .quit(.cancel))
        #expect(commands.isEmpty)
        #expect(press([.enter], from: state).1.isEmpty, "Enter on Cancel keeps running")
        #expect(press([.escape], from: state).0.modal == nil)
        #expect(press([.tab, .enter], from: state).1 == [.quit])
    }

    @Test func readOnlyConsoleBindsNoActionKeys() {
        let readOnly = Fixtures.view { $0.readOnly = true }
        #expect(press([.down, .character("d")], from: readOnly).0.modal == nil)
        #expect(press([.character("s")], from: readOnly).0.modal == nil)
        let command = press([.character(":")] + chars("strategy vnpy_core random") + [.enter], from: readOnly)
        #expect(command.1.isEmpty)
        #expect(command.0.message?.contains("read-only") == true)
        // Viewing still works, and quitting.
        #expect(press([.down, .enter], from: readOnly).0.detail != nil)
        #expect(press([.character("q"), .tab, .enter], from: readOnly).1 == [.quit])
        let help = render(press([.character("?")], from: readOnly).0, snapshot, theme: Fixtures.theme, capabilities: .color256, size: .minimum).text
        #expect(!help.contains("drain / undrain"))
    }
}
