import Atomics

/// A place in a W3C trace (Trace Context Level 1): the trace id, the id of the span that calls next, and
/// whether the trace is sampled — a value, read from and written as a `traceparent` field without a
/// tracer. An unsampled request (most of them, at the default 1 %) is traced with this alone: ids for the
/// instance's `traceparent`, the access log and the console, and no span object.
struct TraceContext: Sendable, Equatable {
    var traceIDHigh: UInt64
    var traceIDLow: UInt64
    var spanID: UInt64
    var sampled: Bool

    init(traceIDHigh: UInt64, traceIDLow: UInt64, spanID: UInt64, sampled: Bool) {
        self.traceIDHigh = traceIDHigh
        self.traceIDLow = traceIDLow
        self.spanID = spanID
        self.sampled = sampled
    }

    /// Parses a `traceparent` value: `version-traceid-parentid-flags`, lowercase hex; version `00` is
    /// exactly 55 characters, a later version may add fields after a `-` (§3.2.4); version `ff`, an all-zero
    /// trace or parent id, or any other shape is malformed (nil: the field is ignored).
    init?(traceparent: String) {
        var value = traceparent
        let parsed: TraceContext? = value.withUTF8 { bytes in
            guard bytes.count >= 55, bytes[2] == UInt8(ascii: "-"), bytes[35] == UInt8(ascii: "-"), bytes[52] == UInt8(ascii: "-"),
                  let version = Self.hex(bytes, 0, 2), version != 0xff,
                  version != 0 || bytes.count == 55, bytes.count == 55 || bytes[55] == UInt8(ascii: "-"),
                  let high = Self.hex(bytes, 3, 16), let low = Self.hex(bytes, 19, 16), high | low != 0,
                  let span = Self.hex(bytes, 36, 16), span != 0,
                  let flags = Self.hex(bytes, 53, 2)
            else { return nil }
            return TraceContext(traceIDHigh: high, traceIDLow: low, spanID: span, sampled: flags & 1 == 1)
        }
        guard let parsed else { return nil }
        self = parsed
    }

    /// `00-<trace id>-<span id>-<flags>`.
    var traceparent: String {
        String(unsafeUninitializedCapacity: 55) { buffer in
            buffer[0] = UInt8(ascii: "0")
            buffer[1] = UInt8(ascii: "0")
            buffer[2] = UInt8(ascii: "-")
            Self.writeHex(traceIDHigh, into: buffer, at: 3)
            Self.writeHex(traceIDLow, into: buffer, at: 19)
            buffer[35] = UInt8(ascii: "-")
            Self.writeHex(spanID, into: buffer, at: 36)
            buffer[52] = UInt8(ascii: "-")
            buffer[53] = UInt8(ascii: "0")
            buffer[54] = sampled ? UInt8(ascii: "1") : UInt8(ascii: "0")
            return 55
        }
    }

    /// The trace id as 32 lowercase hex digits (the access log's `trace_id`).
    var traceIDHex: String {
        String(unsafeUninitializedCapacity: 32) { buffer in
            Self.writeHex(traceIDHigh, into: buffer, at: 0)
            Self.writeHex(traceIDLow, into: buffer, at: 16)
            return 32
        }
    }

    /// The same trace, calling from a new span.
    func child(spanID: UInt64) -> TraceContext {
        var child = self
        child.spanID = spanID
        return child
    }

    private static let digits: StaticString = "0123456789abcdef"

    private static func writeHex(_ value: UInt64, into buffer: UnsafeMutableBufferPointer<UInt8>, at offset: Int) {
        digits.withUTF8Buffer { digits in
            for index in 0..<16 {
                buffer[offset + index] = digits[Int((value >> UInt64(60 - 4 * index)) & 0xf)]
            }
        }
    }

    /// `count` lowercase hex digits at `offset` (W3C allows no uppercase).
    private static func hex(_ bytes: UnsafeBufferPointer<UInt8>, _ offset: Int, _ count: Int) -> UInt64? {
        var value: UInt64 = 0
        for index in offset..<offset + count {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte &- UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte &- UInt8(ascii: "a") &+ 10
            default: return nil
            }
            value = value << 4 | UInt64(digit)
        }
        return value
    }
}

/// A trace id as a value (formatted only when shown).
struct TraceID: Sendable, Equatable {
    var high: UInt64
    var low: UInt64

    init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    var hex: String { TraceContext(traceIDHigh: high, traceIDLow: low, spanID: 0, sampled: false).traceIDHex }
}

/// Trace and span ids for requests: SplitMix64 over one atomic counter, seeded once from the system's
/// random generator — 64 well-mixed bits per id for one relaxed atomic add (the system generator costs a
/// `getrandom` call per id). Ids must be unique and unpredictable enough to sample on; they are no secret.
struct TraceIDGenerator: Sendable {
    private let state: ManagedAtomic<UInt64>

    init(seed: UInt64 = UInt64.random(in: .min ... .max)) {
        state = ManagedAtomic(seed)
    }

    func next() -> UInt64 {
        var z = state.loadThenWrappingIncrement(by: 0x9E37_79B9_7F4A_7C15, ordering: .relaxed) &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        let id = z ^ (z >> 31)
        return id == 0 ? 1 : id   // an all-zero id is invalid
    }
}

/// Which requests are recorded (OpenTelemetry's sampler names, `OTEL_TRACES_SAMPLER`): decided by the
/// gateway before any span exists, so an unsampled request never reaches the tracer.
struct TraceSampler: Sendable, Equatable {
    enum Root: Sendable, Equatable {
        case always
        case never
        /// A share of traces by trace id: the low 64 bits under `ratio` of their range.
        case ratio(Double)
    }

    var root: Root
    /// Whether a request with a (trusted) parent follows its parent's decision.
    var parentBased: Bool

    /// The default: a new trace is recorded at `ratio` (1 %), a continued one as its parent was.
    static func parentBasedRatio(_ ratio: Double) -> TraceSampler { TraceSampler(root: .ratio(ratio), parentBased: true) }

    /// Parses `OTEL_TRACES_SAMPLER` (and `OTEL_TRACES_SAMPLER_ARG` for the ratio samplers, default 1.0);
    /// nil for a name the gateway does not support (`jaeger_remote`, `xray`) or a bad argument.
    init?(name: String, argument: String?) {
        func ratio() -> Double? {
            guard let argument else { return 1.0 }
            guard let value = Double(argument), (0...1).contains(value) else { return nil }
            return value
        }
        switch name {
        case "always_on": self.init(root: .always, parentBased: false)
        case "always_off": self.init(root: .never, parentBased: false)
        case "traceidratio": guard let ratio = ratio() else { return nil }; self.init(root: .ratio(ratio), parentBased: false)
        case "parentbased_always_on": self.init(root: .always, parentBased: true)
        case "parentbased_always_off": self.init(root: .never, parentBased: true)
        case "parentbased_traceidratio": guard let ratio = ratio() else { return nil }; self.init(root: .ratio(ratio), parentBased: true)
        default: return nil
        }
    }

    init(root: Root, parentBased: Bool) {
        self.root = root
        self.parentBased = parentBased
    }

    /// Whether the trace with this id is recorded; `parent` is the trusted incoming context, if any.
    func samples(traceIDLow: UInt64, parent: TraceContext?) -> Bool {
        if parentBased, let parent { return parent.sampled }
        switch root {
        case .always: return true
        case .never: return false
        case .ratio(let ratio):
            if ratio >= 1 { return true }
            if ratio <= 0 { return false }
            return traceIDLow < UInt64(ratio * Double(UInt64.max))
        }
    }
}
