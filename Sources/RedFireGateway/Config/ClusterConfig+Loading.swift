import Foundation

extension ClusterConfig {
    /// `cluster:`
    mutating func load(_ cluster: ConfigObject, reader: ConfigReader) {
        if let text = cluster.string("store") {
            do {
                let url = try PostgresURL(validating: text)
                _ = try url.tls.clientConfiguration()
                store = url
            } catch {
                reader.report(cluster.childPath("store"), cluster.node("store"), error.description)
            }
        }
        if let name = cluster.string("node_name") {
            if GatewayConfig.isValidName(name.replacingOccurrences(of: ":", with: "-")) { nodeName = name }
            else { reader.report(cluster.childPath("node_name"), cluster.node("node_name"), "use letters, digits, '_', '.', '-' and ':'") }
        }
        if let interval = cluster.duration("heartbeat_interval", atLeast: .milliseconds(100)) { heartbeatInterval = interval }
        if let timeout = cluster.duration("node_timeout", atLeast: .seconds(1)) { nodeTimeout = timeout }
        if let interval = cluster.duration("housekeeping_interval", atLeast: .seconds(1)) { houseKeepingInterval = interval }
        if nodeTimeout < heartbeatInterval * 2 {
            reader.report(cluster.childPath("node_timeout"), cluster.node("node_timeout"), "must be at least twice heartbeat_interval")
        }
        cluster.finish()
    }
}
