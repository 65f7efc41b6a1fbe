public import NIOCore
public import NIOHTTP1

/// One HTTP request as the API processor sees it: head fields, the whole body, and the peer.
public struct HTTPAPIRequest: Sendable {
    /// The method.
    public var method: HTTPMethod
    /// The request target (`/v1/check?policy=api&key=k`).
    public var uri: String
    /// The header fields.
    public var headers: HTTPHeaders
    /// The body, if any (already capped by the handler).
    public var body: ByteBuffer?
    /// The socket peer (the gateway, for forward auth).
    public var remoteAddress: SocketAddress?

    /// Creates a request.
    public init(method: HTTPMethod, uri: String, headers: HTTPHeaders = HTTPHeaders(), body: ByteBuffer? = nil, remoteAddress: SocketAddress? = nil) {
        self.method = method
        self.uri = uri
        self.headers = headers
        self.body = body
        self.remoteAddress = remoteAddress
    }

    /// The path, without the query.
    var path: Substring { uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "" }

    /// The query's parameters, percent-decoded; the first of a repeated name wins.
    var query: [String: String] {
        guard let start = uri.firstIndex(of: "?") else { return [:] }
        var result: [String: String] = [:]
        for pair in uri[uri.index(after: start)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = Self.percentDecoded(parts[0]), result[name] == nil else { continue }
            result[name] = parts.count > 1 ? Self.percentDecoded(parts[1]) ?? "" : ""
        }
        return result
    }

    /// Decodes `%XX` escapes and `+` (as a space); nil for a malformed escape or invalid UTF-8.
    static func percentDecoded(_ text: Substring) -> String? {
        guard text.utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) else { return String(text) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+"): bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(Self.hexValue), let low = iterator.next().flatMap(Self.hexValue) else { return nil }
                bytes.append(high << 4 | low)
            default: bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// A client mistake, rendered as `{"error":{"code","message"}}` with its status; never a 5xx.
struct HTTPAPIError: Error {
    let status: HTTPResponseStatus
    let code: String
    let message: String

    init(_ status: HTTPResponseStatus, code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    var response: HTTPAPIResponse { .error(status, code: code, message) }
}
