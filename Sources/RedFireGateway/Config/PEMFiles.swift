import Foundation
import NIOSSL

/// Reading certificates and private keys from PEM files, with the checks every TLS setting shares: a
/// file that cannot be read, holds no certificate or key, or a key others may read is refused with
/// what to fix.
enum PEMFiles {
    struct Problem: Error, CustomStringConvertible {
        var description: String
    }

    /// The certificates in `path`, in file order (a chain: leaf first).
    static func certificates(_ path: String, parameter: String) throws(Problem) -> [NIOSSLCertificate] {
        guard FileManager.default.isReadableFile(atPath: path) else { throw Problem(description: "\(parameter) \(path): cannot read the file") }
        let certificates = try? NIOSSLCertificate.fromPEMFile(path)
        guard let certificates, !certificates.isEmpty else { throw Problem(description: "\(parameter) \(path): no PEM certificate in the file") }
        return certificates
    }

    /// The private key in `path`, which must not be readable by group or others (`chmod 600`), unless
    /// root owns it and only its group may read it (0640) — libpq's rule.
    static func privateKey(_ path: String, parameter: String) throws(Problem) -> NIOSSLPrivateKey {
        var info = stat()
        guard stat(path, &info) == 0, FileManager.default.isReadableFile(atPath: path) else {
            throw Problem(description: "\(parameter) \(path): cannot read the file")
        }
        let permissions = info.st_mode & 0o777
        let allowed: mode_t = info.st_uid == 0 ? 0o740 : 0o700
        guard permissions & ~allowed == 0 else {
            throw Problem(description: "\(parameter) \(path): readable by others (mode \(String(permissions, radix: 8))); chmod 600 it")
        }
        do { return try NIOSSLPrivateKey(file: path, format: .pem) }
        catch { throw Problem(description: "\(parameter) \(path): not a PEM private key") }
    }

    /// What identifies a file's content for a watcher: inode, size and modification time.
    struct Stamp: Hashable, Sendable {
        var inode: UInt64
        var size: Int64
        var modified: Int64
        var modifiedNanoseconds: Int

        init?(path: String) {
            var info = stat()
            guard stat(path, &info) == 0 else { return nil }
            inode = UInt64(info.st_ino)
            size = Int64(info.st_size)
            modified = Int64(info.st_mtim.tv_sec)
            modifiedNanoseconds = info.st_mtim.tv_nsec
        }
    }
}
