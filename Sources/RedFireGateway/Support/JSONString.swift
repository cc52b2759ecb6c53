import NIOCore

/// JSON string literals written straight into a buffer (error envelopes, access-log lines): no encoder.
enum JSONString {
    /// `text` as a JSON string (`ReservedText.writeJSON`). Bytes that need no escape (the common case)
    /// are copied as they are.
    static func write(_ text: String, to buffer: inout ByteBuffer) {
        buffer.writeReserved(atMost: ReservedText.jsonBound(text)) { $0.writeJSON(text) }
    }
}
