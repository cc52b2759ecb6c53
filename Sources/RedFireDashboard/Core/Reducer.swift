import RedFireGateway

/// The console's behaviour: a key (with the snapshot on screen) gives a new view state and the
/// commands to run. Pure: no terminal, no gateway; the reducer tests drive it directly.
public func reduce(_ state: ViewState, _ key: Key, snapshot: GatewaySnapshot) -> (ViewState, [Command]) {
    var next = state
    next.message = nil
    if key == .resize { return (next, []) }
    if let modal = state.modal {
        return reduceModal(next, modal, key, snapshot: snapshot)
    }
    if state.editingFilter {
        switch key {
        case .enter: next.editingFilter = false
        case .escape:
            next.editingFilter = false
            next.filter = ""
        case .backspace: if !next.filter.isEmpty { next.filter.removeLast() }
        case .character(let character): next.filter.append(character)
        default: break
        }
        next.serviceRow = 0
        next.routeRow = 0
        return (next, [])
    }
    if state.showHelp {
        // Any key closes the help; `q` does not quit from here.
        next.showHelp = false
        return (next, [])
    }
    switch key {
    case .character("?"): next.showHelp = true
    case .character("q"): next.modal = .quit(.cancel)
    case .tab: next.focus = ViewState.Pane.allCases[(ViewState.Pane.allCases.firstIndex(of: state.focus)! + 1) % ViewState.Pane.allCases.count]
    case .backTab:
        let count = ViewState.Pane.allCases.count
        next.focus = ViewState.Pane.allCases[(ViewState.Pane.allCases.firstIndex(of: state.focus)! + count - 1) % count]
    case .up, .character("k"): move(&next, by: -1, snapshot)
    case .down, .character("j"): move(&next, by: 1, snapshot)
    case .pageUp: move(&next, by: -10, snapshot)
    case .pageDown: move(&next, by: 10, snapshot)
    case .home, .character("g"): move(&next, by: -1_000_000, snapshot)
    case .end, .character("G"): move(&next, by: 1_000_000, snapshot)
    case .enter: next.detail = detail(for: state, snapshot)
    case .escape:
        if state.detail != nil { next.detail = nil } else if !state.filter.isEmpty { next.filter = "" }
    case .character("/"):
        next.editingFilter = true
        next.filter = ""
    case .character("p"): next.paused.toggle()
    case .character("w"):
        let windows = ViewState.Window.allCases
        next.window = windows[(windows.firstIndex(of: state.window)! + 1) % windows.count]
    case .character("t"):
        if !state.themeNames.isEmpty { next.themeIndex = (state.themeIndex + 1) % state.themeNames.count }
        next.message = "theme: \(next.themeName)"
    case .character("d"):
        guard !state.readOnly else { break }
        guard case .instance(let service, let instance)? = state.selectedServiceRow(snapshot), state.focus == .services else {
            next.message = "select an instance (in the services pane) to drain it"
            break
        }
        next.modal = .drain(drainConfirmation(service: service, instance: instance))
    case .character("s"):
        guard !state.readOnly else { break }
        guard state.focus == .services, let row = state.selectedServiceRow(snapshot), let service = snapshot.service(named: row.serviceName) else {
            next.message = "select a service (in the services pane) to change its strategy"
            break
        }
        next.modal = .strategy(.init(service: service.name, current: service.strategy,
                                     index: BalancingStrategyKind.allCases.firstIndex(of: service.strategy) ?? 0))
    case .character(":"): next.modal = .command("")
    default: break
    }
    return (next, [])
}

private func move(_ state: inout ViewState, by delta: Int, _ snapshot: GatewaySnapshot) {
    switch state.focus {
    case .services:
        let count = state.serviceRows(snapshot).count
        state.serviceRow = max(0, min(count - 1, min(state.serviceRow, max(0, count - 1)) + delta))
    case .routes:
        let count = state.routeRows(snapshot).count
        state.routeRow = max(0, min(count - 1, min(state.routeRow, max(0, count - 1)) + delta))
    case .events:
        state.eventOffset = max(0, min(max(0, snapshot.events.count - 1), state.eventOffset + delta))
    }
}

private func detail(for state: ViewState, _ snapshot: GatewaySnapshot) -> ViewState.Detail? {
    switch state.focus {
    case .services:
        switch state.selectedServiceRow(snapshot) {
        case .service(let service)?: return .service(service.name)
        case .instance(let service, let instance)?: return .instance(service: service.name, id: instance.id)
        case nil: return nil
        }
    case .routes: return state.selectedRoute(snapshot).map { .route($0.name) }
    case .events: return state.detail
    }
}

func drainConfirmation(service: GatewaySnapshot.Service, instance: GatewaySnapshot.Instance) -> ViewState.DrainConfirmation {
    let undrain = instance.state == .draining || instance.state == .drained
    let healthyLeft = service.instances.filter { $0.eligible && $0.id != instance.id }.count
    // Typing is required when this drain would take the service's last serving instance away.
    let requiresTyping = !undrain && instance.eligible && healthyLeft == 0
    var confirmation = ViewState.DrainConfirmation(service: service.name, instance: instance.id, undrain: undrain, inFlight: instance.inFlight,
                                                   healthyLeft: healthyLeft, requiresTyping: requiresTyping)
    confirmation.streams = instance.streams.open
    return confirmation
}

