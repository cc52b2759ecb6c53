import Foundation
import Logging
import NIOPosix
import Synchronization

/// Operator decisions that must survive a restart: drained instances and chosen strategies. Stored
/// as a small JSON file (`operator-state.json`) in the data directory, written atomically (temporary
/// file, then rename) after every change, and applied at startup before the gateway serves.
struct OperatorStateStore: Sendable {
    typealias State = OperatorState

    let path: String
    let logger: Logger

    init(directory: String, logger: Logger) {
        self.path = (directory as NSString).appendingPathComponent("operator-state.json")
        self.logger = logger
    }

    func load() -> State? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        do {
            return try JSONDecoder().decode(State.self, from: data)
        } catch {
            logger.error("ignoring unreadable operator state", metadata: ["path": .string(path)])
            return nil
        }
    }

    func save(_ state: State) {
        do {
            let directory = (path as NSString).deletingLastPathComponent
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let temporary = path + ".tmp"
            try encoder.encode(state).write(to: URL(fileURLWithPath: temporary))
            // rename(2) replaces the old file atomically: a crash leaves either the old or the new state.
            guard rename(temporary, path) == 0 else { throw CocoaError(.fileWriteUnknown) }
        } catch {
            logger.error("could not save operator state; drain and strategy choices will not survive a restart",
                         metadata: ["path": .string(path), "error": .string("\(error)")])
        }
    }
}
