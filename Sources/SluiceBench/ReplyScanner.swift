/// What one reply said.
public enum ReplyOutcome: Sendable, Equatable {
    case allowed
    case denied
    /// An error reply: RESP `-ERR ...`, an HTTP status other than 200 and the deny status, a gRPC error.
    case errorReply
}

/// A reply that is not what the server should send: the connection is dropped.
public struct ReplyProtocolError: Error, Equatable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// Finds whole replies at the start of received bytes without copying them: the line protocol's RESP and HTTP/1.1
/// responses. Each returns nil while the reply is incomplete.
public enum ReplyScanner {
    /// The deepest RESP nesting accepted (a decision is depth 1, MTAKE's depth 2).
    static let maximumDepth = 4
    /// The longest RESP line or HTTP header section accepted before the reply is called broken.
    static let maximumLine = 64 * 1024

    /// One RESP reply: its length in bytes and what it decided. A decision (TAKE, THROTTLE, MTAKE) is an array
    /// whose first element is `:1` (allowed) or `:0`; `-...` is an error reply.
    public static func resp(_ bytes: UnsafeRawBufferPointer) throws(ReplyProtocolError) -> (length: Int, outcome: ReplyOutcome)? {
        guard let first = bytes.first else { return nil }
        switch first {
        case UInt8(ascii: "-"):
            guard let end = try lineEnd(bytes, from: 0) else { return nil }
            return (end, .errorReply)
        case UInt8(ascii: "*"):
            guard let (count, headerEnd) = try integerLine(bytes, from: 0) else { return nil }
            guard count >= 1, bytes.count > headerEnd else {
                if count < 1 { throw ReplyProtocolError("an empty or null array is not a decision") }
                return nil
            }
            guard bytes[headerEnd] == UInt8(ascii: ":") else { throw ReplyProtocolError("a decision starts with an integer") }
            guard let (allowed, _) = try integerLine(bytes, from: headerEnd) else { return nil }
            var position = headerEnd
            for _ in 0..<count {
                guard let next = try skip(bytes, from: position, depth: 1) else { return nil }
                position = next
            }
            return (position, allowed == 1 ? .allowed : .denied)
        default:
            throw ReplyProtocolError("unexpected reply type byte \(first)")
        }
    }

