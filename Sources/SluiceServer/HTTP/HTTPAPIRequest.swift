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
    var path: Substring { uri.utf8.firstIndex(of: UInt8(ascii: "?")).map { uri[..<$0] } ?? uri[...] }

    /// The query's parameters, percent-decoded; the first of a repeated name wins.
    var query: [String: String] {
        var result: [String: String] = [:]
        var uri = uri
        uri.withUTF8 { target in
            Self.forEachQueryParameter(in: UnsafeRawBufferPointer(target)) { name, value in
                guard let name = Self.percentDecoded(name), result[name] == nil else { return }
                result[name] = Self.percentDecoded(value) ?? ""
            }
        }
        return result
    }

    /// Calls `body` with each `name=value` of the query of the request target `uri` (its bytes), raw (not
    /// decoded), without allocating; an empty parameter (`&&`) is skipped, and one without `=` has an empty value.
    static func forEachQueryParameter(in uri: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void) {
        guard var position = uri.firstIndex(of: UInt8(ascii: "?")).map({ $0 + 1 }) else { return }
        while position < uri.count {
            var end = position
            var equals: Int?
            while end < uri.count, uri[end] != UInt8(ascii: "&") {
                if equals == nil, uri[end] == UInt8(ascii: "=") { equals = end }
                end += 1
            }
            if end > position {
                if let equals {
                    body(UnsafeRawBufferPointer(rebasing: uri[position..<equals]), UnsafeRawBufferPointer(rebasing: uri[(equals + 1)..<end]))
                } else {
                    body(UnsafeRawBufferPointer(rebasing: uri[position..<end]), UnsafeRawBufferPointer(rebasing: uri[end..<end]))
                }
            }
            position = end + 1
        }
    }

    /// Whether `bytes` hold an escape to decode: `%`, or in a query (`plusIsSpace`) `+`.
    static func needsDecoding(_ bytes: UnsafeRawBufferPointer, plusIsSpace: Bool = true) -> Bool {
        bytes.contains { $0 == UInt8(ascii: "%") || (plusIsSpace && $0 == UInt8(ascii: "+")) }
    }

    /// Decodes `%XX` escapes and, in a query (`plusIsSpace`), `+` as a space; nil for a malformed escape or
    /// invalid UTF-8.
    static func percentDecoded(_ text: Substring, plusIsSpace: Bool = true) -> String? {
        var text = text
        return text.withUTF8 { percentDecoded(UnsafeRawBufferPointer($0), plusIsSpace: plusIsSpace) }
    }

    /// ``percentDecoded(_:plusIsSpace:)`` of bytes; bytes without escapes become a string as they are, so they
    /// must be valid UTF-8 (a piece of a `String` cut at ASCII bytes is).
    static func percentDecoded(_ text: UnsafeRawBufferPointer, plusIsSpace: Bool = true) -> String? {
        guard needsDecoding(text, plusIsSpace: plusIsSpace) else { return String(decoding: text, as: UTF8.self) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.count)
        var iterator = text.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+") where plusIsSpace: bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(Self.hexValue), let low = iterator.next().flatMap(Self.hexValue) else { return nil }
                bytes.append(high << 4 | low)
            default: bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    /// The value of a hex digit (a percent escape's, a chunk size's), or nil.
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// Comparisons of a request target's bytes with ASCII literals, as memory: the generic `elementsEqual` and
/// `starts(with:)` of a UTF-8 view went element by element through the view's index, tens of nanoseconds on
/// every check's route.
enum TargetBytes {
    static func equal(_ text: some StringProtocol, _ literal: StaticString) -> Bool {
        compare(text, literal) { $0.count == $1.count && $0.elementsEqual($1) }
    }

    static func hasPrefix(_ text: some StringProtocol, _ literal: StaticString) -> Bool {
        compare(text, literal) { $0.count >= $1.count && UnsafeRawBufferPointer(rebasing: $0[..<$1.count]).elementsEqual($1) }
    }

    private static func compare(
        _ text: some StringProtocol, _ literal: StaticString, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Bool
    ) -> Bool {
        let expected = UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount)
        if let result = text.utf8.withContiguousStorageIfAvailable({ body(UnsafeRawBufferPointer($0), expected) }) { return result }
        var copy = String(text)
        return copy.withUTF8 { body(UnsafeRawBufferPointer($0), expected) }
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
