public import NIOCore
public import NIOHTTP1

/// Splits an HTTP/1.1 byte stream into request parts (RFC 9112): a head, the body in pieces, the end.
///
/// Sluice's own parser, in place of NIO's general decoder (llhttp behind a channel handler): the HTTP handler
/// calls it on the bytes it reads, with no pipeline hop or boxing per part, and it does only what a server of
/// this API needs. Its rules:
/// - lines end in CRLF (a bare LF is refused); empty lines before a request line are skipped (§2.2);
/// - a method and a field name are tokens; a request target has no controls, spaces or DEL; the version is
///   `HTTP/1.0` or `HTTP/1.1`; a field value has no controls but HTAB, and loses its surrounding blanks
///   (RFC 9110 §5.5; llhttp kept trailing ones);
///   a line folded onto the previous one (obs-fold) or a blank before the colon is refused;
/// - the body is framed by `Transfer-Encoding: chunked` (the only coding: Sluice decodes no other) or by one
///   `Content-Length` of digits; both at once, two lengths or another coding is refused (§6.3), so the
///   framing can never be read two ways; chunk extensions and trailer fields are read and dropped;
/// - a head or the trailers larger than ``maximumHeadBytes``, or a chunk-size line over 4 KiB, is refused.
/// Unlike llhttp, it takes any token as a method: the API answers an unknown one 405 or 404, not 400.
/// After a `CONNECT` or `Upgrade` request what follows is not HTTP/1.1: it is dropped (the server answers and
/// closes). After an error the parser drops everything: the stream's framing is lost.
///
/// A value type with no I/O: ``next(_:)`` consumes what it has parsed and leaves an incomplete line in the buffer.
public struct HTTPRequestParser: Sendable {
    /// The largest request head, as NIO's decoder allowed (`maxHeaderListSize`, 80 KiB).
    public static let maximumHeadBytes = 80 * 1024
    /// The longest chunk-size line (size and extensions).
    static let maximumChunkLineBytes = 4096

    private enum State {
        case head
        /// The head had no body: the end comes next.
        case endPending
        case body(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        /// The CRLF after a chunk's data.
        case chunkDataEnd
        /// Trailer fields after the last chunk; `bytes` read so far.
        case trailers(bytes: Int)
        /// After `CONNECT` or `Upgrade`, or an error: bytes are dropped.
        case dropping
    }

    private var state = State.head
    /// How far into the pending head the search for its end has gone, so that a head arriving a byte at a time
    /// is scanned once, not once per byte.
    private var scanned = 0
    /// Set by a `CONNECT` or `Upgrade` head: after its end, the parser drops everything.
    private var dropAfterEnd = false

    /// Creates a parser for a new connection.
    public init() {}

    /// Takes the next part off `buffer`.
    ///
    /// - Returns: the part, or nil when `buffer` holds no complete part yet.
    /// - Throws: ``HTTPRequestError`` for bytes that are not a valid request; the parser drops all input after it.
    public mutating func next(_ buffer: inout ByteBuffer) throws(HTTPRequestError) -> HTTPServerRequestPart? {
        do {
            return try step(&buffer)
        } catch {
            state = .dropping
            buffer.moveReaderIndex(to: buffer.writerIndex)
            throw error
        }
    }

    private mutating func step(_ buffer: inout ByteBuffer) throws(HTTPRequestError) -> HTTPServerRequestPart? {
        while true {
            switch state {
            case .head:
                guard let head = try readHead(&buffer) else { return nil }
                return .head(head)
            case .endPending:
                state = dropAfterEnd ? .dropping : .head
                return .end(nil)
            case .body(let remaining):
                guard let piece = Self.readPiece(&buffer, remaining: remaining) else { return nil }
                state = piece.readableBytes == remaining ? .endPending : .body(remaining: remaining - piece.readableBytes)
                return .body(piece)
            case .chunkData(let remaining):
                guard let piece = Self.readPiece(&buffer, remaining: remaining) else { return nil }
                state = piece.readableBytes == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - piece.readableBytes)
                return .body(piece)
            case .chunkDataEnd:
                guard buffer.readableBytes >= 2 else { return nil }
                guard buffer.readInteger(as: UInt16.self) == UInt16(0x0D0A) else { throw .missingChunkEnd }
                state = .chunkSize
            case .chunkSize:
                guard let size = try readChunkSize(&buffer) else { return nil }
                state = size == 0 ? .trailers(bytes: 0) : .chunkData(remaining: size)
            case .trailers(let total):
                guard let length = try Self.lineLength(buffer, maximum: Self.maximumHeadBytes - total, tooLong: .headTooLarge) else { return nil }
                let isLast = length == 2
                if !isLast { try Self.validateTrailer(buffer, length: length) }
                buffer.moveReaderIndex(forwardBy: length)
                if isLast {
                    state = .head
                    return .end(nil)
                }
                state = .trailers(bytes: total + length)
            case .dropping:
                buffer.moveReaderIndex(to: buffer.writerIndex)
                return nil
            }
        }
    }

