import CNIOLLHTTP
import NIOCore
import NIOHTTP1

/// What an `HTTP1Parser` reads, handed over as it reads it (inside `feed`, as NIO's decoder does).
package protocol HTTP1ParserDelegate: AnyObject {
    /// One field of the head — or, once the head was handed over, of the trailers. The bytes are valid
    /// during the call only.
    func parsedField(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)
    /// The head is complete (its fields were handed over): whether a body follows is the delegate's to
    /// say for a response (the request's method decides), or parsing stops here.
    func parsedHead(_ head: HTTP1Parser.Head) -> HTTP1Parser.Continuation
    /// Body bytes (a slice of what was fed: no copy), chunk framing removed.
    func parsedBody(_ bytes: ByteBuffer)
    /// The message is complete (trailers, if any, were handed over as fields).
    func parsedEnd()
}

/// HTTP/1 messages read by llhttp (NIO's C core, `CNIOLLHTTP`, in its strict mode — the same parser and
/// settings as NIO's `HTTPDecoder`), handed to one delegate as fields, a head, body slices and the end:
/// the gateway builds what it forwards straight from the bytes, with no header list, part enum or
/// pipeline hop in between. One per connection; fed on its event loop.
///
/// Bounds (NIO's, the same errors): a field name, field value or target longer than `fieldBytes`, a
/// head larger than `headBytes` or with more than `fieldCount` fields is `HTTPParserError.headerOverflow`.
/// A message version other than 1.x is `.invalidVersion`; an empty field name `.invalidHeaderToken`;
/// anything llhttp refuses, its error.
///
/// A field split over two reads is carried over in a small buffer; otherwise nothing is copied. After an
/// upgrade (llhttp stops after a message that switches protocols) what follows is kept unparsed:
/// `takeRemainder()` hands it to the next protocol, `restart()` parses it as HTTP/1 after all.
package final class HTTP1Parser {
    package enum Kind {
        case request
        case response
    }

    package struct Limits {
        package var fieldBytes: Int
        package var headBytes: Int
        package var fieldCount: Int

        package init(fieldBytes: Int, headBytes: Int, fieldCount: Int) {
            self.fieldBytes = fieldBytes
            self.headBytes = headBytes
            self.fieldCount = fieldCount
        }
    }

    package struct Head {
        /// 0 or 1 (HTTP/1.0, HTTP/1.1): other versions are refused.
        package var minorVersion: Int
        /// Requests: the method's name and the target as sent.
        package var method: String
        package var target: String
        /// Responses: the status code.
        package var status: Int
        /// llhttp's reading of `Connection` (and the version's default).
        package var keepAlive: Bool
        /// The message switches protocols (`Upgrade` with `Connection: upgrade`, `CONNECT`, a 101):
        /// parsing stops after it.
        package var upgrade: Bool
    }

    package enum Continuation {
        /// The body as the framing fields say.
        case body
        /// No body whatever the fields say (a response to `HEAD`, 1xx, 204, 304).
        case noBody
        /// Nothing more is parsed (the delegate refused the message).
        case stop
    }

    /// The parser's owner (it is called only from `feed`, `finish` and `restart`, which its owner calls):
    /// not retained, and read without a weak reference's atomic load per callback.
    package unowned(unsafe) var delegate: (any HTTP1ParserDelegate)?
    let kind: Kind
    let limits: Limits
    private let parser: UnsafeMutablePointer<llhttp_t>

    /// The input of the `feed` in progress: body slices are cut from it.
    private var input = ByteBuffer()
    private var inputBase: UnsafeRawPointer?
    private var feeding = false
    /// Bytes fed from within a callback, parsed once the feed in progress is done.
    private var queued: ByteBuffer?

    fileprivate enum Span {
        case none
        case target
        case name
        case value
    }

    /// The span being read, in the current input; `carried` holds its start from earlier reads.
    private var span = Span.none
    private var spanStart: UnsafeRawPointer?
    private var spanCount = 0
    private var carried: [UInt8] = []
    /// The last field name, when its value is still being read: in the current input, or carried over.
    private var nameStart: UnsafeRawPointer?
    private var nameCount = 0
    private var carriedName: [UInt8]?
    private var target = ""

    private var spanBytes = 0
    private var headBytes = 0
    private var fieldCount = 0
    /// The delegate stopped parsing.
    private var halted = false
    /// Why a callback stopped llhttp (`HPE_USER`): the error to throw, or nil for a delegate's stop.
    private var failure: HTTPParserError?
    /// Parsing stopped: a delegate's `.stop`, an error, or an upgrade (then `remainder` holds what followed).
    private(set) var stopped = false
    /// Parsing stopped after a message that switched protocols.
    private(set) var upgraded = false
    private(set) var remainder: ByteBuffer?

    package init(kind: Kind, limits: Limits) {
        self.kind = kind
        self.limits = limits
        parser = .allocate(capacity: 1)
        parser.initialize(to: llhttp_t())
        reset()
    }

    deinit {
        parser.deinitialize(count: 1)
        parser.deallocate()
    }

    private func reset() {
        c_nio_llhttp_init(parser, kind == .request ? HTTP_REQUEST : HTTP_RESPONSE, HTTP1ParserSettings.shared.settings)
        parser.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        span = .none
        spanStart = nil
        carried = []
        nameStart = nil
        carriedName = nil
        halted = false
        failure = nil
        stopped = false
        upgraded = false
    }

    /// Parses `bytes`, handing what it reads to the delegate as it goes.
    package func feed(_ bytes: ByteBuffer) throws(HTTPParserError) {
        if feeding {
            // From within a callback: parsed after what is being parsed.
            if queued == nil { queued = bytes } else { queued!.writeImmutableBuffer(bytes) }
            return
        }
        try parse(bytes)
        while let next = queued {
            queued = nil
            try parse(next)
        }
    }

    private func parse(_ bytes: ByteBuffer) throws(HTTPParserError) {
        if stopped {
            // After an upgrade the bytes wait for the next protocol (or a restart); after a stop or an
            // error they are dropped.
            if upgraded {
                if remainder == nil { remainder = bytes } else { remainder!.writeImmutableBuffer(bytes) }
            }
            return
        }
        guard bytes.readableBytes > 0 else { return }
        input = bytes
        feeding = true
        defer {
            feeding = false
            input = ByteBuffer()
            inputBase = nil
        }
        let result: (errno: llhttp_errno_t, consumed: Int) = bytes.withUnsafeReadableBytes { raw in
            inputBase = raw.baseAddress
            let start = raw.baseAddress!.assumingMemoryBound(to: CChar.self)
            let errno = c_nio_llhttp_execute(parser, start, raw.count)
            if errno == HPE_PAUSED_UPGRADE {
                return (errno, UnsafeRawPointer(c_nio_llhttp_get_error_pos(parser)!) - raw.baseAddress!)
            }
            if errno == HPE_OK { carryOver() }
            return (errno, raw.count)
        }
        switch result.errno {
        case HPE_OK:
            break
        case HPE_PAUSED_UPGRADE:
            // The message switched protocols: what follows it is not HTTP/1 (unless `restart`).
            c_nio_llhttp_resume_after_upgrade(parser)
            stopped = true
            upgraded = true
            if result.consumed < bytes.readableBytes {
                remainder = bytes.getSlice(at: bytes.readerIndex + result.consumed, length: bytes.readableBytes - result.consumed)
            }
        default:
            try stop(result.errno)
        }
    }

    /// llhttp stopped with `errno`: the delegate's stop, a callback's error or llhttp's own.
    private func stop(_ errno: llhttp_errno_t) throws(HTTPParserError) {
        stopped = true
        if halted { return }
        if let failure { throw failure }
        throw HTTPParserError(llhttp: errno)
    }

    /// The connection's input ended: a body delimited by the close ends here; a message cut short is
    /// an error.
    func finish() throws(HTTPParserError) {
        guard !stopped, !feeding else { return }
        let errno = c_nio_llhttp_finish(parser)
        if errno != HPE_OK { try stop(errno) }
    }

    /// What followed the upgrade, unparsed, for the next protocol; the parser parses nothing more.
    func takeRemainder() -> ByteBuffer? {
        defer { remainder = nil }
        return remainder
    }

    /// Parses again after an upgrade that did not happen (the request was answered as a plain one):
    /// a fresh parser state, fed what followed it.
    func restart() throws(HTTPParserError) {
        let pending = takeRemainder()
        reset()
        remainder = nil
        if let pending { try feed(pending) }
    }

    /// The end of a feed: a span or field name still open points into the input, which goes; its
    /// bytes are carried over to the next read.
    private func carryOver() {
        if let start = spanStart {
            carried.append(contentsOf: UnsafeRawBufferPointer(start: start, count: spanCount))
            spanStart = nil
            spanCount = 0
        }
        if let start = nameStart {
            carriedName = Array(UnsafeRawBufferPointer(start: start, count: nameCount))
            nameStart = nil
        }
    }

    // MARK: llhttp's callbacks

    /// Calls `body` with the parser that is feeding llhttp (it is alive: `feed` runs), without the
    /// retain and release per callback that taking a reference would cost.
    fileprivate static func with(_ parser: UnsafeMutablePointer<llhttp_t>?, _ body: (HTTP1Parser) -> CInt) -> CInt {
        Unmanaged<HTTP1Parser>.fromOpaque(parser!.pointee.data)._withUnsafeGuaranteedRef(body)
    }

    private func fail(_ error: HTTPParserError) -> CInt {
        failure = error
        return -1
    }

    fileprivate func messageBegan() -> CInt {
        headBytes = 0
        fieldCount = 0
        target = ""
        return 0
    }

    fileprivate func spanData(_ kind: Span, _ at: UnsafePointer<CChar>?, _ count: Int) -> CInt {
        let start = UnsafeRawPointer(at!)
        if span != kind {
            span = kind
            spanBytes = 0
            if kind == .name {
                fieldCount += 1
                if fieldCount > limits.fieldCount { return fail(.headerOverflow) }
            }
        }
        spanBytes += count
        headBytes += count
        if spanBytes > limits.fieldBytes || headBytes > limits.headBytes { return fail(.headerOverflow) }
        if let open = spanStart {
            if open + spanCount == start {
                spanCount += count
                return 0
            }
            carried.append(contentsOf: UnsafeRawBufferPointer(start: open, count: spanCount))
        }
        spanStart = start
        spanCount = count
        return 0
    }

    /// The span just completed, read in place (or from the carried bytes).
    private func withSpan<T>(_ body: (UnsafeRawBufferPointer) -> T) -> T {
        defer {
            span = .none
            spanStart = nil
            spanCount = 0
            if !carried.isEmpty { carried = [] }
        }
        if carried.isEmpty { return body(UnsafeRawBufferPointer(start: spanStart, count: spanCount)) }
        if let start = spanStart { carried.append(contentsOf: UnsafeRawBufferPointer(start: start, count: spanCount)) }
        return carried.withUnsafeBytes(body)
    }

    fileprivate func targetComplete() -> CInt {
        target = withSpan { String(decoding: $0, as: UTF8.self) }
        return 0
    }

    fileprivate func nameComplete() -> CInt {
        if span != .name {
            // llhttp tolerates an empty field name; NIO's decoder (and the gateway) do not.
            return fail(.invalidHeaderToken)
        }
        if carried.isEmpty {
            nameStart = spanStart
            nameCount = spanCount
            carriedName = nil
        } else {
            carriedName = withSpan { Array($0) }
        }
        span = .none
        spanStart = nil
        spanCount = 0
        return 0
    }

    fileprivate func valueComplete() -> CInt {
        if span == .value {
            withSpan(deliverField)
        } else {
            deliverField(UnsafeRawBufferPointer(start: nil, count: 0))
        }
        nameStart = nil
        carriedName = nil
        return 0
    }

    private func deliverField(_ value: UnsafeRawBufferPointer) {
        if let carriedName {
            carriedName.withUnsafeBytes { delegate?.parsedField(name: $0, value: value) }
        } else {
            delegate?.parsedField(name: UnsafeRawBufferPointer(start: nameStart, count: nameCount), value: value)
        }
    }

    fileprivate func headersComplete() -> CInt {
        let major = Int(parser.pointee.http_major)
        guard major == 1 else { return fail(.invalidVersion) }
        let upgrade = parser.pointee.upgrade != 0
        let head = Head(minorVersion: Int(parser.pointee.http_minor),
                        method: kind == .request ? HTTP1ParserSettings.methodName(parser.pointee.method) : "",
                        target: target, status: Int(parser.pointee.status_code),
                        keepAlive: c_nio_llhttp_should_keep_alive(parser) != 0, upgrade: upgrade)
        target = ""
        switch delegate?.parsedHead(head) ?? .stop {
        case .body: return 0
        case .noBody: return 1
        case .stop:
            halted = true
            return -1
        }
    }

    fileprivate func body(_ at: UnsafePointer<CChar>?, _ count: Int) -> CInt {
        let offset = UnsafeRawPointer(at!) - inputBase!
        delegate?.parsedBody(input.getSlice(at: input.readerIndex + offset, length: count)!)
        return 0
    }

    fileprivate func messageComplete() -> CInt {
        delegate?.parsedEnd()
        // NIO's workaround for https://github.com/nodejs/llhttp/issues/202: a stale length must not
        // outlive its message.
        parser.pointee.content_length = 0
        return 0
    }
}

