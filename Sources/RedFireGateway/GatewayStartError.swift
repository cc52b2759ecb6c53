import Foundation
import Atomics
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// Why the gateway did not start listening.
public enum GatewayStartError: Error {
    case stopped
}
