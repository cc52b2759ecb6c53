import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import HummingbirdWSCompression
import Logging
import NIOCore
import Synchronization

/// The demo instances' streams, on any path of any service:
/// - WebSocket `…/ws/ticks?symbols=rb2501,IF2412&interval_ms=200`: a JSON tick per subscribed symbol every
///   interval; a text message `{"subscribe":"au2502"}` adds a symbol, `{"unsubscribe":…}` removes one.
/// - WebSocket `…/_ws_echo`: every message back as it came (text or binary, up to 16 MiB); `…/_ws_info`
///   first sends what the instance saw of the upgrade (headers, chosen subprotocol), then echoes.
/// - `…/_events?count=N&interval_ms=M` (and `/alerts/stream` on `monitor`): Server-Sent Events, one
///   event every interval (`count` 0: until the client leaves).
/// Subprotocols: the first one offered is chosen. permessage-deflate is offered to clients that ask.
enum DemoStreams {
    static let maxMessage = 16 << 20

    static func builder(instance: DemoInstance) -> HTTPServerBuilder {
        .http1WebSocketUpgrade(configuration: .init(ws: .init(maxFrameSize: maxMessage, extensions: [.perMessageDeflate(maxDecompressedFrameSize: maxMessage)]))) {
            request, _, _ in
            instance.upgradeRequested()
            let path = String((request.path ?? "/").split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "/")
            guard path.hasSuffix("/ws/ticks") || path.hasSuffix("/_ws_echo") || path.hasSuffix("/_ws_info") else { return .dontUpgrade }
            var headers = HTTPFields()
            let offered = request.headerFields[values: HTTPField.Name("Sec-WebSocket-Protocol")!]
                .flatMap { $0.split(separator: ",").map { String($0.trimmingCharacters(in: .whitespaces)) } }
            let chosen = offered.first
            if let chosen { headers[HTTPField.Name("Sec-WebSocket-Protocol")!] = chosen }
            let target = request.path ?? "/"
            let parameters = DemoResponder.parameters(target.firstIndex(of: "?").map { String(target[target.index(after: $0)...]) })
            let seen = Dictionary(request.headerFields.map { ($0.name.canonicalName, $0.value) }, uniquingKeysWith: { $0 + ", " + $1 })
            return .upgrade(headers) { inbound, outbound, _ in
                instance.streamOpened()
                defer { instance.streamClosed() }
                if path.hasSuffix("/ws/ticks") {
                    try await ticks(inbound: inbound, outbound: outbound, parameters: parameters, instance: instance)
                    return
                }
                if path.hasSuffix("/_ws_info") {
                    var info: [String: String] = ["instance": instance.id, "protocol": chosen ?? ""]
                    for (name, value) in seen { info["header." + name] = value }
                    let data = try JSONSerialization.data(withJSONObject: info, options: [.sortedKeys])
                    try await outbound.write(.text(String(decoding: data, as: UTF8.self)))
                }
                for try await message in inbound.messages(maxSize: maxMessage) {
                    switch message {
                    case .text(let text): try await outbound.write(.text(text))
                    case .binary(let buffer): try await outbound.write(.binary(buffer))
                    }
                }
            }
        }
    }

    private static func ticks(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, parameters: [String: String],
                              instance: DemoInstance) async throws {
        let interval = Duration.milliseconds(max(10, parameters["interval_ms"].flatMap(Int.init) ?? 250))
        let initial = (parameters["symbols"] ?? "rb2501").split(separator: ",").map(String.init)
        let symbols = SymbolSet(initial)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for try await message in inbound.messages(maxSize: 4096) {
                    guard case .text(let text) = message,
                          let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: String] else { continue }
                    if let symbol = object["subscribe"] { symbols.add(symbol) }
                    if let symbol = object["unsubscribe"] { symbols.remove(symbol) }
                }
            }
            group.addTask {
                var sequence = 0
                while !Task.isCancelled {
                    for symbol in symbols.all {
                        sequence += 1
                        let price = 3650 + (sequence * 7919 + symbol.utf8.count * 31) % 40
                        try await outbound.write(.text(#"{"symbol":"\#(symbol)","last":\#(price),"bid":\#(price - 1),"ask":\#(price + 1),"seq":\#(sequence),"instance":"\#(instance.id)"}"#))
                    }
                    try await Task.sleep(for: interval)
                }
            }
            // The client's side ends (it closed): stop ticking.
            try await group.next()
            group.cancelAll()
        }
    }

    /// `text/event-stream`: `count` events (0: endless), one every `interval`, each with an id.
    static func events(count: Int, interval: Duration, instance: DemoInstance) -> Response {
        Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: ResponseBody { writer in
            instance.streamOpened()
            defer { instance.streamClosed() }
            var sent = 0
            while count == 0 || sent < count {
                sent += 1
                let micros = Int(Date().timeIntervalSince1970 * 1_000_000)
                try await writer.write(ByteBuffer(string: "id: \(sent)\nevent: alert\ndata: {\"instance\":\"\(instance.id)\",\"seq\":\(sent),\"sent_us\":\(micros)}\n\n"))
                if count == 0 || sent < count { try await Task.sleep(for: interval) }
            }
            try await writer.finish(nil)
        })
    }
}

/// The symbols one tick stream is subscribed to.
private final class SymbolSet: Sendable {
    private let symbols: Mutex<[String]>
    init(_ initial: [String]) { symbols = Mutex(initial) }
    var all: [String] { symbols.withLock { $0 } }
    func add(_ symbol: String) { symbols.withLock { if !$0.contains(symbol) { $0.append(symbol) } } }
    func remove(_ symbol: String) { symbols.withLock { $0.removeAll { $0 == symbol } } }
}
