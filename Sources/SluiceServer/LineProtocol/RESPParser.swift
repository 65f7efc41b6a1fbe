public import NIOCore
public import SluiceConfig

/// Splits a byte stream into commands: RESP arrays of bulk strings, or inline commands (`TAKE api k\r\n`).
///
/// A value type with no I/O: it looks at a buffer's readable bytes and either returns one command
/// (consuming its frame), returns nil (more bytes needed; nothing consumed), or throws a
/// ``RESPProtocolError`` for a frame that can never become valid. Every size is capped, so a client can
/// make the connection buffer at most `max_frame_bytes` (or `max_line_bytes` for an inline line) before it is refused.
public struct RESPParser: Sendable {
    /// The caps in force: `max_line_bytes` (the longest inline line and bulk string), `max_arguments` and
    /// `max_frame_bytes` (the largest whole RESP array, headers included: what one connection may make the
    /// server buffer for a command it has not finished sending).
    public let limits: SluiceConfiguration.Limits
    private let maximumFrameBytes: Int

    /// Creates a parser.
    public init(limits: SluiceConfiguration.Limits = SluiceConfiguration.Limits()) {
        self.limits = limits
        maximumFrameBytes = limits.effectiveMaxFrameBytes
    }

    private enum Outcome {
        case incomplete
        case skip(length: Int)
        case command(length: Int, arguments: RESPCommand.Arguments)
        case failure(RESPProtocolError)
    }

    /// The longest `*<count>` or `$<length>` header line we wait for.
    private static let maximumHeaderBytes = 32

    /// Takes the next command off `buffer`.
    ///
    /// - Parameter buffer: the connection's pending bytes; a complete frame is consumed from it.
    /// - Returns: the command, or nil when `buffer` holds no complete frame yet.
    /// - Throws: ``RESPProtocolError`` for a malformed or oversized frame.
    public func parse(_ buffer: inout ByteBuffer) throws(RESPProtocolError) -> RESPCommand? {
        while true {
            let outcome = buffer.withUnsafeReadableBytes { bytes -> Outcome in
                guard let first = bytes.first else { return .incomplete }
                return first == UInt8(ascii: "*") ? parseArray(bytes) : parseInline(bytes)
            }
            switch outcome {
            case .incomplete:
                return nil
            case .skip(let length):
                buffer.moveReaderIndex(forwardBy: length)
            case .failure(let error):
                throw error
            case .command(let length, let arguments):
                guard let frame = buffer.readSlice(length: length) else { return nil }
                return RESPCommand(frame: frame, arguments: arguments)
            }
        }
    }

    /// Reads `<integer>\r\n` starting at `start`; returns the value and the index after the CRLF.
    private func header(_ bytes: UnsafeRawBufferPointer, from start: Int) -> (value: Int, next: Int)?? {
        var index = start
        var negative = false
        var value = 0
        var digits = 0
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        while index < bytes.count, index - start < Self.maximumHeaderBytes {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\r") {
                guard index + 1 < bytes.count else { return .some(nil) }
                guard bytes[index + 1] == UInt8(ascii: "\n"), digits > 0 else { return nil }
                return (negative ? -value : value, index + 2)
            }
            guard byte >= 0x30, byte <= 0x39, digits < 18 else { return nil }
            value = value * 10 + Int(byte - 0x30)
            digits += 1
            index += 1
        }
        return index - start >= Self.maximumHeaderBytes ? nil : .some(nil)
    }

    private func parseArray(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        guard let parsed = header(bytes, from: 1) else { return .failure(RESPProtocolError("invalid multibulk length")) }
        guard let (count, afterCount) = parsed else { return .incomplete }
        if count <= 0 { return .skip(length: afterCount) }
        guard count <= limits.maxArguments else {
            return .failure(RESPProtocolError("too many arguments: \(count), at most \(limits.maxArguments)"))
        }
        var arguments = RESPCommand.Arguments()
        var index = afterCount
        for _ in 0..<count {
            guard index < bytes.count else { return .incomplete }
            guard bytes[index] == UInt8(ascii: "$") else {
                return .failure(RESPProtocolError("expected '$', got '\(Self.printable(bytes[index]))'"))
            }
            guard let bulk = header(bytes, from: index + 1) else { return .failure(RESPProtocolError("invalid bulk length")) }
            guard let (length, start) = bulk else { return .incomplete }
            guard length >= 0, length <= limits.maxLineBytes else {
                return .failure(RESPProtocolError("invalid bulk length \(length), at most \(limits.maxLineBytes)"))
            }
            guard start + length + 2 <= maximumFrameBytes else {
                return .failure(RESPProtocolError("command larger than \(maximumFrameBytes) bytes"))
            }
            guard start + length + 2 <= bytes.count else { return .incomplete }
            guard bytes[start + length] == UInt8(ascii: "\r"), bytes[start + length + 1] == UInt8(ascii: "\n") else {
                return .failure(RESPProtocolError("bulk string of \(length) bytes not followed by CRLF"))
            }
            arguments.append(offset: start, length: length)
            index = start + length + 2
        }
        return .command(length: index, arguments: arguments)
    }

    private func parseInline(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        let searchable = min(bytes.count, limits.maxLineBytes + 2)
        guard let newline = bytes[0..<searchable].firstIndex(of: UInt8(ascii: "\n")) else {
            if bytes.count > limits.maxLineBytes + 1 {
                return .failure(RESPProtocolError("inline command longer than \(limits.maxLineBytes) bytes"))
            }
            return .incomplete
        }
        var end = newline
        if end > 0, bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        // The search above admits one byte more than the cap, room for a CR; a bare-LF line must not use it.
        guard end <= limits.maxLineBytes else {
            return .failure(RESPProtocolError("inline command longer than \(limits.maxLineBytes) bytes"))
        }
        var arguments = RESPCommand.Arguments()
        var start: Int?
        for index in 0..<end {
            let byte = bytes[index]
            if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") {
                if let open = start {
                    arguments.append(offset: open, length: index - open)
                    start = nil
                }
            } else if byte < 0x20 || byte == 0x7F {
                return .failure(RESPProtocolError("binary data in an inline command; send binary keys as a RESP array"))
            } else if start == nil {
                start = index
            }
        }
        if let open = start { arguments.append(offset: open, length: end - open) }
        guard arguments.count > 0 else { return .skip(length: newline + 1) }
        guard arguments.count <= limits.maxArguments else {
            return .failure(RESPProtocolError("too many arguments: \(arguments.count), at most \(limits.maxArguments)"))
        }
        return .command(length: newline + 1, arguments: arguments)
    }

    private static func printable(_ byte: UInt8) -> String {
        byte >= 0x20 && byte < 0x7F ? String(UnicodeScalar(byte)) : "\\x" + String(byte, radix: 16)
    }
}

/// The parser as a `ByteToMessageDecoder`, for pipelines that want commands as messages (and for
/// `ByteToMessageDecoderVerifier`). The server's own handler drives ``RESPParser`` directly so it does
/// not box each command in `NIOAny`.
public struct RESPCommandDecoder: ByteToMessageDecoder {
    public typealias InboundOut = RESPCommand
    let parser: RESPParser

    /// Creates a decoder with `limits`.
    public init(limits: SluiceConfiguration.Limits = SluiceConfiguration.Limits()) { parser = RESPParser(limits: limits) }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let command = try parser.parse(&buffer) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(command))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }
}
