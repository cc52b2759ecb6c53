#if canImport(Glibc)
import Glibc
#endif
import Foundation
import NIOCore
import ServiceLifecycle
import Synchronization

/// Lines written into one bounded buffer (a short lock, no I/O on the caller's thread — an event loop,
/// a request's task, whoever logs) and written to a file or standard output by a background service
/// every 100 ms. Under overload lines are dropped and counted (`dropped`) instead of stalling the caller.
/// The access log and the console's log file both write through one.
///
/// A line is formatted straight into the shared buffer (no buffer of its own per line, nothing to free
/// on another thread), and a flush hands the filled buffer to the file descriptor in one `write` while
/// lines go on into the other one (two buffers, swapped: neither is reallocated once grown).
package final class BufferedLogWriter: Service, Sendable {
    /// A file path, or `stdout`.
    package let path: String
    /// Lines held at most between two flushes.
    let capacity: Int
    private struct Pending {
        var bytes = ByteBuffer()
        var lines = 0
    }
    private let pending = Mutex(Pending())
    /// The buffer being written out; only a flush touches it (the lock orders flushes).
    private let spare = Mutex(ByteBuffer())
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

    /// Queues one line that `write` formats in place (its newline included), under the lock: `write`
    /// only writes bytes.
    func appendLine(_ write: (inout ByteBuffer) -> Void) {
        let accepted = pending.withLock { pending in
            guard pending.lines < capacity else { return false }
            write(&pending.bytes)
            pending.lines += 1
            return true
        }
        if !accepted { droppedCounter.add(1, ordering: .relaxed) }
    }

    /// Queues `text` as one line, after the current UTC time (RFC 3339, milliseconds) and a space.
    package func append(timestamped text: String) {
        appendLine { line in
            DecimalText.writeTimestamp(to: &line)
            line.writeInteger(UInt8(ascii: " "))
            line.writeString(text)
            line.writeInteger(UInt8(ascii: "\n"))
        }
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

    /// Writes what is queued now, on the calling thread. A write the file refuses (a full disk, a closed
    /// standard output) drops those lines and counts them; it never stops the gateway.
    package func flush() {
        spare.withLock { spare in
            spare.clear()
            let lines = pending.withLock { pending -> Int in
                swap(&pending.bytes, &spare)
                defer { pending.lines = 0 }
                return pending.lines
            }
            guard lines > 0 else { return }
            let complete = handle.withLock { handle -> Bool in
                guard let descriptor = handle?.fileDescriptor else { return false }
                return spare.withUnsafeReadableBytes { Self.writeAll($0, to: descriptor) }
            }
            if complete {
                writtenCounter.add(lines, ordering: .relaxed)
            } else {
                droppedCounter.add(lines, ordering: .relaxed)
            }
        }
    }

    /// `write(2)` until every byte is written (a pipe or terminal may take part of it); false on an error.
    private static func writeAll(_ bytes: UnsafeRawBufferPointer, to descriptor: Int32) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += written
        }
        return true
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
