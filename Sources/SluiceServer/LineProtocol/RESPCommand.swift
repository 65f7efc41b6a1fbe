public import NIOCore

/// One request from a line-protocol client: its arguments, as slices of the frame it arrived in.
///
/// Arguments are kept as offsets into one `ByteBuffer` slice (no copy, no per-argument buffer); the
/// first eight are stored inline, so a typical command allocates nothing.
public struct RESPCommand: Sendable, Equatable {
    /// The frame's bytes (shares storage with the connection's read buffer).
    public let frame: ByteBuffer
    let arguments: Arguments

    /// Argument positions within the frame: the first eight inline, the rest in an array.
    struct Arguments: Sendable {
        private var inline = InlineArray<8, UInt64>(repeating: 0)
        private var overflow: [UInt64] = []
        private(set) var count = 0

        mutating func append(offset: Int, length: Int) {
            let packed = UInt64(UInt32(truncatingIfNeeded: offset)) << 32 | UInt64(UInt32(truncatingIfNeeded: length))
            if count < 8 { inline[count] = packed } else { overflow.append(packed) }
            count += 1
        }

        func range(_ index: Int) -> (offset: Int, length: Int) {
            let packed = index < 8 ? inline[index] : overflow[index - 8]
            return (Int(packed >> 32), Int(packed & 0xFFFF_FFFF))
        }
    }

    init(frame: ByteBuffer, arguments: Arguments) {
        self.frame = frame
        self.arguments = arguments
    }

    /// The number of arguments, the command name included.
    public var count: Int { arguments.count }

    private func range(_ index: Int) -> (offset: Int, length: Int) { arguments.range(index) }

    /// The length in bytes of argument `index`.
    public func length(_ index: Int) -> Int { range(index).length }

    /// Calls `body` with the bytes of argument `index`, in place.
    public func withArgument<Result>(_ index: Int, _ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        let (offset, length) = range(index)
        return try frame.withUnsafeReadableBytes { bytes in
            try body(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)]))
        }
    }

    /// A copy of argument `index`'s bytes.
    public func bytes(_ index: Int) -> [UInt8] {
        withArgument(index) { Array($0) }
    }

    /// Argument `index` as a `String` (copies; for replies, logs and tests).
    public func string(_ index: Int) -> String {
        withArgument(index) { String(decoding: $0, as: UTF8.self) }
    }

    /// All arguments as strings (copies; for tests).
    public var strings: [String] { (0..<count).map(string) }

    /// Whether argument `index` equals `word`, ignoring ASCII case. `word` must be upper case.
    public func argument(_ index: Int, equalsUppercase word: StaticString) -> Bool {
        withArgument(index) { bytes in
            guard bytes.count == word.utf8CodeUnitCount else { return false }
            let expected = UnsafeRawBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
            for position in 0..<bytes.count {
                var byte = bytes[position]
                if byte >= 0x61 && byte <= 0x7A { byte -= 0x20 }
                if byte != expected[position] { return false }
            }
            return true
        }
    }

    /// Argument `index` as a strictly positive decimal integer, or nil (sign, spaces, overflow all fail).
    public func positiveInteger(_ index: Int) -> Int64? {
        withArgument(index) { bytes in
            guard !bytes.isEmpty, bytes.count <= 19 else { return nil }
            var value: Int64 = 0
            for byte in bytes {
                guard byte >= 0x30, byte <= 0x39 else { return nil }
                // 19 digits can exceed Int64.max (e.g. 9999999999999999999): overflow must fail, not trap.
                let (shifted, shiftOverflow) = value.multipliedReportingOverflow(by: 10)
                let (sum, sumOverflow) = shifted.addingReportingOverflow(Int64(byte - 0x30))
                guard !shiftOverflow, !sumOverflow else { return nil }
                value = sum
            }
            return value > 0 ? value : nil
        }
    }

    public static func == (lhs: RESPCommand, rhs: RESPCommand) -> Bool { lhs.strings == rhs.strings }
}