    /// Up to `remaining` bytes of body, as a slice of `buffer` (no copy); nil when none is there.
    private static func readPiece(_ buffer: inout ByteBuffer, remaining: Int) -> ByteBuffer? {
        guard buffer.readableBytes > 0 else { return nil }
        return buffer.readSlice(length: min(remaining, buffer.readableBytes))
    }

    // MARK: The head

    /// A complete head off `buffer`, or nil (nothing consumed) while its end has not arrived.
    private mutating func readHead(_ buffer: inout ByteBuffer) throws(HTTPRequestError) -> HTTPRequestHead? {
        // Empty lines before a request line are skipped (RFC 9112 §2.2).
        while buffer.readableBytes >= 2, buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) == UInt16(0x0D0A) {
            buffer.moveReaderIndex(forwardBy: 2)
            scanned = 0
        }
        let from = scanned
        let end = try buffer.withUnsafeReadableBytes { bytes throws(HTTPRequestError) -> Int? in
            try Self.headEnd(bytes, from: from)
        }
        guard let end else {
            guard buffer.readableBytes <= Self.maximumHeadBytes else { throw .headTooLarge }
            // Resume at the last byte next time: an empty line is recognised at its LF, looking back.
            scanned = max(0, buffer.readableBytes - 1)
            return nil
        }
        scanned = 0
        let parsed = try buffer.withUnsafeReadableBytes { bytes throws(HTTPRequestError) -> ParsedHead in
            try Self.parseHead(UnsafeRawBufferPointer(rebasing: bytes[..<end]))
        }
        buffer.moveReaderIndex(forwardBy: end)
        if parsed.switchesProtocol {
            // Answered, then the connection closes; what follows is not read.
            state = .endPending
            dropAfterEnd = true
        } else {
            switch parsed.framing {
            case .none, .length(0): state = .endPending
            case .length(let length): state = .body(remaining: length)
            case .chunked: state = .chunkSize
            }
        }
        return parsed.head
    }

    /// The length of the head at the start of `bytes` (through the CRLF of its empty line), or nil when its
    /// end has not arrived. Searches from `from`; a LF not after a CR is refused.
    private static func headEnd(_ bytes: UnsafeRawBufferPointer, from: Int) throws(HTTPRequestError) -> Int? {
        var index = from
        // Not past the cap: what lies beyond it is never parsed, however the bytes arrived.
        while index < min(bytes.count, Self.maximumHeadBytes) {
            if bytes[index] == UInt8(ascii: "\n") {
                guard index > 0, bytes[index - 1] == UInt8(ascii: "\r") else { throw .bareLineFeed }
                // An empty line: this LF's CR follows the previous line's LF.
                if index >= 2, bytes[index - 2] == UInt8(ascii: "\n") { return index + 1 }
            }
            index += 1
        }
        return nil
    }

    private enum Framing {
        case none
        case length(Int)
        case chunked
    }

    private struct ParsedHead {
        let head: HTTPRequestHead
        let framing: Framing
        /// `CONNECT` or `Upgrade`: what follows the head is another protocol.
        let switchesProtocol: Bool
    }

    /// Parses a complete head (request line, fields, empty line), every line ending in CRLF.
    private static func parseHead(_ bytes: UnsafeRawBufferPointer) throws(HTTPRequestError) -> ParsedHead {
        var lineStart = 0
        var lineEnd = Self.lineEnd(bytes, from: 0)
        // The request line: method SP request-target SP HTTP-version.
        guard let firstSpace = bytes[..<lineEnd].firstIndex(of: UInt8(ascii: " ")), firstSpace > 0 else { throw .invalidMethod }
        for index in 0..<firstSpace where !Self.isTokenByte(bytes[index]) { throw .invalidMethod }
        let targetStart = firstSpace + 1
        guard let secondSpace = bytes[targetStart..<lineEnd].firstIndex(of: UInt8(ascii: " ")) else { throw .invalidVersion }
        guard secondSpace > targetStart else { throw .invalidTarget }
        for index in targetStart..<secondSpace where bytes[index] <= 0x20 || bytes[index] == 0x7F { throw .invalidTarget }
        let version = try Self.version(UnsafeRawBufferPointer(rebasing: bytes[(secondSpace + 1)..<lineEnd]))
        let method = Self.method(UnsafeRawBufferPointer(rebasing: bytes[..<firstSpace]))
        let uri = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[targetStart..<secondSpace]), as: UTF8.self)

        var fields: [(String, String)] = []
        var contentLength: Int?
        var chunked = false
        var upgrade = false
        lineStart = lineEnd + 2
        while lineStart < bytes.count - 2 {
            lineEnd = Self.lineEnd(bytes, from: lineStart)
            let (name, value) = try Self.field(UnsafeRawBufferPointer(rebasing: bytes[lineStart..<lineEnd]))
            lineStart = lineEnd + 2
            if Self.equalsIgnoringCase(name, "content-length") {
                guard contentLength == nil else { throw .conflictingLength }
                contentLength = try Self.contentLength(value)
            } else if Self.equalsIgnoringCase(name, "transfer-encoding") {
                // Chunked alone: a body in another coding could not be framed (RFC 9112 §6.3) or not be read.
                guard !chunked, Self.equalsIgnoringCase(value, "chunked") else { throw .unsupportedTransferEncoding }
                chunked = true
            } else if Self.equalsIgnoringCase(name, "upgrade") {
                upgrade = true
            }
            fields.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        }
        if chunked, contentLength != nil { throw .conflictingLength }
        let framing: Framing = chunked ? .chunked : contentLength.map(Framing.length) ?? .none
        let head = HTTPRequestHead(version: version, method: method, uri: uri, headers: HTTPHeaders(fields))
        return ParsedHead(head: head, framing: framing, switchesProtocol: upgrade || method == .CONNECT)
    }

    /// The index of the CR ending the line that starts at `from` (the head is known to end in an empty line).
    private static func lineEnd(_ bytes: UnsafeRawBufferPointer, from: Int) -> Int {
        var index = from
        while bytes[index + 1] != UInt8(ascii: "\n") || bytes[index] != UInt8(ascii: "\r") { index += 1 }
        return index
    }

    private static func version(_ bytes: UnsafeRawBufferPointer) throws(HTTPRequestError) -> HTTPVersion {
        guard bytes.count == 8, bytes.starts(with: "HTTP/1.".utf8) else { throw .invalidVersion }
        switch bytes[7] {
        case UInt8(ascii: "1"): return .http1_1
        case UInt8(ascii: "0"): return .http1_0
        default: throw .invalidVersion
        }
    }

    private static func method(_ bytes: UnsafeRawBufferPointer) -> HTTPMethod {
        if bytes.elementsEqual("GET".utf8) { return .GET }
        if bytes.elementsEqual("POST".utf8) { return .POST }
        return HTTPMethod(rawValue: String(decoding: bytes, as: UTF8.self))
    }

    /// One field line: `name ":" OWS value OWS`, the name a token, the value free of controls but HTAB.
    private static func field(_ line: UnsafeRawBufferPointer) throws(HTTPRequestError) -> (UnsafeRawBufferPointer, UnsafeRawBufferPointer) {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0 else { throw .invalidField }
        // A blank first (obs-fold) or before the colon fails here: neither is a token byte.
        for index in 0..<colon where !Self.isTokenByte(line[index]) { throw .invalidField }
        var start = colon + 1
        var end = line.count
        while start < end, line[start] == UInt8(ascii: " ") || line[start] == UInt8(ascii: "\t") { start += 1 }
        while end > start, line[end - 1] == UInt8(ascii: " ") || line[end - 1] == UInt8(ascii: "\t") { end -= 1 }
        for index in start..<end where !Self.isValueByte(line[index]) { throw .invalidField }
        return (UnsafeRawBufferPointer(rebasing: line[..<colon]), UnsafeRawBufferPointer(rebasing: line[start..<end]))
    }

    private static func contentLength(_ value: UnsafeRawBufferPointer) throws(HTTPRequestError) -> Int {
        guard !value.isEmpty, value.count <= 18 else { throw .invalidContentLength }
        var length = 0
        for byte in value {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { throw .invalidContentLength }
            length = length * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return length
    }

    private static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ lowercase: StaticString) -> Bool {
        guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
        let expected = UnsafeRawBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount)
        for index in 0..<bytes.count where bytes[index] | 0x20 != expected[index] { return false }
        return true
    }

    /// tchar (RFC 9110 §5.6.2).
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "*"),
            UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"),
            UInt8(ascii: "~"):
            true
        default: false
        }
    }

    /// field-vchar, SP or HTAB (RFC 9110 §5.5): no other control, no DEL.
    private static func isValueByte(_ byte: UInt8) -> Bool {
        byte >= 0x20 ? byte != 0x7F : byte == UInt8(ascii: "\t")
    }

    // MARK: Chunks

    /// The length of the line at the start of `buffer` through its CRLF, nil while incomplete; throws `tooLong`
    /// past `maximum` bytes, and for a LF not after a CR.
    private static func lineLength(_ buffer: ByteBuffer, maximum: Int, tooLong: HTTPRequestError) throws(HTTPRequestError) -> Int? {
        try buffer.withUnsafeReadableBytes { bytes throws(HTTPRequestError) -> Int? in
            let limit = max(0, min(bytes.count, maximum))
            guard let newline = bytes[..<limit].firstIndex(of: UInt8(ascii: "\n")) else {
                if bytes.count >= maximum { throw tooLong }
                return nil
            }
            guard newline > 0, bytes[newline - 1] == UInt8(ascii: "\r") else { throw .bareLineFeed }
            return newline + 1
        }
    }

    /// A chunk's size (`1*HEXDIG [ chunk-ext ] CRLF`), consumed; nil while its line is incomplete.
    private func readChunkSize(_ buffer: inout ByteBuffer) throws(HTTPRequestError) -> Int? {
        guard let length = try Self.lineLength(buffer, maximum: Self.maximumChunkLineBytes, tooLong: .invalidChunkSize) else { return nil }
        let size = try buffer.withUnsafeReadableBytes { bytes throws(HTTPRequestError) -> Int in
            var size = 0
            var index = 0
            while index < length - 2, let digit = HTTPAPIRequest.hexValue(bytes[index]) {
                guard index < 15 else { throw .invalidChunkSize }  // beyond 2^60: no body here is that large
                size = size << 4 | Int(digit)
                index += 1
            }
            guard index > 0 else { throw .invalidChunkSize }
            // Blanks, then extensions (`;name=value`), read past: no control but HTAB.
            while index < length - 2, bytes[index] == UInt8(ascii: " ") || bytes[index] == UInt8(ascii: "\t") { index += 1 }
            guard index == length - 2 || bytes[index] == UInt8(ascii: ";") else { throw .invalidChunkSize }
            for position in index..<(length - 2) where !Self.isValueByte(bytes[position]) { throw .invalidChunkSize }
            return size
        }
        buffer.moveReaderIndex(forwardBy: length)
        return size
    }

    /// A trailer field line (`length` bytes with its CRLF) is a field line; its content is dropped.
    private static func validateTrailer(_ buffer: ByteBuffer, length: Int) throws(HTTPRequestError) {
        try buffer.withUnsafeReadableBytes { bytes throws(HTTPRequestError) in
            _ = try Self.field(UnsafeRawBufferPointer(rebasing: bytes[..<(length - 2)]))
        }
    }
}

