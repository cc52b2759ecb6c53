import Foundation
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Sends bytes exactly as given over a plain TCP socket (no client library to normalize the target or
/// fix the framing) and reads the response until the server closes or `Content-Length`/chunked framing
/// says it is complete.
enum RawHTTP {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// `METHOD TARGET HTTP/1.1` with `Host`, `Connection: close` and the given header lines.
    static func send(port: Int, method: String = "GET", target: String, headers: [(String, String)] = []) async throws -> GatewayHarness.Reply {
        var text = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        text += "\r\n"
        return try await exchange(port: port, bytes: Array(text.utf8))
    }

    /// The blocking socket calls run on a pool of their own, never on the concurrency pool's few threads
    /// (blocking those would starve the gateway under test of the threads it answers on) nor on NIO's
    /// shared blocking-work pool (two threads here: one test's long blocking reads — thousands of
    /// connections, reads that wait out a timeout — would delay another test's first byte past its
    /// header timeout, and the gateway's own file work).
    static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 16)
        pool.start()
        return pool
    }()

    /// The blocking socket calls run on `pool`.
    static func exchange(port: Int, bytes: [UInt8], timeoutSeconds: Int = 10) async throws -> GatewayHarness.Reply {
        try await RawHTTP.pool.runIfActive {
            let fd = try connectedSocket(port: port)
            defer { close(fd) }
            var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var sent = 0
            while sent < bytes.count {
                let written = bytes[sent...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                guard written > 0 else { throw Failure(description: "write failed") }
                sent += written
            }
            var received: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count <= 0 { break }
                received.append(contentsOf: buffer[0..<count])
                if let reply = parse(received) { return reply }
            }
            guard let reply = parse(received, closed: true) else {
                throw Failure(description: "incomplete response: \(String(decoding: received, as: UTF8.self))")
            }
            return reply
        }
    }

    /// A blocking TCP socket connected to 127.0.0.1:`port`.
    static func connectedSocket(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw Failure(description: "connect failed")
        }
        return fd
    }

    /// Where the head's blank line starts (`\r\n\r\n`); nil until it arrived.
    static func headEnd(_ bytes: [UInt8]) -> Int? {
        bytes.withUnsafeBufferPointer { buffer in
            guard buffer.count >= 4 else { return nil }
            for index in 0...(buffer.count - 4) where buffer[index] == 13 && buffer[index + 1] == 10 && buffer[index + 2] == 13 && buffer[index + 3] == 10 {
                return index
            }
            return nil
        }
    }

    /// The response, once complete.
    /// `decodingBody` false: a body framed by `Content-Length` is skipped, not decoded (the reply's body
    /// is empty) — decoding binary bytes as UTF-8 costs ~60 ms per 64 KiB in a debug build.
    static func parse(_ bytes: [UInt8], closed: Bool = false, decodingBody: Bool = true) -> GatewayHarness.Reply? {
        guard let end = headEnd(bytes) else { return nil }
        let headText = String(decoding: bytes[..<end], as: UTF8.self)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { return nil }
        var headers = HTTPHeaders()
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.add(name: String(line[..<colon]), value: line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        if let length = headers.first(name: "Content-Length").flatMap(Int.init) {
            // Not copied first: a client reading many large responses calls this for every read.
            guard bytes.count - (end + 4) >= length else { return nil }
            guard decodingBody else { return GatewayHarness.Reply(status: status, headers: headers, body: "") }
            return GatewayHarness.Reply(status: status, headers: headers, body: String(decoding: bytes[(end + 4)..<(end + 4 + length)], as: UTF8.self))
        }
        let body = Array(bytes[(end + 4)...])
        if headers.first(name: "Transfer-Encoding")?.lowercased() == "chunked" {
            var decoded: [UInt8] = []
            var index = 0
            while true {
                guard let lineEnd = body.indices.dropFirst(index).dropLast().first(where: { body[$0] == 13 && body[$0 + 1] == 10 }) else { return nil }
                guard let size = Int(String(decoding: body[index..<lineEnd], as: UTF8.self).split(separator: ";")[0], radix: 16) else { return nil }
                if size == 0 { return GatewayHarness.Reply(status: status, headers: headers, body: String(decoding: decoded, as: UTF8.self)) }
                guard body.count >= lineEnd + 2 + size + 2 else { return nil }
                decoded.append(contentsOf: body[(lineEnd + 2)..<(lineEnd + 2 + size)])
                index = lineEnd + 2 + size + 2
            }
        }
        if status == 204 || status == 304 || (100..<200).contains(status) {
            return GatewayHarness.Reply(status: status, headers: headers, body: "")
        }
        return closed ? GatewayHarness.Reply(status: status, headers: headers, body: String(decoding: body, as: UTF8.self)) : nil
    }
}

