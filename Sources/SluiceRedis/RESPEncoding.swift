/// The RESP wire format, for commands handed to hiredis already encoded.
enum RESPEncoding {
    /// `*count\r\n`.
    static func appendArrayHeader(_ count: Int, to buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: "*"))
        buffer.append(contentsOf: decimal(Int64(count)))
        buffer.append(contentsOf: [0x0D, 0x0A])
    }

    /// `$length\r\nbytes\r\n`.
    static func appendBulk(_ bytes: some Collection<UInt8>, to buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: "$"))
        buffer.append(contentsOf: decimal(Int64(bytes.count)))
        buffer.append(contentsOf: [0x0D, 0x0A])
        buffer.append(contentsOf: bytes)
        buffer.append(contentsOf: [0x0D, 0x0A])
    }

    static func decimal(_ value: Int64) -> [UInt8] {
        if value == 0 { return [UInt8(ascii: "0")] }
        var digits: [UInt8] = []
        digits.reserveCapacity(20)
        var magnitude = value.magnitude
        while magnitude > 0 {
            digits.append(UInt8(ascii: "0") + UInt8(magnitude % 10))
            magnitude /= 10
        }
        if value < 0 { digits.append(UInt8(ascii: "-")) }
        digits.reverse()
        return digits
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