/// Why bytes are not a valid HTTP/1.1 request: what the 400 says.
public struct HTTPRequestError: Error, Equatable, CustomStringConvertible {
    /// What is wrong, for the 400's message.
    public let description: String

    private init(_ description: String) { self.description = description }

    public static let bareLineFeed = Self("a line ends in LF without CR")
    public static let headTooLarge = Self("the request head (or a chunk's trailers) is larger than \(HTTPRequestParser.maximumHeadBytes) bytes")
    public static let invalidMethod = Self("the request line does not start with a method (a token) and one space")
    public static let invalidTarget = Self("the request target is empty or holds a control character, a space or DEL")
    public static let invalidVersion = Self("the version is not HTTP/1.0 or HTTP/1.1")
    public static let invalidField = Self("a header field is not a token, a colon and a value without control characters")
    public static let invalidContentLength = Self("Content-Length is not a decimal number")
    public static let conflictingLength = Self("the body's length is stated twice (two Content-Length fields, or one and Transfer-Encoding)")
    public static let unsupportedTransferEncoding = Self("Transfer-Encoding is not chunked (the only coding served)")
    public static let invalidChunkSize = Self("a chunk's size line is not hex digits with optional extensions")
    public static let missingChunkEnd = Self("a chunk's data is not followed by CRLF")
}