    /// The end of the RESP value at `start`, nil when it is incomplete.
    private static func skip(_ bytes: UnsafeRawBufferPointer, from start: Int, depth: Int) throws(ReplyProtocolError) -> Int? {
        guard start < bytes.count else { return nil }
        switch bytes[start] {
        case UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: ":"):
            return try lineEnd(bytes, from: start)
        case UInt8(ascii: "$"):
            guard let (length, headerEnd) = try integerLine(bytes, from: start) else { return nil }
            if length < 0 { return headerEnd }
            let end = headerEnd + Int(length) + 2
            return end <= bytes.count ? end : nil
        case UInt8(ascii: "*"):
            guard depth < maximumDepth else { throw ReplyProtocolError("replies nested deeper than \(maximumDepth)") }
            guard let (count, headerEnd) = try integerLine(bytes, from: start) else { return nil }
            var position = headerEnd
            for _ in 0..<max(count, 0) {
                guard let next = try skip(bytes, from: position, depth: depth + 1) else { return nil }
                position = next
            }
            return position
        default:
            throw ReplyProtocolError("unexpected reply type byte \(bytes[start])")
        }
    }

    /// The index after the CR LF ending the line at `start`.
    private static func lineEnd(_ bytes: UnsafeRawBufferPointer, from start: Int) throws(ReplyProtocolError) -> Int? {
        var index = start
        while index + 1 < bytes.count {
            if bytes[index] == UInt8(ascii: "\r") {
                guard bytes[index + 1] == UInt8(ascii: "\n") else { throw ReplyProtocolError("CR without LF") }
                return index + 2
            }
            index += 1
            if index - start > maximumLine { throw ReplyProtocolError("a line longer than \(maximumLine) bytes") }
        }
        return nil
    }

    /// The decimal after the type byte at `start`, and the index after its line.
    private static func integerLine(_ bytes: UnsafeRawBufferPointer, from start: Int) throws(ReplyProtocolError) -> (Int64, Int)? {
        guard let end = try lineEnd(bytes, from: start) else { return nil }
        var value: Int64 = 0
        var index = start + 1
        let negative = index < end - 2 && bytes[index] == UInt8(ascii: "-")
        if negative { index += 1 }
        guard index < end - 2, end - 2 - index <= 18 else { throw ReplyProtocolError("a RESP integer of no or too many digits") }
        while index < end - 2 {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit <= 9 else { throw ReplyProtocolError("a RESP integer with a non-digit") }
            value = value * 10 + Int64(digit)
            index += 1
        }
        return (negative ? -value : value, end)
    }

    /// One HTTP/1.1 response with a `Content-Length` body: its length, its status, and whether the server said
    /// it closes the connection after it.
    public static func http(_ bytes: UnsafeRawBufferPointer) throws(ReplyProtocolError) -> (length: Int, status: Int, closes: Bool)? {
        // The status line: "HTTP/1.1 200 ...".
        guard bytes.count >= 12 else { return nil }
        guard bytes[0] == UInt8(ascii: "H"), bytes[4] == UInt8(ascii: "/"), bytes[8] == UInt8(ascii: " ") else {
            throw ReplyProtocolError("not an HTTP/1.x status line")
        }
        var status = 0
        for index in 9..<12 {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit <= 9 else { throw ReplyProtocolError("an HTTP status that is not three digits") }
            status = status * 10 + Int(digit)
        }
        var contentLength: Int?
        var closes = false
        var lineStart = 0
        var index = 0
        while index + 1 < bytes.count {
            if bytes[index] == UInt8(ascii: "\r"), bytes[index + 1] == UInt8(ascii: "\n") {
                if index == lineStart {  // the empty line: the headers end here
                    guard let contentLength else {
                        throw ReplyProtocolError("a response without Content-Length (chunked bodies are not read)")
                    }
                    let end = index + 2 + contentLength
                    return end <= bytes.count ? (end, status, closes) : nil
                }
                if lineStart > 0 {
                    let line = UnsafeRawBufferPointer(rebasing: bytes[lineStart..<index])
                    if let value = headerValue(line, named: "content-length") {
                        guard let length = Int(String(decoding: value, as: UTF8.self)), length >= 0, length <= 64 << 20 else {
                            throw ReplyProtocolError("a bad Content-Length")
                        }
                        contentLength = length
                    } else if let value = headerValue(line, named: "connection") {
                        closes = String(decoding: value, as: UTF8.self).lowercased().contains("close")
                    }
                }
                lineStart = index + 2
                index += 2
                continue
            }
            index += 1
            if index > maximumLine { throw ReplyProtocolError("response headers longer than \(maximumLine) bytes") }
        }
        return nil
    }

    /// The trimmed value of `line` when it is the header `name` (lowercase ASCII), any case.
    private static func headerValue(_ line: UnsafeRawBufferPointer, named name: StaticString) -> UnsafeRawBufferPointer.SubSequence? {
        let count = name.utf8CodeUnitCount
        guard line.count > count, line[count] == UInt8(ascii: ":") else { return nil }
        let matches = name.withUTF8Buffer { expected in
            (0..<count).allSatisfy { line[$0] | 0x20 == expected[$0] }
        }
        guard matches else { return nil }
        var start = count + 1
        var end = line.count
        while start < end, line[start] == UInt8(ascii: " ") || line[start] == UInt8(ascii: "\t") { start += 1 }
        while end > start, line[end - 1] == UInt8(ascii: " ") || line[end - 1] == UInt8(ascii: "\t") { end -= 1 }
        return line[start..<end]
    }
}
