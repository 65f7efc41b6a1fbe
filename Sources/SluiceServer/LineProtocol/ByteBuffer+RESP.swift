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
        // One capacity check for the whole reply (at most 4 + 5 × 23 bytes) instead of one per piece.
        writeWithUnsafeMutableBytes(minimumWritableBytes: 128) { buffer in
            var position = 0
            func put(_ byte: UInt8) {
                buffer[position] = byte
                position += 1
            }
            func integer(_ value: Int64) {
                put(UInt8(ascii: ":"))
                if value < 0 { put(UInt8(ascii: "-")) }
                var magnitude = value.magnitude
                var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
                    (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
                var count = 0
                withUnsafeMutableBytes(of: &digits) { digitBytes in
                    repeat {
                        digitBytes[count] = UInt8(0x30 + magnitude % 10)
                        magnitude /= 10
                        count += 1
                    } while magnitude > 0
                    while count > 0 {
                        count -= 1
                        put(digitBytes[count])
                    }
                }
                put(0x0D)
                put(0x0A)
            }
            put(UInt8(ascii: "*"))
            put(UInt8(ascii: "5"))
            put(0x0D)
            put(0x0A)
            integer(fields.0)
            integer(fields.1)
            integer(fields.2)
            integer(fields.3)
            integer(fields.4)
            return position
        }
    }

    /// `value` in decimal ASCII, without allocating.
    mutating func writeDecimal(_ value: Int64) {
        if value >= 0 && value < 10 {
            writeInteger(UInt8(0x30 + value))
            return
        }
        writeWithUnsafeMutableBytes(minimumWritableBytes: 20) { buffer in
            var magnitude = value.magnitude
            var digits = 0
            var probe = magnitude
            repeat {
                digits += 1
                probe /= 10
            } while probe > 0
            var position = 0
            if value < 0 {
                buffer[0] = UInt8(ascii: "-")
                position = 1
            }
            var index = position + digits - 1
            repeat {
                buffer[index] = UInt8(0x30 + magnitude % 10)
                magnitude /= 10
                index -= 1
            } while magnitude > 0
            return position + digits
        }
    }
}
