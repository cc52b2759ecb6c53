import Foundation
import RedFireGateway

/// Draws one frame. Pure: the same state, snapshot, capabilities and size give the same buffer, so
/// snapshot tests can compare text and style masks. The theme only contributes its name (the
/// buffer holds roles; the terminal layer maps roles to the theme's colours).
public func render(_ state: ViewState, _ snapshot: GatewaySnapshot, theme: Theme, capabilities: TerminalCapabilities, size: ScreenSize) -> ScreenBuffer {
    var frame = Frame(state: state, snapshot: snapshot, themeName: theme.name, unicode: capabilities.unicode, size: size)
    frame.draw()
    return frame.buffer
}

struct Frame {
    let state: ViewState
    let snapshot: GatewaySnapshot
    let themeName: String
    /// The locale prints Unicode; otherwise glyphs are ASCII and everything drawn is transliterated.
    let unicode: Bool
    let glyphs: Glyphs
    let size: ScreenSize
    var buffer: ScreenBuffer

    init(state: ViewState, snapshot: GatewaySnapshot, themeName: String, unicode: Bool, size: ScreenSize) {
        self.state = state
        self.snapshot = snapshot
        self.themeName = themeName
        self.unicode = unicode
        self.glyphs = unicode ? .unicode : .ascii
        self.size = size
        self.buffer = ScreenBuffer(size: size)
        self.buffer.asciiOnly = !unicode
    }

    struct Rect {
        var row: Int
        var column: Int
        var width: Int
        var height: Int
    }

    mutating func draw() {
        guard size.width >= ScreenSize.minimum.width && size.height >= ScreenSize.minimum.height else {
            drawTooSmall()
            return
        }
        drawHeader()
        let body = Rect(row: 2, column: 0, width: size.width, height: size.height - 3)
        if let detail = state.detail {
            drawDetail(detail, in: body)
        } else if size.width >= 120 {
            let rightWidth = max(40, size.width * 3 / 10)
            let left = Rect(row: body.row, column: 0, width: size.width - rightWidth - 1, height: body.height)
            let right = Rect(row: body.row, column: size.width - rightWidth, width: rightWidth, height: body.height)
            for row in body.row..<(body.row + body.height) { buffer.put(unicode ? "│" : "|", row: row, column: left.width, role: .border) }
            let servicesHeight = left.height * 3 / 5
            drawServices(Rect(row: left.row, column: 0, width: left.width, height: servicesHeight))
            drawRoutes(Rect(row: left.row + servicesHeight, column: 0, width: left.width, height: left.height - servicesHeight))
            let histogramHeight = right.height / 2
            let limitHeight = max(4, right.height / 6)
            drawHistogramPane(Rect(row: right.row, column: right.column, width: right.width, height: histogramHeight))
            drawRateLimits(Rect(row: right.row + histogramHeight, column: right.column, width: right.width, height: limitHeight))
            drawEvents(Rect(row: right.row + histogramHeight + limitHeight, column: right.column, width: right.width,
                            height: right.height - histogramHeight - limitHeight))
        } else {
            let eventsHeight = body.height < 30 ? 4 : body.height / 4
            let servicesHeight = (body.height - eventsHeight) * 3 / 5
            let routesHeight = body.height - eventsHeight - servicesHeight
            drawServices(Rect(row: body.row, column: 0, width: body.width, height: servicesHeight))
            drawRoutes(Rect(row: body.row + servicesHeight, column: 0, width: body.width, height: routesHeight))
            drawEvents(Rect(row: body.row + servicesHeight + routesHeight, column: 0, width: body.width,
                            height: body.height - servicesHeight - routesHeight))
        }
        drawFooter()
        if state.showHelp { drawHelp() }
        if let modal = state.modal { drawModal(modal) }
        if let inFlight = state.shuttingDown { drawShutdown(inFlight) }
    }
}
