import AsyncHTTPClient
import NIOCore
import NIOPosix
import NIOSSL

#if canImport(Glibc)
import Glibc
#endif

extension UpstreamFailure {
    /// What an error from either transport (or a health check) means for status, retry and ejection.
    init(classifying error: any Error) {
        switch error {
        case let error as HTTPClientError:
            switch error {
            case .connectTimeout, .getConnectionFromPoolTimeout: self = .connectTimeout
            case .deadlineExceeded, .readTimeout: self = .responseTimeout
            default: self = .connectionFailed
            }
        case is NIOSSLError, is BoringSSLError, is NIOSSLExtraError:
            self = .tlsFailed
        case is NIOConnectionError:
            self = .connectFailed
        case let error as ChannelError:
            if case .connectTimeout = error { self = .connectTimeout } else { self = .connectionFailed }
        case let error as IOError where [ECONNREFUSED, ENETUNREACH, EHOSTUNREACH, EADDRNOTAVAIL].contains(error.errnoCode):
            self = .connectFailed
        default:
            self = .connectionFailed
        }
    }
}
