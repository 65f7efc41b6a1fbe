/// The RESP wire format, for commands handed to hiredis already encoded. Nothing here allocates beyond the
/// buffer it appends to: jobs are encoded on the event loops, once per decision.
enum RESPEncoding {
    /// `*count\r\n`.
    static func appendArrayHeader(_ count: Int, to buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: "*"))
        appendDecimal(Int64(count), to: &buffer)
        appendLineEnd(to: &buffer)
    }

    /// `$length\r\nbytes\r\n`.
    static func appendBulk(_ bytes: some Collection<UInt8>, to buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: "$"))
        appendDecimal(Int64(bytes.count), to: &buffer)
        appendLineEnd(to: &buffer)
        buffer.append(contentsOf: bytes)
        appendLineEnd(to: &buffer)
    }

    /// `value` in decimal as a bulk string: `$digits\r\n<value>\r\n`.
    static func appendBulk(decimal value: Int64, to buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: "$"))
        appendDecimal(Int64(digits(value)), to: &buffer)
        appendLineEnd(to: &buffer)
        appendDecimal(value, to: &buffer)
        appendLineEnd(to: &buffer)
    }

    /// `value` in decimal, with a leading `-` when negative.
    static func appendDecimal(_ value: Int64, to buffer: inout [UInt8]) {
        if value < 0 { buffer.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var divisor: UInt64 = 1
        while magnitude / divisor >= 10 { divisor *= 10 }
        repeat {
            buffer.append(UInt8(ascii: "0") &+ UInt8(magnitude / divisor))
            magnitude %= divisor
            divisor /= 10
        } while divisor > 0
    }

    /// How many bytes `value` takes in decimal, its sign included.
    static func digits(_ value: Int64) -> Int {
        var count = value < 0 ? 2 : 1
        var magnitude = value.magnitude
        while magnitude >= 10 {
            magnitude /= 10
            count += 1
        }
        return count
    }

    private static func appendLineEnd(to buffer: inout [UInt8]) {
        buffer.append(0x0D)
        buffer.append(0x0A)
    }

    /// A whole command of plain words: `*n` then each as a bulk string.
    static func appendCommand(_ words: [String], to buffer: inout [UInt8]) {
        appendArrayHeader(words.count, to: &buffer)
        for word in words { appendBulk(word.utf8, to: &buffer) }
    }

    /// A whole command of plain words, encoded.
    static func command(_ words: [String]) -> [UInt8] {
        var encoded: [UInt8] = []
        appendCommand(words, to: &encoded)
        return encoded
    }
}
