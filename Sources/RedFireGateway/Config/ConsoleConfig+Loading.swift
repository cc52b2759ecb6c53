import Foundation
import HTTPTypes
import Yams

extension ConsoleConfig {
    /// `console:`
    mutating func load(_ console: ConfigObject, reader: ConfigReader) {
        if let theme = console.string("theme") {
            if theme.isEmpty { reader.report(console.childPath("theme"), console.node("theme"), "must not be empty") } else { self.theme = theme }
        }
        if let rate = console.double("refresh_rate", in: 1...30) { self.refreshRate = rate }
        if let file = console.string("log_file") {
            if file.isEmpty { reader.report(console.childPath("log_file"), console.node("log_file"), "must not be empty") } else { self.logFile = file }
        }
        if let readOnly = console.bool("read_only") { self.readOnly = readOnly }
        if let deadline = console.duration("drain_deadline") { self.drainDeadline = deadline == .zero ? nil : deadline }
        console.finish()
    }
}

extension AccessLogConfig {
    /// `access_log:`
    mutating func load(_ log: ConfigObject, reader: ConfigReader) {
        if let enabled = log.bool("enabled") { self.enabled = enabled }
        if let path = log.string("path") {
            if path.isEmpty { reader.report(log.childPath("path"), log.node("path"), "must not be empty (stdout or a file)") }
            else { self.path = path == "stdout" ? path : reader.resolve(path) }
        }
        if let buffer = log.int("buffer", in: 100...10_000_000) { self.buffer = buffer }
        log.finish()
    }
}
