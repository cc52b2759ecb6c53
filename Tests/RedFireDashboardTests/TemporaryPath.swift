import Foundation
import Synchronization

/// Paths for a test's files under the system's temporary directory — a data directory, a log, a
/// configuration — unique per call and removed, with everything under them, when the test process
/// exits (however the test that made them ended).
enum TemporaryPath {
    private static let made = Mutex<[String]>([])

    /// `<temporary directory>/<prefix>-<UUID>` followed by `suffix`: an extension (`.log`), or a file
    /// inside it (`/gateway.log`). The entry directly under the temporary directory is removed at exit.
    static func make(_ prefix: String, _ suffix: String = "") -> String {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)").path
        let top = suffix.hasPrefix("/") ? base : base + suffix
        made.withLock { made in
            if made.isEmpty { atexit { TemporaryPath.removeAll() } }
            made.append(top)
        }
        return base + suffix
    }

    private static func removeAll() {
        for path in made.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: path) }
    }
}
