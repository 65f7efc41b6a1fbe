import NIOCore

/// Writes into memory reserved in a `ByteBuffer` beforehand: a response head checks the buffer's capacity and
/// uniqueness once, not once for each of its thirty-odd pieces, as `ByteBuffer`'s own writes do (those checks
/// were most of the cost of rendering a decision).
///
/// It never writes past the reservation: a piece that does not fit marks it overflowed, and
/// ``NIOCore/ByteBuffer/writeReserved(estimate:_:)`` then starts again with twice the room, so an estimate
/// only has to be good, not right.
struct ReservedBytes: ~Copyable {
    private let memory: UnsafeMutableRawBufferPointer
    private(set) var count = 0
    private(set) var overflowed = false

    fileprivate init(_ memory: UnsafeMutableRawBufferPointer) { self.memory = memory }

    mutating func append(_ text: StaticString) {
        append(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// `text` as a JSON string literal: its bytes between quotes when none needs escaping (printable ASCII other than
    /// `"` and `\`, as policy names are), else as ``JSONText/quoted(_:)`` escapes it (which builds a string).
    mutating func appendJSONQuoted(_ text: String) {
        var text = text
        let plain = text.withUTF8 { bytes in
            bytes.allSatisfy { $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }
        }
        guard plain else { return append(JSONText.quoted(text)) }
        append(ascii: UInt8(ascii: "\""))
        append(text)
        append(ascii: UInt8(ascii: "\""))
    }

    mutating func append(ascii byte: UInt8) {
        guard !overflowed, count < memory.count else {
            overflowed = true
            return
        }
        memory[count] = byte
        count += 1
    }

    /// `value` in decimal ASCII.
    mutating func appendDecimal(_ value: Int64) {
        guard !overflowed, memory.count - count >= 20 else {
            overflowed = true
            return
        }
        count = ByteBuffer.putDecimal(value, into: memory, at: count)
    }

    private mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard !overflowed, bytes.count <= memory.count - count else {
            overflowed = true
            return
        }
        guard let source = bytes.baseAddress, let destination = memory.baseAddress else { return }
        (destination + count).copyMemory(from: source, byteCount: bytes.count)
        count += bytes.count
    }
}

extension ByteBuffer {
    /// Appends what `body` writes, in room reserved for `estimate` bytes (twice as much, and again, if it
    /// did not fit: `body` must write the same bytes each time it is called).
    mutating func writeReserved(estimate: Int, _ body: (inout ReservedBytes) -> Void) {
        var room = Swift.max(estimate, 64)
        while true {
            var overflowed = false
            writeWithUnsafeMutableBytes(minimumWritableBytes: room) { memory in
                var bytes = ReservedBytes(memory)
                body(&bytes)
                overflowed = bytes.overflowed
                return overflowed ? 0 : bytes.count
            }
            guard overflowed else { return }
            room *= 2
        }
    }
}