/// llhttp's callbacks, set up once for every parser.
private final class HTTP1ParserSettings: Sendable {
    nonisolated(unsafe) let settings: UnsafeMutablePointer<llhttp_settings_t>

    static let shared = HTTP1ParserSettings()

    private init() {
        settings = .allocate(capacity: 1)
        c_nio_llhttp_settings_init(settings)
        settings.pointee.on_message_begin = { parser in HTTP1Parser.with(parser) { $0.messageBegan() } }
        settings.pointee.on_url = { parser, at, count in HTTP1Parser.with(parser) { $0.spanData(.target, at, count) } }
        settings.pointee.on_url_complete = { parser in HTTP1Parser.with(parser) { $0.targetComplete() } }
        settings.pointee.on_header_field = { parser, at, count in HTTP1Parser.with(parser) { $0.spanData(.name, at, count) } }
        settings.pointee.on_header_field_complete = { parser in HTTP1Parser.with(parser) { $0.nameComplete() } }
        settings.pointee.on_header_value = { parser, at, count in HTTP1Parser.with(parser) { $0.spanData(.value, at, count) } }
        settings.pointee.on_header_value_complete = { parser in HTTP1Parser.with(parser) { $0.valueComplete() } }
        settings.pointee.on_headers_complete = { parser in HTTP1Parser.with(parser) { $0.headersComplete() } }
        settings.pointee.on_body = { parser, at, count in HTTP1Parser.with(parser) { $0.body(at, count) } }
        settings.pointee.on_message_complete = { parser in HTTP1Parser.with(parser) { $0.messageComplete() } }
    }