/// One client connection driven step by step (write some bytes, read a response, wait for the server to
/// close), for tests of what the gateway does with a connection over time. Blocking calls run on NIO's
/// blocking-work pool.
final class RawConnection: @unchecked Sendable {
    private let fd: Int32
    private var received: [UInt8] = []

    init(port: Int) async throws {
        fd = try await RawHTTP.pool.runIfActive { try RawHTTP.connectedSocket(port: port) }
    }

    deinit { close(fd) }

    /// False once the server has closed (the write fails).
    @discardableResult
    func write(_ text: String) async throws -> Bool {
        let bytes = Array(text.utf8)
        return try await RawHTTP.pool.runIfActive { [fd] in
            var sent = 0
            while sent < bytes.count {
                let written = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                guard written > 0 else { return false }
                sent += written
            }
            return true
        }
    }

    /// Shuts down the sending side (FIN): the server sees the end of the client's input; reading still works.
    func closeWrite() {
        shutdown(fd, Int32(SHUT_WR))
    }

    /// The next complete response; fails if the server closes or nothing arrives in time.
    func readResponse(timeoutSeconds: Int = 10, decodingBody: Bool = true) async throws -> GatewayHarness.Reply {
        try await RawHTTP.pool.runIfActive { [self] in
            setTimeout(seconds: timeoutSeconds)
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                if let (reply, used) = RawConnection.complete(received, decodingBody: decodingBody) {
                    received.removeFirst(used)
                    return reply
                }
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                guard count > 0 else { throw RawHTTP.Failure(description: "no complete response: \(String(decoding: received, as: UTF8.self))") }
                received.append(contentsOf: buffer[0..<count])
            }
        }
    }

    /// Waits until the server closes the connection (true) or `timeoutSeconds` pass (false); returns what
    /// arrived meanwhile.
    func waitForClose(timeoutSeconds: Int = 10) async throws -> (closed: Bool, bytes: String) {
        try await RawHTTP.pool.runIfActive { [self] in
            setTimeout(seconds: timeoutSeconds)
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count == 0 || (count < 0 && errno == ECONNRESET) { return (true, String(decoding: received, as: UTF8.self)) }
                if count < 0 { return (false, String(decoding: received, as: UTF8.self)) }
                received.append(contentsOf: buffer[0..<count])
            }
        }
    }

    /// Reads a response with `Content-Length` slowly: after `pauseAfter` bytes it stops reading for
    /// `pauseSeconds`, then reads the rest. Returns the head and the number of body bytes.
    func readSlowly(pauseAfter: Int, pauseSeconds: UInt32) async throws -> (head: String, bodyBytes: Int) {
        try await RawHTTP.pool.runIfActive { [self] in
            setTimeout(seconds: 10)
            var buffer = [UInt8](repeating: 0, count: 16384)
            var bytes: [UInt8] = []
            var paused = false
            var total = 0
            var head: String?
            var expected = Int.max
            while total < expected {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                guard count > 0 else { break }
                if head == nil {
                    bytes.append(contentsOf: buffer[0..<count])
                    if let end = RawHTTP.headEnd(bytes) {
                        let text = String(decoding: bytes[..<end], as: UTF8.self)
                        head = text
                        let lengthLine = text.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                        expected = lengthLine.flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
                        total = bytes.count - (end + 4)
                    }
                } else {
                    total += count
                }
                if !paused, total >= pauseAfter {
                    paused = true
                    sleep(pauseSeconds)
                }
            }
            return (head ?? "", total)
        }
    }

    private func setTimeout(seconds: Int) {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// A complete response at the start of `bytes` (framed by Content-Length) and how many bytes it took.
    static func complete(_ bytes: [UInt8], decodingBody: Bool = true) -> (GatewayHarness.Reply, Int)? {
        guard let end = RawHTTP.headEnd(bytes) else { return nil }
        guard let reply = RawHTTP.parse(bytes, decodingBody: decodingBody) else { return nil }
        let length = reply.headers.first(name: "Content-Length").flatMap(Int.init) ?? 0
        return (reply, end + 4 + length)
    }
}
