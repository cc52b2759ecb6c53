import Hummingbird

extension ControlError {
    /// The error envelope of a refused control action, with the code its case names.
    var gatewayError: GatewayError {
        switch self {
        case .serviceNotFound: return GatewayError.serviceNotFound.with(message: description)
        case .instanceNotFound: return GatewayError.instanceNotFound.with(message: description)
        case .conflict: return GatewayError.conflict.with(message: description)
        case .invalid: return GatewayError.invalidRequest.with(message: description)
        }
    }

    func response(requestID: String) -> Response {
        ErrorEnvelope.response(gatewayError, requestID: requestID)
    }
}
