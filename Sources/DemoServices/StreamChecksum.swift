import NIOCore

/// A streaming 64-bit checksum (FNV-1a over 8-byte little-endian words, with a byte tail), so that
/// tests can compare 100 MB bodies on both sides of the gateway without holding them.
public struct StreamChecksum: Sendable {
    private var state: UInt64 = 0xCBF2_9CE4_8422_2325
    private var pending: [UInt8] = []
    public private(set) var count = 0

    public init() {}

    public mutating func update(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { update($0) }
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        count += bytes.count
        var index = 0
        if !pending.isEmpty {
            while pending.count < 8 && index < bytes.count { pending.append(bytes[index]); index += 1 }
            if pending.count == 8 {
                var word: UInt64 = 0
                for (shift, byte) in pending.enumerated() { word |= UInt64(byte) << UInt64(shift * 8) }
                mix(word)
                pending.removeAll(keepingCapacity: true)
            }
        }
        while index + 8 <= bytes.count {
            mix(UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)))
            index += 8
        }
        while index < bytes.count { pending.append(bytes[index]); index += 1 }
    }

    private mutating func mix(_ word: UInt64) {
        state = (state ^ word) &* 0x0000_0100_0000_01B3
    }

    /// The checksum of everything seen so far, as 16 hex digits.
    public var hex: String {
        var copy = state
        for byte in pending { copy = (copy ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        copy ^= UInt64(count)
        let text = String(copy, radix: 16)
        return String(repeating: "0", count: 16 - text.count) + text
    }

    /// The deterministic content of `/_download?bytes=N`: byte i is `i % 251`. Chunks are copied out of
    /// a precomputed table, so serving a large download costs a memcpy per chunk.
    public static func patternChunk(offset: Int, length: Int) -> ByteBuffer {
        precondition(length <= patternChunkSize)
        let start = offset % 251
        return patternTable.getSlice(at: start, length: length)!
    }

    public static let patternChunkSize = 64 * 1024
    private static let patternTable: ByteBuffer = {
        var buffer = ByteBuffer()
        buffer.writeBytes((0..<(patternChunkSize + 251)).map { UInt8($0 % 251) })
        return buffer
    }()
}
