import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// Sits before the HTTP/1 parser and tells the codec when bytes arrive: the header timeout of a
/// keep-alive request starts with its first byte, which the parser does not report.
final class FirstByteObserver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    let codec: GatewayHTTPCodec

    init(codec: GatewayHTTPCodec) {
        self.codec = codec
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        codec.bytesArrived(unwrapInboundIn(data))
        context.fireChannelRead(data)
    }
}
