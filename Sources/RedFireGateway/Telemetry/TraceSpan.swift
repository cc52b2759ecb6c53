import Foundation
import NIOCore
import Synchronization

/// An attribute's value as OTLP carries it (`AnyValue`: the kinds the gateway records).
enum SpanValue: Sendable, Equatable {
    case string(String)
    case int(Int64)
    case bool(Bool)
}

/// Attributes in the order they were set (a key set again replaces its value).
struct SpanFields: Sendable, ExpressibleByDictionaryLiteral {
    var entries: [(key: String, value: SpanValue)] = []

    init() {}

    init(dictionaryLiteral elements: (String, SpanValue)...) {
        for (key, value) in elements { self[key] = value }
    }

    subscript(key: String) -> SpanValue? {
        get { entries.first { $0.key == key }?.value }
        set {
            let index = entries.firstIndex { $0.key == key }
            switch (index, newValue) {
            case (let index?, let value?): entries[index].value = value
            case (let index?, nil): entries.remove(at: index)
            case (nil, let value?): entries.append((key, value))
            case (nil, nil): break
            }
        }
    }
}

/// A finished span, as the exporter encodes it (OTLP `Span`).
struct RecordedSpan: Sendable {
    enum Kind: Int { case server = 2, client = 3 }
    enum Status: Int { case unset = 0, ok = 1, error = 2 }

    struct Event: Sendable {
        var name: String
        var time: UInt64
        var attributes: SpanFields
    }

    var traceIDHigh: UInt64
    var traceIDLow: UInt64
    var spanID: UInt64
    /// 0 for a root span.
    var parentSpanID: UInt64
    var traceState: String?
    var name: String
    var kind: Kind
    /// Nanoseconds since 1970.
    var start: UInt64
    var end: UInt64 = 0
    var status = Status.unset
    var attributes = SpanFields()
    var events: [Event] = []

    /// Its place in the trace, for the `traceparent` of whatever it calls.
    var context: TraceContext { TraceContext(traceIDHigh: traceIDHigh, traceIDLow: traceIDLow, spanID: spanID, sampled: true) }
}

/// Nanoseconds since 1970 (the spans' clock: OTLP times are wall-clock).
enum WallClock {
    static func now() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }
}

/// A span being recorded: the request task sets its attributes and events; a stream that took it over
/// may end it from its event loop later — hence the (uncontended) lock. It reaches the exporter once,
/// when it ends.
final class TraceSpan: Sendable {
    private let state: Mutex<(span: RecordedSpan, ended: Bool)>
    private let exporter: TraceExporter
    private let handedOff = Atomic<Bool>(false)
    let context: TraceContext
    let traceState: String?

    init(_ span: RecordedSpan, exporter: TraceExporter) {
        context = span.context
        traceState = span.traceState
        state = Mutex((span, false))
        self.exporter = exporter
    }

    /// Whether a stream took the span over just now (it then ends the span when it closes).
    func handOff() -> Bool { !handedOff.exchange(true, ordering: .relaxed) }

    var isHandedOff: Bool { handedOff.load(ordering: .relaxed) }

    func set(_ key: String, _ value: SpanValue) {
        state.withLock { $0.span.attributes[key] = value }
    }

    func rename(_ name: String) {
        state.withLock { $0.span.name = name }
    }

    func addEvent(_ name: String, _ attributes: SpanFields, at time: UInt64 = WallClock.now()) {
        state.withLock { $0.span.events.append(RecordedSpan.Event(name: name, time: time, attributes: attributes)) }
    }

    func markError() {
        state.withLock { $0.span.status = .error }
    }

    /// Ends the span (once) and hands it to the exporter.
    func end(at time: UInt64 = WallClock.now()) {
        let finished: RecordedSpan? = state.withLock { state in
            guard !state.ended else { return nil }
            state.ended = true
            state.span.end = max(time, state.span.start)
            return state.span
        }
        if let finished { exporter.submit(finished) }
    }
}

