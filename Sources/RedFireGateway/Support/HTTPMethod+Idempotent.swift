import HTTPTypes

extension HTTPRequest.Method {
    /// Methods whose repetition has the same effect as one request (RFC 9110 §9.2.2).
    var isIdempotent: Bool {
        switch self {
        case .get, .head, .options, .put, .delete, .trace: return true
        default: return false
        }
    }
}
