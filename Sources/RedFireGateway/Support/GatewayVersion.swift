/// The gateway's version: `redfire-gateway --version`, and what a node tells its cluster.
package enum GatewayVersion {
    package static let current = "0.9.0"
}
