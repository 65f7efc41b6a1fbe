/// A stable, seedable 128-bit hash (two 64-bit lanes of multiply-fold mixing, in the style of wyhash).
///
/// Stable means the same bytes and seed give the same value on every run and machine (little-endian
/// loads are explicit), so shard placement and policy fingerprints do not change across restarts.
/// It is not a cryptographic hash: key identity uses both lanes (about 104 bits after tagging).
public struct StableHasher: Sendable {
    static let prime0: UInt64 = 0xa076_1d64_78bd_642f
    static let prime1: UInt64 = 0xe703_7ed1_a0b4_28db
    static let prime2: UInt64 = 0x8ebc_6af0_9c88_c6e3
    static let prime3: UInt64 = 0x5899_65cc_7537_4cc3

    var laneA: UInt64
    var laneB: UInt64
    var length: UInt64 = 0

    /// Starts a hash with `seed`.
    public init(seed: UInt64) {
        laneA = seed ^ Self.prime0
        laneB = (seed &* Self.prime1) ^ Self.prime2
    }

    @inline(__always)
    static func fold(_ x: UInt64, _ y: UInt64) -> UInt64 {
        let product = x.multipliedFullWidth(by: y)
        return product.high ^ product.low
    }

    /// Mixes in one 64-bit word.
    @inline(__always)
    public mutating func combine(_ word: UInt64) {
        laneA = Self.fold(laneA ^ word, Self.prime1)
        laneB = Self.fold(laneB ^ ((word << 32) | (word >> 32)), Self.prime3)
        length &+= 8
    }

    /// Mixes in raw bytes, eight at a time.
    ///
    /// - Complexity: O(n) in the number of bytes, two 64x64→128 multiplies per 8 bytes.
    @inline(__always)
    public mutating func combine(bytes: UnsafeRawBufferPointer) {
        var offset = 0
        let count = bytes.count
        while offset + 8 <= count {
            combine(UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)))
            offset += 8
        }
        if offset < count {
            var tail: UInt64 = 0
            var shift: UInt64 = 0
            while offset < count {
                tail |= UInt64(bytes[offset]) << shift
                shift += 8
                offset += 1
            }
            combine(tail ^ (shift << 56))
        }
        length &+= UInt64(count)
    }

    /// Mixes in a sequence of bytes; uses the contiguous path when the storage allows.
    public mutating func combine(bytes: some Sequence<UInt8>) {
        if let done: Void = bytes.withContiguousStorageIfAvailable({ self.combine(bytes: UnsafeRawBufferPointer($0)) }) {
            return done
        }
        var word: UInt64 = 0
        var shift: UInt64 = 0
        var count: UInt64 = 0
        for byte in bytes {
            word |= UInt64(byte) << shift
            shift += 8
            count += 1
            if shift == 64 {
                combine(word)
                word = 0
                shift = 0
            }
        }
        if shift > 0 { combine(word ^ (shift << 56)) }
        length &+= count
    }

    /// The 64-bit result.
    public func finalize() -> UInt64 { finalize128().0 }

    /// Both 64-bit lanes, each fully mixed.
    @inline(__always)
    public func finalize128() -> (UInt64, UInt64) {
        let a = Self.fold(laneA ^ length, Self.prime2 ^ laneB)
        let b = Self.fold(laneB ^ a, Self.prime0 ^ length)
        return (Self.fold(a, Self.prime3), b)
    }
}
