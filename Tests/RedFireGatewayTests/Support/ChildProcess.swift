import Foundation
import Synchronization

/// A program run as a child of the test process — the gateway's own executable, PostgreSQL's tools —
/// started with `posix_spawn`, reaped by a thread of its own with `waitpid`.
///
/// Not Foundation's `Process`: on Linux, `Process.run()` scans `/proc/self/fd` with a read of the whole
/// 256-byte `d_name` of each entry, which runs past glibc's buffer and crashes the test process now and
/// then when it holds many descriptors (swift-corelibs-foundation PR #5472; seen here while a test held
/// a thousand client connections). Its `waitUntilExit` also once missed a child's exit.
///
/// The child starts with default signal dispositions, an empty signal mask and no descriptor of this
/// process above standard error (`posix_spawn_file_actions_addclosefrom_np`): an inherited listening
/// socket would keep a stopped gateway's port accepting, an inherited pipe would keep another child's
/// output open.
final class ChildProcess: Sendable {
    /// Where the child's standard output and error go.
    enum Output {
        /// Two pipes, read to the end by threads of this process (`output`, `errorOutput`).
        case pipes
        /// Both to one file (for daemons that outlive the child and would hold a pipe open).
        case file(String)
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    let pid: pid_t
    /// The raw `waitpid` status once the child has exited.
    private let waitStatus = Mutex<Int32?>(nil)
    private let exited = DispatchSemaphore(value: 0)
    private let stdout: PipeReader?
    private let stderr: PipeReader?

    /// - Parameter environment: added to this process's environment for the child.
    /// - Parameter input: written to the child's standard input, which is then closed; nil: `/dev/null`.
    init(_ argv: [String], environment: [String: String] = [:], input: String? = nil, output: Output = .pipes) throws {
        guard let closeFrom = Self.closeFrom else { throw Failure(description: "posix_spawn_file_actions_addclosefrom_np is missing (glibc 2.34+)") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }

        var parentEnds: [Int32] = []   // ours: closed on failure, or handed to readers / the input writer
        var childEnds: [Int32] = []    // the child's: closed here once it is spawned
        func makePipe() throws -> (read: Int32, write: Int32) {
            var ends: [Int32] = [0, 0]
            guard pipe(&ends) == 0 else { throw Failure(description: "pipe: errno \(errno)") }
            // Close-on-exec: no other child started meanwhile (by anything but this type) inherits it.
            for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
            return (ends[0], ends[1])
        }
        do {
            if let _ = input {
                let pipe = try makePipe()
                posix_spawn_file_actions_adddup2(&actions, pipe.read, 0)
                parentEnds.append(pipe.write); childEnds.append(pipe.read)
            } else {
                posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            }
            switch output {
            case .pipes:
                for target in [Int32(1), 2] {
                    let pipe = try makePipe()
                    posix_spawn_file_actions_adddup2(&actions, pipe.write, target)
                    parentEnds.append(pipe.read); childEnds.append(pipe.write)
                }
            case .file(let path):
                posix_spawn_file_actions_addopen(&actions, 1, path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
                posix_spawn_file_actions_adddup2(&actions, 1, 2)
            }
        } catch {
            (parentEnds + childEnds).forEach { close($0) }
            throw error
        }
        guard closeFrom(&actions, 3) == 0 else { throw Failure(description: "posix_spawn_file_actions_addclosefrom_np failed") }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        var defaults = sigset_t()
        sigfillset(&defaults)
        sigdelset(&defaults, SIGKILL)
        sigdelset(&defaults, SIGSTOP)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let variables = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }.map { "\($0.key)=\($0.value)" }
        let cArguments = argv.map { strdup($0) } + [nil]
        let cEnvironment = variables.map { strdup($0) } + [nil]
        defer { (cArguments + cEnvironment).forEach { free($0) } }
        var spawnedPID: pid_t = 0
        let spawned = posix_spawn(&spawnedPID, argv[0], &actions, &attributes, cArguments, cEnvironment)
        childEnds.forEach { close($0) }
        guard spawned == 0 else {
            parentEnds.forEach { close($0) }
            throw Failure(description: "cannot start \(argv[0]): errno \(spawned)")
        }
        let pid = spawnedPID
        self.pid = pid

        var ends = parentEnds[...]
        if let input {
            let writeEnd = ends.removeFirst()
            Array(input.utf8).withUnsafeBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = write(writeEnd, bytes.baseAddress! + offset, bytes.count - offset)
                    if written > 0 { offset += written } else if errno != EINTR { break }
                }
            }
            close(writeEnd)
        }
        if case .pipes = output {
            stdout = PipeReader(ends.removeFirst())
            stderr = PipeReader(ends.removeFirst())
        } else {
            stdout = nil
            stderr = nil
        }

        Thread { [self] in
            var status: Int32 = 0
            while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
            waitStatus.withLock { $0 = status }
            exited.signal()
        }.start()
    }

    var isRunning: Bool { waitStatus.withLock { $0 } == nil }

    /// The exit code when the child exited by itself; nil while it runs or when a signal ended it.
    var exitCode: Int32? {
        guard let status = waitStatus.withLock({ $0 }), status & 0x7f == 0 else { return nil }
        return (status >> 8) & 0xff
    }

    /// Sends a signal while the child has not been reaped (its pid cannot have been reused yet).
    func signal(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    func terminate() { signal(SIGTERM) }

    /// Blocks until the child exits; returns its exit code (nil: ended by a signal).
    func waitUntilExit() -> Int32? {
        exited.wait()
        exited.signal()
        return exitCode
    }

    /// What the child wrote to standard output / error so far (`.pipes` only).
    var output: String { stdout?.text ?? "" }
    var errorOutput: String { stderr?.text ?? "" }
    /// Both pipes read to their end (the child and everything it started closed them).
    var outputFinished: Bool { (stdout?.isFinished ?? true) && (stderr?.isFinished ?? true) }

    /// Reads one pipe to its end on a thread of its own (blocking reads), so chunks arrive in order and
    /// multi-byte characters are never split when decoded.
    private final class PipeReader: Sendable {
        private let bytes = Mutex<[UInt8]>([])
        private let finished = Mutex(false)

        init(_ descriptor: Int32) {
            Thread { [self] in
                var buffer = [UInt8](repeating: 0, count: 65_536)
                while true {
                    let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                    if count > 0 {
                        bytes.withLock { $0.append(contentsOf: buffer[..<count]) }
                    } else if count < 0 && errno == EINTR {
                        continue
                    } else {
                        break
                    }
                }
                close(descriptor)
                finished.withLock { $0 = true }
            }.start()
        }

        var text: String { String(decoding: bytes.withLock { $0 }, as: UTF8.self) }
        var isFinished: Bool { finished.withLock { $0 } }
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34+), which its Swift module does not export.
    private static let closeFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()
}