/// OTLP/HTTP's protobuf payload (`ExportTraceServiceRequest`, opentelemetry-proto `trace/v1`), written
/// by hand: a handful of message types whose field numbers are fixed by the protocol. Nested messages
/// are length-delimited: each message's size is computed first, so everything is written once, into one
/// buffer, without intermediate buffers.
enum OTLPEncoding {
    /// One request carrying `spans` under one resource (the gateway) and one instrumentation scope.
    static func exportRequest(_ spans: some Collection<RecordedSpan>, resource: SpanFields, scope: String, scopeVersion: String,
                              allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        // InstrumentationScope { name 1, version 2 }
        let scopeSize = stringFieldSize(scope) + stringFieldSize(scopeVersion)
        // ScopeSpans { scope 1, spans 2 }
        var spansSize = 0
        for span in spans { spansSize += nestedSize(size(of: span)) }
        let scopeSpansSize = nestedSize(scopeSize) + spansSize
        // Resource { attributes 1 }
        let resourceSize = attributesSize(resource)
        // ResourceSpans { resource 1, scope_spans 2 }
        let resourceSpansSize = nestedSize(resourceSize) + nestedSize(scopeSpansSize)
        var buffer = allocator.buffer(capacity: nestedSize(resourceSpansSize))
        // ExportTraceServiceRequest { resource_spans 1 }
        writeNested(1, size: resourceSpansSize, into: &buffer)
        writeNested(1, size: resourceSize, into: &buffer)
        writeAttributes(1, resource, into: &buffer)
        writeNested(2, size: scopeSpansSize, into: &buffer)
        writeNested(1, size: scopeSize, into: &buffer)
        writeStringField(1, scope, into: &buffer)
        writeStringField(2, scopeVersion, into: &buffer)
        for span in spans {
            writeNested(2, size: size(of: span), into: &buffer)
            write(span, into: &buffer)
        }
        return buffer
    }

    /// `Span` — trace_id 1, span_id 2, trace_state 3, parent_span_id 4, name 5, kind 6,
    /// start_time_unix_nano 7, end_time_unix_nano 8, attributes 9, events 11, status 15, flags 16.
    static func write(_ span: RecordedSpan, into buffer: inout ByteBuffer) {
        writeNested(1, size: 16, into: &buffer)
        buffer.writeInteger(span.traceIDHigh, endianness: .big)
        buffer.writeInteger(span.traceIDLow, endianness: .big)
        writeNested(2, size: 8, into: &buffer)
        buffer.writeInteger(span.spanID, endianness: .big)
        if let traceState = span.traceState, !traceState.isEmpty { writeStringField(3, traceState, into: &buffer) }
        if span.parentSpanID != 0 {
            writeNested(4, size: 8, into: &buffer)
            buffer.writeInteger(span.parentSpanID, endianness: .big)
        }
        writeStringField(5, span.name, into: &buffer)
        writeTag(6, wireType: 0, into: &buffer)
        writeVarint(UInt64(span.kind.rawValue), into: &buffer)
        writeTag(7, wireType: 1, into: &buffer)
        buffer.writeInteger(span.start, endianness: .little)
        writeTag(8, wireType: 1, into: &buffer)
        buffer.writeInteger(span.end, endianness: .little)
        writeAttributes(9, span.attributes, into: &buffer)
        for event in span.events {
            // Event { time_unix_nano 1, name 2, attributes 3 }
            writeNested(11, size: size(of: event), into: &buffer)
            writeTag(1, wireType: 1, into: &buffer)
            buffer.writeInteger(event.time, endianness: .little)
            writeStringField(2, event.name, into: &buffer)
            writeAttributes(3, event.attributes, into: &buffer)
        }
        if span.status != .unset {
            // Status { code 3 }
            writeNested(15, size: 2, into: &buffer)
            writeTag(3, wireType: 0, into: &buffer)
            writeVarint(UInt64(span.status.rawValue), into: &buffer)
        }
        writeTag(16, wireType: 5, into: &buffer)
        buffer.writeInteger(flags(span), endianness: .little)
    }

