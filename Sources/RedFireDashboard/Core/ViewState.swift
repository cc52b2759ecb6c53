import Foundation
import RedFireGateway

/// A key press as the console's core sees it (the terminal layer decodes ncurses codes into these).
public enum Key: Sendable, Hashable {
    case character(Character)
    case up, down, left, right
    case pageUp, pageDown, home, end
    case tab, backTab
    case enter, escape, backspace
    case resize
}

/// What the core asks the outside world to do. Actions go through `GatewayControl` as the `console`.
public enum Command: Sendable, Equatable {
    case drain(service: String, instance: String)
    case undrain(service: String, instance: String)
    case setStrategy(service: String, strategy: BalancingStrategyKind)
    case reload
    /// Shut the gateway down gracefully (confirmed by the operator).
    case quit
}

/// Everything about the console that is not the gateway's data: focus, selection, window, overlays.
public struct ViewState: Sendable, Equatable {
    public enum Pane: String, CaseIterable, Sendable {
        case services, routes, events
    }

    public enum Window: Int, CaseIterable, Sendable {
        case tenSeconds = 10
        case oneMinute = 60
        case fifteenMinutes = 900

        public var label: String {
            switch self {
            case .tenSeconds: return "10s"
            case .oneMinute: return "1m"
            case .fifteenMinutes: return "15m"
            }
        }

        public var seconds: Int { rawValue }
    }

    public enum DialogButton: Sendable, Equatable {
        case cancel, confirm
    }

    public struct DrainConfirmation: Sendable, Equatable {
        public var service: String
        public var instance: String
        /// Undrain instead of drain.
        public var undrain: Bool
        public var inFlight: Int
        /// WebSockets and event streams the instance still carries.
        public var streams = 0
        /// Healthy instances of the service left after the drain.
        public var healthyLeft: Int
        /// Draining the last healthy instance: the operator must type its id.
        public var requiresTyping: Bool
        public var typed = ""
        public var focus: DialogButton = .cancel
    }

    public struct StrategyPicker: Sendable, Equatable {
        public var service: String
        public var current: BalancingStrategyKind
        public var index: Int
        public var choice: BalancingStrategyKind { BalancingStrategyKind.allCases[index] }
    }

    public enum Modal: Sendable, Equatable {
        case drain(DrainConfirmation)
        case strategy(StrategyPicker)
        case command(String)
        case quit(DialogButton)
    }

    /// What `Enter` opened.
    public enum Detail: Sendable, Equatable {
        case service(String)
        case instance(service: String, id: String)
        case route(String)
    }

    public var focus: Pane = .services
    /// Selected row of the services pane (services and their instances, filtered).
    public var serviceRow = 0
    public var routeRow = 0
    /// Scroll offset of the events pane (0 = newest at the top).
    public var eventOffset = 0
    public var window: Window = .oneMinute
    /// The screen is frozen on the snapshot taken when pausing; navigation still works.
    public var paused = false
    public var themeNames: [String]
    public var themeIndex = 0
    public var showHelp = false
    public var filter = ""
    public var editingFilter = false
    public var modal: Modal?
    public var detail: Detail?
    /// A one-line answer to the last action, shown in the footer until the next key.
    public var message: String?
    public var readOnly: Bool
    /// Where the log goes while the console owns the terminal (shown in the footer).
    public var logPath: String?
    /// Wall-clock time of the frame (for STALE and event times).
    public var now = Date(timeIntervalSince1970: 0)
    /// Set once shutdown began: requests still in flight.
    public var shuttingDown: Int?
    /// Offset of local time from UTC for event times.
    public var utcOffsetSeconds = 0

    public init(themeNames: [String] = Theme.builtinNames, themeIndex: Int = 0, readOnly: Bool = false, logPath: String? = nil) {
        self.themeNames = themeNames
        self.themeIndex = themeIndex
        self.readOnly = readOnly
        self.logPath = logPath
    }

    public var themeName: String { themeNames.isEmpty ? "" : themeNames[themeIndex % themeNames.count] }
}

/// One row of the services pane.
public enum ServiceRow: Sendable, Equatable {
    case service(GatewaySnapshot.Service)
    case instance(GatewaySnapshot.Service, GatewaySnapshot.Instance)

    var serviceName: String {
        switch self {
        case .service(let service), .instance(let service, _): return service.name
        }
    }
}

extension ViewState {
    /// Services and their instances as listed, narrowed by the filter (a service matches when its
    /// name or any of its instances matches; an instance when its id, address or state matches).
    public func serviceRows(_ snapshot: GatewaySnapshot) -> [ServiceRow] {
        let needle = filter.lowercased()
        var rows: [ServiceRow] = []
        for service in snapshot.services {
            let serviceMatches = needle.isEmpty || service.name.lowercased().contains(needle)
            let instances = service.instances.filter { instance in
                serviceMatches || instance.id.lowercased().contains(needle) || instance.address.lowercased().contains(needle)
                    || instance.state.rawValue.contains(needle)
            }
            guard serviceMatches || !instances.isEmpty else { continue }
            rows.append(.service(service))
            rows += instances.map { .instance(service, $0) }
        }
        return rows
    }

    public func routeRows(_ snapshot: GatewaySnapshot) -> [GatewaySnapshot.Route] {
        let needle = filter.lowercased()
        guard !needle.isEmpty else { return snapshot.routes }
        return snapshot.routes.filter {
            $0.name.lowercased().contains(needle) || $0.prefix.lowercased().contains(needle) || $0.service.lowercased().contains(needle)
        }
    }

    /// The selected row of the services pane, if any.
    public func selectedServiceRow(_ snapshot: GatewaySnapshot) -> ServiceRow? {
        let rows = serviceRows(snapshot)
        guard !rows.isEmpty else { return nil }
        return rows[min(serviceRow, rows.count - 1)]
    }

    public func selectedRoute(_ snapshot: GatewaySnapshot) -> GatewaySnapshot.Route? {
        let rows = routeRows(snapshot)
        guard !rows.isEmpty else { return nil }
        return rows[min(routeRow, rows.count - 1)]
    }
}

/// The keys the console answers to, as the help overlay lists them. The reducer tests walk this list.
public enum KeyHelp {
    public struct Entry: Sendable {
        public var keys: String
        public var action: String
        /// Only when the console may act (not `--read-only`).
        public var acts: Bool
    }

    public static let entries: [Entry] = [
        Entry(keys: "↑ ↓  j k", action: "move the selection", acts: false),
        Entry(keys: "PgUp PgDn  g G", action: "page up / down, first / last", acts: false),
        Entry(keys: "Tab  Shift-Tab", action: "next / previous pane", acts: false),
        Entry(keys: "Enter", action: "details (latency histogram, checks)", acts: false),
        Entry(keys: "Esc", action: "back: close details, dialog or filter", acts: false),
        Entry(keys: "/", action: "filter services, instances and routes", acts: false),
        Entry(keys: "p", action: "pause / resume (screen frozen, still navigable)", acts: false),
        Entry(keys: "w", action: "latency and rate window: 10s, 1m, 15m", acts: false),
        Entry(keys: "t", action: "next colour theme", acts: false),
        Entry(keys: "d", action: "drain / undrain the selected instance", acts: true),
        Entry(keys: "s", action: "balancing strategy of the selected service", acts: true),
        Entry(keys: ":", action: "command: drain ID, undrain ID, strategy SVC NAME, reload, window W, theme NAME, quit", acts: false),
        Entry(keys: "?", action: "this help", acts: false),
        Entry(keys: "q", action: "quit (asks first; in-flight requests finish)", acts: false),
    ]
}
