#if canImport(Glibc)
import Glibc
#endif
import Logging
import ServiceLifecycle

/// Gives memory back to the system after a burst of connections. The allocator keeps freed memory for
/// reuse, so the resident size after thousands of slow readers left stays near its peak. Once a second
/// the open connection count is sampled; when a burst (at least `burstConnections` open) has fallen to
/// half, `malloc_trim` releases the free pages — rarely, never per request.
struct MemoryReturn: Service {
    let connections: ConnectionCount
    let logger: Logger

    /// Open connections that make a burst worth trimming after.
    static let burstConnections = 256

    func run() async throws {
        var peak = 0
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
            let open = connections.open
            peak = max(peak, open)
            guard peak >= Self.burstConnections, open <= peak / 2 else { continue }
            let before = Self.residentBytes()
            Self.trim()
            logger.debug("returned free memory after a burst of connections", metadata: [
                "peak_connections": .stringConvertible(peak), "open_connections": .stringConvertible(open),
                "resident_mb_before": .stringConvertible(before / (1 << 20)), "resident_mb_after": .stringConvertible(Self.residentBytes() / (1 << 20)),
            ])
            peak = open
        }
    }

    /// glibc's `malloc_trim(0)`: returns free pages of every arena to the system. Looked up at run time
    /// (Swift's Glibc module does not export it; other C libraries may not have it).
    static func trim() {
        guard let trim = Self.mallocTrim else { return }
        _ = trim(0)
    }

    private static let mallocTrim: (@convention(c) (Int) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
    }()

    /// Resident set size from `/proc/self/statm` (its second field, in pages); 0 where unknown.
    static func residentBytes() -> Int {
        guard let file = fopen("/proc/self/statm", "r") else { return 0 }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 128)
        guard fgets(&line, Int32(line.count), file) != nil else { return 0 }
        let length = line.firstIndex(of: 0) ?? line.count
        let fields = String(decoding: line[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self).split(separator: " ")
        guard fields.count >= 2, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
