import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// A client paused its request body longer than `limits.body_timeout`.
struct RequestBodyTimeout: Error {}

/// Carrying out what the connection's state machine decides, and its one timer.
extension GatewayHTTPCodec {
    /// Does what `action` says; returns it (a caller may have its own part: the body's error).
    @discardableResult
    func perform(_ action: HTTP1ServerConnectionStateMachine<WrittenRefusal>.Action, context: ChannelHandlerContext) -> HTTP1ServerConnectionStateMachine<WrittenRefusal>.Action {
        switch action {
        case .none, .failBody:
            break
        case .arm(let deadline):
            timer?.cancel()
            timer = try? context.eventLoop.assumeIsolated().scheduleCallback(at: deadline, handler: self)
        case .close:
            context.close(promise: nil)
        case .writeRefusal(let refusal):
            writeRefusal(refusal, context: context)
        case .refuse(let error):
            refuse(error, requestID: nil, context: context)
        case .bodyTimedOut:
            // Whoever reads the body fails with the timeout (the forwarder answers 408).
            context.fireErrorCaught(RequestBodyTimeout())
        }
        return action
    }

    func handleScheduledCallback(eventLoop: some EventLoop) {
        timer = nil
        guard let context else { return }
        perform(state.timerFired(now: now), context: context)
    }

    /// The connection switched protocols (`ConnectionUpgrade`): the codec is about to leave the pipeline.
    func switchedProtocols() {
        handingOver = true
        state.switchedProtocols()
        cancelTimers()
    }

    func cancelTimers() {
        timer?.cancel()
        timer = nil
        lingerTask?.cancel()
        lingerTask = nil
        state.timerStopped()
    }
}