    /// The W3C trace flags (sampled), and that the parent's remoteness is known (bit 8) and remote
    /// (bit 9) — a server span with a parent continues a caller's trace.
    static func flags(_ span: RecordedSpan) -> UInt32 {
        UInt32(0x01 | 0x100 | (span.kind == .server && span.parentSpanID != 0 ? 0x200 : 0))
    }

    static func size(of span: RecordedSpan) -> Int {
        var total = nestedSize(16) + nestedSize(8)
        if let traceState = span.traceState, !traceState.isEmpty { total += stringFieldSize(traceState) }
        if span.parentSpanID != 0 { total += nestedSize(8) }
        total += stringFieldSize(span.name) + 1 + varintSize(UInt64(span.kind.rawValue)) + 9 + 9
        total += attributesSize(span.attributes)
        for event in span.events { total += nestedSize(size(of: event)) }
        if span.status != .unset { total += nestedSize(2) }
        return total + 2 + 4   // flags: a two-byte tag (field 16) and a fixed32
    }

    static func size(of event: RecordedSpan.Event) -> Int {
        9 + stringFieldSize(event.name) + attributesSize(event.attributes)
    }

    /// Repeated `KeyValue { key 1, value 2: AnyValue { string 1 | bool 2 | int 3 } }`.
    static func writeAttributes(_ field: Int, _ attributes: SpanFields, into buffer: inout ByteBuffer) {
        for (key, value) in attributes.entries {
            let valueSize = size(of: value)
            writeNested(field, size: stringFieldSize(key) + nestedSize(valueSize), into: &buffer)
            writeStringField(1, key, into: &buffer)
            writeNested(2, size: valueSize, into: &buffer)
            switch value {
            case .string(let string): writeStringField(1, string, into: &buffer)
            case .bool(let bool):
                writeTag(2, wireType: 0, into: &buffer)
                writeVarint(bool ? 1 : 0, into: &buffer)
            case .int(let int):
                writeTag(3, wireType: 0, into: &buffer)
                writeVarint(UInt64(bitPattern: int), into: &buffer)
            }
        }
    }

    static func attributesSize(_ attributes: SpanFields) -> Int {
        attributes.entries.reduce(0) { total, entry in total + nestedSize(stringFieldSize(entry.key) + nestedSize(size(of: entry.value))) }
    }

    static func size(of value: SpanValue) -> Int {
        switch value {
        case .string(let string): stringFieldSize(string)
        case .bool: 2
        case .int(let int): 1 + varintSize(UInt64(bitPattern: int))
        }
    }

    /// A length-delimited field's size (fields 1–15: a one-byte tag) around `size` bytes.
    static func nestedSize(_ size: Int) -> Int { 1 + varintSize(UInt64(size)) + size }

    static func stringFieldSize(_ string: String) -> Int { nestedSize(string.utf8.count) }

    static func varintSize(_ value: UInt64) -> Int {
        var value = value, size = 1
        while value >= 0x80 {
            value >>= 7
            size += 1
        }
        return size
    }

    static func writeNested(_ field: Int, size: Int, into buffer: inout ByteBuffer) {
        writeTag(field, wireType: 2, into: &buffer)
        writeVarint(UInt64(size), into: &buffer)
    }

    static func writeTag(_ field: Int, wireType: Int, into buffer: inout ByteBuffer) {
        writeVarint(UInt64(field << 3 | wireType), into: &buffer)
    }

    static func writeVarint(_ value: UInt64, into buffer: inout ByteBuffer) {
        var value = value
        while value >= 0x80 {
            buffer.writeInteger(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        buffer.writeInteger(UInt8(value))
    }

    static func writeStringField(_ field: Int, _ string: String, into buffer: inout ByteBuffer) {
        writeNested(field, size: string.utf8.count, into: &buffer)
        buffer.writeString(string)
    }
}
