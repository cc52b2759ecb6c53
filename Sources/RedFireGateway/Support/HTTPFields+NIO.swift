import HTTPTypes
import NIOHTTP1

extension HTTPFields {
    /// A request whose body bytes follow its head: `Transfer-Encoding`, or a `Content-Length` other
    /// than 0 (RFC 9112 §6.1).
    var declaresBody: Bool {
        contains(.transferEncoding) || (self[.contentLength].map { $0 != "0" } ?? false)
    }

    /// NIO's HTTP/1 header list as HTTP fields; a name HTTP types refuse is dropped (the parser has
    /// validated names already).
    init(nioHeaders headers: HTTPHeaders) {
        self.init()
        reserveCapacity(headers.count)
        for (name, value) in headers {
            if let fieldName = HTTPField.Name(name) { append(HTTPField(name: fieldName, value: value)) }
        }
    }
}