private func reduceModal(_ state: ViewState, _ modal: ViewState.Modal, _ key: Key, snapshot: GatewaySnapshot) -> (ViewState, [Command]) {
    var next = state
    switch modal {
    case .quit(let focus):
        switch key {
        case .escape, .character("n"): next.modal = nil
        case .tab, .backTab, .left, .right: next.modal = .quit(focus == .cancel ? .confirm : .cancel)
        case .enter:
            next.modal = nil
            if focus == .confirm { return (next, [.quit]) }
        default: break
        }
    case .drain(var confirmation):
        switch key {
        case .escape: next.modal = nil
        case .tab, .backTab, .left, .right:
            confirmation.focus = confirmation.focus == .cancel ? .confirm : .cancel
            next.modal = .drain(confirmation)
        case .backspace where confirmation.requiresTyping:
            if !confirmation.typed.isEmpty { confirmation.typed.removeLast() }
            next.modal = .drain(confirmation)
        case .character(let character) where confirmation.requiresTyping:
            confirmation.typed.append(character)
            next.modal = .drain(confirmation)
        case .enter:
            guard confirmation.focus == .confirm else {
                next.modal = nil
                next.message = "cancelled"
                break
            }
            if confirmation.requiresTyping && confirmation.typed != confirmation.instance {
                next.message = "type \(confirmation.instance) to drain the last healthy instance of \(confirmation.service)"
                break
            }
            next.modal = nil
            return (next, [confirmation.undrain ? .undrain(service: confirmation.service, instance: confirmation.instance)
                                                : .drain(service: confirmation.service, instance: confirmation.instance)])
        default: break
        }
    case .strategy(var picker):
        let count = BalancingStrategyKind.allCases.count
        switch key {
        case .escape: next.modal = nil
        case .up, .character("k"):
            picker.index = (picker.index + count - 1) % count
            next.modal = .strategy(picker)
        case .down, .character("j"), .tab:
            picker.index = (picker.index + 1) % count
            next.modal = .strategy(picker)
        case .enter:
            next.modal = nil
            if picker.choice == picker.current {
                next.message = "\(picker.service) keeps \(picker.current.rawValue)"
                break
            }
            return (next, [.setStrategy(service: picker.service, strategy: picker.choice)])
        default: break
        }
    case .command(var text):
        switch key {
        case .escape: next.modal = nil
        case .backspace:
            if text.isEmpty { next.modal = nil } else {
                text.removeLast()
                next.modal = .command(text)
            }
        case .character(let character):
            text.append(character)
            next.modal = .command(text)
        case .enter:
            next.modal = nil
            return runCommandLine(next, text, snapshot: snapshot)
        default: break
        }
    }
    return (next, [])
}

/// `:` commands: the same actions by name.
func runCommandLine(_ state: ViewState, _ line: String, snapshot: GatewaySnapshot) -> (ViewState, [Command]) {
    var next = state
    let words = line.split(separator: " ").map(String.init)
    guard let verb = words.first else { return (next, []) }
    let actions: Set<String> = ["drain", "undrain", "strategy", "reload"]
    if actions.contains(verb) && state.readOnly {
        next.message = "read-only console: \(verb) is disabled"
        return (next, [])
    }
    switch (verb, words.count) {
    case ("drain", 2), ("undrain", 2):
        guard let service = snapshot.services.first(where: { $0.instances.contains { $0.id == words[1] } }),
              let instance = service.instances.first(where: { $0.id == words[1] }) else {
            next.message = "no instance \(words[1])"
            return (next, [])
        }
        let isDrained = instance.state == .draining || instance.state == .drained
        if verb == "undrain" {
            guard isDrained else {
                next.message = "\(instance.id) is not draining"
                return (next, [])
            }
            return (next, [.undrain(service: service.name, instance: instance.id)])
        }
        guard !isDrained else {
            next.message = "\(instance.id) is already \(instance.state.rawValue)"
            return (next, [])
        }
        // Same confirmation as the `d` key: the impact is shown and Cancel is the default.
        next.modal = .drain(drainConfirmation(service: service, instance: instance))
    case ("strategy", 3):
        guard snapshot.service(named: words[1]) != nil else {
            next.message = "no service \(words[1])"
            return (next, [])
        }
        guard let strategy = BalancingStrategyKind(rawValue: words[2]) else {
            next.message = "unknown strategy \(words[2]); one of \(BalancingStrategyKind.allCases.map(\.rawValue).joined(separator: ", "))"
            return (next, [])
        }
        return (next, [.setStrategy(service: words[1], strategy: strategy)])
    case ("reload", 1):
        return (next, [.reload])
    case ("window", 2):
        guard let window = ViewState.Window.allCases.first(where: { $0.label == words[1] }) else {
            next.message = "window is one of 10s, 1m, 15m"
            return (next, [])
        }
        next.window = window
    case ("theme", 2):
        guard let index = state.themeNames.firstIndex(of: words[1]) else {
            next.message = "no theme \(words[1]); one of \(state.themeNames.joined(separator: ", "))"
            return (next, [])
        }
        next.themeIndex = index
    case ("quit", 1), ("q", 1):
        next.modal = .quit(.cancel)
    case ("help", 1):
        next.showHelp = true
    default:
        next.message = "unknown command \"\(line)\" (drain ID, undrain ID, strategy SERVICE NAME, reload, window W, theme NAME, quit)"
    }
    return (next, [])
}
