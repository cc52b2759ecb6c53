/// Operator decisions that must survive a restart (drained instances, chosen strategies), as the registry
/// reports and restores them; `OperatorStateStore` keeps them in a file.
struct OperatorState: Codable, Equatable {
    /// Drained instance ids, by service.
    var drained: [String: [String]] = [:]
    /// Strategy chosen by an operator, by service.
    var strategies: [String: String] = [:]
}
