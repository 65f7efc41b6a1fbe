public import NIOCore
public import SluiceCore

/// RESP2 and RESP3 replies, written straight into the connection's output buffer.
extension ByteBuffer {
    /// `:<value>\r\n`, formatted without allocating.
    public mutating func writeRESPInteger(_ value: Int64) {
        writeInteger(UInt8(ascii: ":"))
        writeDecimal(value)
        writeStaticString("\r\n")
    }

    /// `*<count>\r\n`.
    public mutating func writeRESPArrayHeader(_ count: Int) {
        writeInteger(UInt8(ascii: "*"))
        writeDecimal(Int64(count))
        writeStaticString("\r\n")
    }

    /// `%<count>\r\n` in RESP3, `*<2 × count>\r\n` in RESP2 (a flat list of pairs, as Redis does).
    public mutating func writeRESPMapHeader(_ count: Int, resp3: Bool) {
        if resp3 {
            writeInteger(UInt8(ascii: "%"))
            writeDecimal(Int64(count))
            writeStaticString("\r\n")
        } else {
            writeRESPArrayHeader(count * 2)
        }
    }

    /// `$<length>\r\n<bytes>\r\n`.
    public mutating func writeRESPBulkString(_ string: String) {
        writeInteger(UInt8(ascii: "$"))
        writeDecimal(Int64(string.utf8.count))
        writeStaticString("\r\n")
        writeString(string)
        writeStaticString("\r\n")
    }

    /// `$<length>\r\n<bytes>\r\n` from raw bytes, copied verbatim (binary safe).
    public mutating func writeRESPBulkString(bytes: UnsafeRawBufferPointer) {
        writeInteger(UInt8(ascii: "$"))
        writeDecimal(Int64(bytes.count))
        writeStaticString("\r\n")
        writeBytes(bytes)
        writeStaticString("\r\n")
    }

    /// `$-1\r\n` in RESP2, `_\r\n` in RESP3.
    public mutating func writeRESPNull(resp3: Bool) {
        writeStaticString(resp3 ? "_\r\n" : "$-1\r\n")
    }

    /// `+<text>\r\n`; `text` must not contain CR or LF.
    public mutating func writeRESPSimpleString(_ text: StaticString) {
        writeInteger(UInt8(ascii: "+"))
        writeStaticString(text)
        writeStaticString("\r\n")
    }

    /// `-<message>\r\n` with CR and LF in `message` replaced by spaces, so an error can never break framing.
    public mutating func writeRESPError(_ message: String) {
        writeInteger(UInt8(ascii: "-"))
        for byte in message.utf8 {
            writeInteger(byte == 0x0D || byte == 0x0A ? UInt8(ascii: " ") : byte)
        }
        writeStaticString("\r\n")
    }

    /// A decision: `*5` integers `[allowed 0|1, limit, remaining, reset_after_ms, retry_after_ms]`.
    ///
    /// Milliseconds are rounded up, so waiting `retry_after_ms` always suffices; `retry_after_ms` is -1
    /// when the cost exceeds the capacity and can never pass.
    public mutating func writeRESPDecision(_ decision: Decision) {
        let allowed = decision.isAllowed
        let fields: (Int64, Int64, Int64, Int64, Int64) = (
            allowed ? 1 : 0, decision.limit, decision.remaining, decision.resetAfterMilliseconds, decision.retryAfterMilliseconds
        )
        // One capacity check for the whole reply (at most 4 + 5 × 23 bytes) instead of one per piece. Written with
        // an explicit position and no nested functions: a local variable captured by nested functions is checked
        // for exclusive access at run time on every use (swift_beginAccess and its bookkeeping: about 8% of the
        // profile under redis-benchmark -P 16).
        writeWithUnsafeMutableBytes(minimumWritableBytes: 128) { buffer in
            buffer[0] = UInt8(ascii: "*")
            buffer[1] = UInt8(ascii: "5")
            buffer[2] = 0x0D
            buffer[3] = 0x0A
            var position = Self.putRESPInteger(fields.0, into: buffer, at: 4)
            position = Self.putRESPInteger(fields.1, into: buffer, at: position)
            position = Self.putRESPInteger(fields.2, into: buffer, at: position)
            position = Self.putRESPInteger(fields.3, into: buffer, at: position)
            return Self.putRESPInteger(fields.4, into: buffer, at: position)
        }
    }

    /// Writes `:<value>\r\n` at `start` (at most 23 bytes) and returns the position after it.
    @inline(__always)
    static func putRESPInteger(_ value: Int64, into buffer: UnsafeMutableRawBufferPointer, at start: Int) -> Int {
        buffer[start] = UInt8(ascii: ":")
        let end = putDecimal(value, into: buffer, at: start + 1)
        buffer[end] = 0x0D
        buffer[end + 1] = 0x0A
        return end + 2
    }

    /// Writes `value` in decimal ASCII at `start` (at most 20 bytes) and returns the position after it.
    ///
    /// The length comes from comparisons with powers of ten, and the digits two at a time from a table: a
    /// response carries a dozen numbers of about ten digits, and dividing by 10 digit by digit, twice (to count,
    /// then to write), was a chain of forty dependent steps each.
    @inline(__always)
    static func putDecimal(_ value: Int64, into buffer: UnsafeMutableRawBufferPointer, at start: Int) -> Int {
        var position = start
        if value < 0 {
            buffer[position] = UInt8(ascii: "-")
            position += 1
        }
        var magnitude = value.magnitude
        // An Int64's magnitude has at most 19 digits, and 10^19 still fits in a UInt64.
        var digits = 1
        var power: UInt64 = 10
        while digits < 19, magnitude >= power {
            digits += 1
            power &*= 10
        }
        let pairs = Self.digitPairs.utf8Start
        var index = position + digits
        while magnitude >= 100 {
            let pair = Int(magnitude % 100) &* 2
            magnitude /= 100
            index -= 2
            buffer[index] = pairs[pair]
            buffer[index + 1] = pairs[pair + 1]
        }
        if magnitude >= 10 {
            let pair = Int(magnitude) &* 2
            buffer[index - 2] = pairs[pair]
            buffer[index - 1] = pairs[pair + 1]
        } else {
            buffer[index - 1] = UInt8(truncatingIfNeeded: 0x30 + magnitude)
        }
        return position + digits
    }

    /// "00" to "99", back to back.
    private static let digitPairs: StaticString =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"

    /// `value` in decimal ASCII, without allocating.
    mutating func writeDecimal(_ value: Int64) {
        if value >= 0 && value < 10 {
            writeInteger(UInt8(0x30 + value))
            return
        }
        writeWithUnsafeMutableBytes(minimumWritableBytes: 20) { Self.putDecimal(value, into: $0, at: 0) }
    }
}
