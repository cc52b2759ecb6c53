import HTTPTypes
import NIOHTTP1

extension HTTPHeaders {
    /// HTTPFields keeps each cookie as its own field; HTTP/1.1 wants one `Cookie` line (RFC 6265 §5.4).
    /// `spare` reserves room for fields the caller adds (`Host`, framing) without growing the list.
    init(upstream fields: HTTPFields, spare: Int = 0) {
        var headers = HTTPHeaders()
        headers.reserveCapacity(fields.count + spare)
        var cookies: [String] = []
        for field in fields {
            if field.name == .cookie { cookies.append(field.value) } else { headers.add(name: field.name.rawName, value: field.value) }
        }
        if !cookies.isEmpty { headers.add(name: "Cookie", value: cookies.joined(separator: "; ")) }
        self = headers
    }
}