    /// llhttp's method names, by its method number (the names it parsed; its last is `QUERY`).
    private static let methodNames: [String] = (0...HTTP_QUERY.rawValue).map { number in
        String(cString: c_nio_llhttp_method_name(llhttp_method_t(rawValue: number)))
    }

    static func methodName(_ method: UInt8) -> String {
        Int(method) < methodNames.count ? methodNames[Int(method)] : ""
    }
}

extension HTTPParserError {
    /// NIO's reading of llhttp's error numbers (its decoder's).
    init(llhttp errno: llhttp_errno_t) {
        switch errno {
        case HPE_INTERNAL: self = .invalidInternalState
        case HPE_STRICT: self = .strictModeAssertion
        case HPE_LF_EXPECTED: self = .lfExpected
        case HPE_UNEXPECTED_CONTENT_LENGTH: self = .unexpectedContentLength
        case HPE_CLOSED_CONNECTION: self = .closedConnection
        case HPE_INVALID_METHOD: self = .invalidMethod
        case HPE_INVALID_URL: self = .invalidURL
        case HPE_INVALID_CONSTANT: self = .invalidConstant
        case HPE_INVALID_VERSION: self = .invalidVersion
        case HPE_INVALID_HEADER_TOKEN, HPE_UNEXPECTED_SPACE: self = .invalidHeaderToken
        case HPE_INVALID_CONTENT_LENGTH: self = .invalidContentLength
        case HPE_INVALID_CHUNK_SIZE: self = .invalidChunkSize
        case HPE_INVALID_STATUS: self = .invalidStatus
        case HPE_INVALID_EOF_STATE: self = .invalidEOFState
        case HPE_PAUSED, HPE_PAUSED_UPGRADE, HPE_PAUSED_H2_UPGRADE: self = .paused
        default: self = .unknown
        }
    }
}
