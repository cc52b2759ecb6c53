import Foundation
import NIOCore
import ServiceLifecycle
import Synchronization

/// Lines appended to a bounded buffer (a short lock, no I/O on the caller's thread — an event loop, a
/// request's task, whoever logs) and written to a file or standard output by a background service every
/// 100 ms. Under overload lines are dropped and counted (`dropped`) instead of stalling the caller. The
/// access log and the console's log file both write through one.
package final class BufferedLogWriter: Service, Sendable {
    /// A file path, or `stdout`.
    package let path: String
    let capacity: Int
    private let pending = Mutex<[ByteBuffer]>([])
    private let handle = Mutex<FileHandle?>(nil)
    private let droppedCounter = Atomic<Int>(0)
    private let writtenCounter = Atomic<Int>(0)

    package init(path: String, capacity: Int = 10_000) {
        self.path = path
        self.capacity = capacity
    }

    package var dropped: Int { droppedCounter.load(ordering: .relaxed) }
    package var written: Int { writtenCounter.load(ordering: .relaxed) }

    /// Opens (appending) or creates the file, its directory too; done by `run()` if not before, so a
    /// caller that wants a clear error at start opens first.
    package func open() throws {
        try handle.withLock { handle in
            guard handle == nil else { return }
            if path == "stdout" {
                handle = FileHandle.standardOutput
                return
            }
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
            if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
            guard let opened = FileHandle(forWritingAtPath: path) else {
                throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
            }
            opened.seekToEndOfFile()
            handle = opened
        }
    }

    /// Queues one line (with its newline).
    func append(_ line: ByteBuffer) {
        let accepted = pending.withLock { lines in
            guard lines.count < capacity else { return false }
            lines.append(line)
            return true
        }
        if !accepted { droppedCounter.add(1, ordering: .relaxed) }
    }

    /// Queues `text` as one line, after the current UTC time (RFC 3339, milliseconds) and a space.
    package func append(timestamped text: String) {
        var line = ByteBuffer()
        line.reserveCapacity(25 + text.utf8.count)
        DecimalText.writeTimestamp(to: &line)
        line.writeInteger(UInt8(ascii: " "))
        line.writeString(text)
        line.writeInteger(UInt8(ascii: "\n"))
        append(line)
    }

    /// Writes buffered lines every 100 ms until shutdown, then the rest.
    package func run() async throws {
        try open()
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            flush()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(100)) }
        }
        // Services stop in reverse order: what was started before this has stopped, so this is the last line.
        flush()
    }

    /// Writes what is queued now, on the calling thread.
    package func flush() {
        let lines = pending.withLock { lines -> [ByteBuffer] in
            let taken = lines
            lines.removeAll(keepingCapacity: true)
            return taken
        }
        guard !lines.isEmpty else { return }
        var data = Data()
        for line in lines { data.append(contentsOf: line.readableBytesView) }
        handle.withLock { $0?.write(data) }
        writtenCounter.add(lines.count, ordering: .relaxed)
    }

    /// Writes what is queued and closes the file.
    package func close() {
        flush()
        handle.withLock { handle in
            if handle !== FileHandle.standardOutput { try? handle?.close() }
            handle = nil
        }
    }
}
