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

    /// Room for `capacity` attributes in one allocation.
    init(capacity: Int) { entries.reserveCapacity(capacity) }

    init(dictionaryLiteral elements: (String, SpanValue)...) {
        entries.reserveCapacity(elements.count + 4)
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

/// A span's name in two parts, joined by a space only when encoded (`upstream` and the service, the
/// method and the route): nothing is concatenated on the request path.
struct SpanName: Sendable, Equatable, ExpressibleByStringLiteral {
    var head: String
    var tail: String?

    init(_ head: String, _ tail: String? = nil) {
        self.head = head
        self.tail = tail
    }

    init(stringLiteral value: String) { self.init(value) }

    var utf8Count: Int { head.utf8.count + (tail.map { 1 + $0.utf8.count } ?? 0) }
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
    var name: SpanName
    var kind: Kind
    /// Nanoseconds since 1970.
    var start: UInt64
    var end: UInt64 = 0
    var status = Status.unset
    var attributes = SpanFields(capacity: 8)
    var events: [Event] = []

    /// Its place in the trace, for the `traceparent` of whatever it calls.
    var context: TraceContext { TraceContext(traceIDHigh: traceIDHigh, traceIDLow: traceIDLow, spanID: spanID, sampled: true) }

    /// The client span of one attempt at an instance, under `parent` (the request's span).
    static func attempt(parent: TraceContext, spanID: UInt64, traceState: String?, service: String, instance: String, authority: String,
                        number: Int, start: UInt64) -> RecordedSpan {
        var span = RecordedSpan(traceIDHigh: parent.traceIDHigh, traceIDLow: parent.traceIDLow, spanID: spanID, parentSpanID: parent.spanID,
                                traceState: traceState, name: SpanName("upstream", service), kind: .client, start: start)
        span.attributes = ["server.address": .string(authority), "gateway.instance": .string(instance), "gateway.attempt": .int(Int64(number))]
        return span
    }

    /// How it turned out: the status (a 5xx makes it an error), the error it failed with, the connection
    /// it used (`new` or `pooled`, when known).
    mutating func outcome(status: Int?, error: String?, connection: String? = nil) {
        if let connection { attributes["gateway.connection"] = .string(connection) }
        if let status {
            attributes["http.response.status_code"] = .int(Int64(status))
            if status >= 500 { self.status = .error }
        }
        if let error {
            attributes["error.type"] = .string(error)
            self.status = .error
        }
    }
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

    func rename(_ name: SpanName) {
        state.withLock { $0.span.name = name }
    }

    func addEvent(_ name: String, _ attributes: SpanFields, at time: UInt64 = WallClock.now()) {
        state.withLock { $0.span.events.append(RecordedSpan.Event(name: name, time: time, attributes: attributes)) }
    }

    func outcome(status: Int?, error: String?, connection: String? = nil) {
        state.withLock { $0.span.outcome(status: status, error: error, connection: connection) }
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
/// are length-delimited: every message's size is computed first, then the whole request is written once,
/// byte by byte, into one buffer of exactly that size.
enum OTLPEncoding {
    /// One request carrying `spans` under one resource (the gateway) and one instrumentation scope.
    static func exportRequest(_ spans: some Collection<RecordedSpan>, resource: SpanFields, scope: String, scopeVersion: String,
                              allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        // InstrumentationScope { name 1, version 2 }
        let scopeSize = stringFieldSize(scope) + stringFieldSize(scopeVersion)
        // ScopeSpans { scope 1, spans 2 }
        var spanSizes: [Int] = []
        spanSizes.reserveCapacity(spans.count)
        var spansSize = 0
        // By index: each span is read in place (an iterator would copy it, and every string and array in it).
        var index = spans.startIndex
        while index != spans.endIndex {
            let size = size(of: spans[index])
            spanSizes.append(size)
            spansSize += nestedSize(size)
            spans.formIndex(after: &index)
        }
        let scopeSpansSize = nestedSize(scopeSize) + spansSize
        // Resource { attributes 1 }
        let resourceSize = attributesSize(resource)
        // ResourceSpans { resource 1, scope_spans 2 }
        let resourceSpansSize = nestedSize(resourceSize) + nestedSize(scopeSpansSize)
        let total = nestedSize(resourceSpansSize)
        var buffer = allocator.buffer(capacity: total)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: total) { memory in
            var out = ProtoWriter(memory)
            // ExportTraceServiceRequest { resource_spans 1 }
            out.nested(1, size: resourceSpansSize)
            out.nested(1, size: resourceSize)
            out.attributes(1, resource)
            out.nested(2, size: scopeSpansSize)
            out.nested(1, size: scopeSize)
            out.string(1, scope)
            out.string(2, scopeVersion)
            var index = spans.startIndex
            for size in spanSizes {
                out.nested(2, size: size)
                out.span(spans[index])
                spans.formIndex(after: &index)
            }
            precondition(out.index == total, "OTLP size computed \(total), written \(out.index)")
            return out.index
        }
        return buffer
    }

    static func size(of span: RecordedSpan) -> Int {
        var total = nestedSize(16) + nestedSize(8)
        if let traceState = span.traceState, !traceState.isEmpty { total += stringFieldSize(traceState) }
        if span.parentSpanID != 0 { total += nestedSize(8) }
        total += nestedSize(span.name.utf8Count) + 1 + varintSize(UInt64(span.kind.rawValue)) + 9 + 9
        total += attributesSize(span.attributes)
        for event in span.events { total += nestedSize(size(of: event)) }
        if span.status != .unset { total += nestedSize(2) }
        return total + 2 + 4   // flags: a two-byte tag (field 16) and a fixed32
    }

    static func size(of event: RecordedSpan.Event) -> Int {
        9 + stringFieldSize(event.name) + attributesSize(event.attributes)
    }

    static func attributesSize(_ attributes: SpanFields) -> Int {
        attributes.entries.reduce(0) { total, entry in total + nestedSize(keyValueSize(entry.key, entry.value)) }
    }

    static func keyValueSize(_ key: String, _ value: SpanValue) -> Int {
        stringFieldSize(key) + nestedSize(size(of: value))
    }

    static func size(of value: SpanValue) -> Int {
        switch value {
        case .string(let string): stringFieldSize(string)
        case .bool: 2
        case .int(let int): 1 + varintSize(UInt64(bitPattern: int))
        }
    }

    /// The W3C trace flags (sampled), and that the parent's remoteness is known (bit 8) and remote
    /// (bit 9) — a server span with a parent continues a caller's trace.
    static func flags(_ span: RecordedSpan) -> UInt32 {
        UInt32(0x01 | 0x100 | (span.kind == .server && span.parentSpanID != 0 ? 0x200 : 0))
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
}

/// Writes protobuf into memory sized beforehand (`OTLPEncoding`).
struct ProtoWriter {
    let memory: UnsafeMutableRawBufferPointer
    var index = 0

    init(_ memory: UnsafeMutableRawBufferPointer) { self.memory = memory }

    /// Sizes are computed before writing; a mistake there must stop here, never write past the memory.
    private func room(_ count: Int) {
        precondition(index + count <= memory.count, "OTLP encoding overran its computed size")
    }

    mutating func byte(_ value: UInt8) {
        room(1)
        memory[index] = value
        index += 1
    }

    mutating func varint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            byte(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        byte(UInt8(value))
    }

    mutating func tag(_ field: Int, _ wireType: Int) { varint(UInt64(field << 3 | wireType)) }

    mutating func nested(_ field: Int, size: Int) {
        tag(field, 2)
        varint(UInt64(size))
    }

    mutating func fixed64(_ value: UInt64) {
        room(8)
        memory.storeBytes(of: value.littleEndian, toByteOffset: index, as: UInt64.self)
        index += 8
    }

    mutating func fixed32(_ value: UInt32) {
        room(4)
        memory.storeBytes(of: value.littleEndian, toByteOffset: index, as: UInt32.self)
        index += 4
    }

    mutating func bigEndian(_ value: UInt64) {
        room(8)
        memory.storeBytes(of: value.bigEndian, toByteOffset: index, as: UInt64.self)
        index += 8
    }

    mutating func raw(_ string: String) {
        var string = string
        string.withUTF8 { bytes in
            guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
            room(bytes.count)
            (memory.baseAddress! + index).copyMemory(from: base, byteCount: bytes.count)
            index += bytes.count
        }
    }

    mutating func string(_ field: Int, _ string: String) {
        nested(field, size: string.utf8.count)
        raw(string)
    }

    /// `Span` — trace_id 1, span_id 2, trace_state 3, parent_span_id 4, name 5, kind 6,
    /// start_time_unix_nano 7, end_time_unix_nano 8, attributes 9, events 11, status 15, flags 16.
    mutating func span(_ span: RecordedSpan) {
        nested(1, size: 16)
        bigEndian(span.traceIDHigh)
        bigEndian(span.traceIDLow)
        nested(2, size: 8)
        bigEndian(span.spanID)
        if let traceState = span.traceState, !traceState.isEmpty { string(3, traceState) }
        if span.parentSpanID != 0 {
            nested(4, size: 8)
            bigEndian(span.parentSpanID)
        }
        nested(5, size: span.name.utf8Count)
        raw(span.name.head)
        if let tail = span.name.tail {
            byte(UInt8(ascii: " "))
            raw(tail)
        }
        tag(6, 0)
        varint(UInt64(span.kind.rawValue))
        tag(7, 1)
        fixed64(span.start)
        tag(8, 1)
        fixed64(span.end)
        attributes(9, span.attributes)
        for event in span.events {
            // Event { time_unix_nano 1, name 2, attributes 3 }
            nested(11, size: OTLPEncoding.size(of: event))
            tag(1, 1)
            fixed64(event.time)
            string(2, event.name)
            attributes(3, event.attributes)
        }
        if span.status != .unset {
            // Status { code 3 }
            nested(15, size: 2)
            tag(3, 0)
            varint(UInt64(span.status.rawValue))
        }
        tag(16, 5)
        fixed32(OTLPEncoding.flags(span))
    }

    /// Repeated `KeyValue { key 1, value 2: AnyValue { string 1 | bool 2 | int 3 } }`.
    mutating func attributes(_ field: Int, _ attributes: SpanFields) {
        for (key, value) in attributes.entries {
            nested(field, size: OTLPEncoding.keyValueSize(key, value))
            string(1, key)
            nested(2, size: OTLPEncoding.size(of: value))
            switch value {
            case .string(let text): string(1, text)
            case .bool(let bool):
                tag(2, 0)
                varint(bool ? 1 : 0)
            case .int(let int):
                tag(3, 0)
                varint(UInt64(bitPattern: int))
            }
        }
    }
}
