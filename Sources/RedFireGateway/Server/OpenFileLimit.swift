#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import Synchronization

/// The process's open-file limit: every client connection takes a descriptor, and a forwarded request
/// another for its upstream connection. Many systems start processes with a soft limit of 1,024.
package enum OpenFileLimit {
    /// The soft and hard `RLIMIT_NOFILE`.
    package static var current: (soft: Int, hard: Int) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return (0, 0) }
        return (clamp(limit.rlim_cur), clamp(limit.rlim_max))
    }

    /// Raises the soft limit to the hard limit (what nginx's `worker_rlimit_nofile` and HAProxy do at
    /// start); returns the soft limit before and after, or nil when it was already there.
    @discardableResult
    package static func raiseToHardLimit() -> (before: Int, after: Int)? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return nil }
        let before = clamp(limit.rlim_cur)
        limit.rlim_cur = limit.rlim_max
        guard setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        return (before, clamp(limit.rlim_cur))
    }

    /// Raises the soft limit and says what the gateway can hold: an info line when raised, a warning
    /// when the limit is low for a gateway.
    static func prepare(logger: Logger) {
        if let raised = raiseToHardLimit() {
            logger.info("raised the open-file limit", metadata: ["from": .stringConvertible(raised.before), "to": .stringConvertible(raised.after)])
        }
        let limit = current.soft
        if limit > 0, limit < 16_384 {
            logger.warning("the open-file limit is low for a gateway: each client connection takes a descriptor, each forwarded request another",
                           metadata: ["limit": .stringConvertible(limit), "advice": "raise LimitNOFILE / ulimit -n (hard limit) to 65536 or more"])
        }
    }

    /// Descriptors the process has open now (Linux: the entries of `/proc/self/fd`); nil where unknown.
    package static func openDescriptors() -> Int? {
        guard let directory = opendir("/proc/self/fd") else { return nil }
        defer { closedir(directory) }
        // Only the name's first byte is read: a record is `d_reclen` bytes long, not `sizeof(dirent)`, and
        // one at the end of glibc's buffer may sit before an unmapped page.
        let nameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!
        var count = 0
        while let entry = readdir(directory) {
            if UnsafeRawPointer(entry).load(fromByteOffset: nameOffset, as: UInt8.self) != UInt8(ascii: ".") { count += 1 }
        }
        return max(0, count - 1)  // the directory stream's own descriptor
    }

    private static func clamp(_ value: rlim_t) -> Int {
        value >= rlim_t(Int.max) ? Int.max : Int(value)
    }
}
