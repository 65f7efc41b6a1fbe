/// The identity of one bucket: a policy's (or inline limit's) seed hashed with the caller's key.
///
/// Computed once per check by the interface that parsed the key, from the key's bytes in place, so the
/// decision path never copies or allocates a key.
public struct BucketKey: Sendable, Hashable {
    /// First hash lane: picks the shard (top bits), the home slot, and 40 tag bits.
    public let primary: UInt64
    /// Second hash lane: compared in full on lookup.
    public let secondary: UInt64

    /// Hashes `bytes` under `seed`.
    @inline(__always)
    public init(seed: UInt64, bytes: UnsafeRawBufferPointer) {
        var hasher = StableHasher(seed: seed)
        hasher.combine(bytes: bytes)
        (primary, secondary) = hasher.finalize128()
    }

    /// Hashes the UTF-8 of `key` under `seed`.
    public init(seed: UInt64, key: String) {
        var hasher = StableHasher(seed: seed)
        hasher.combine(bytes: key.utf8)
        (primary, secondary) = hasher.finalize128()
    }

    /// A key from two raw lanes (tests use this to force collisions).
    public init(primary: UInt64, secondary: UInt64) {
        self.primary = primary
        self.secondary = secondary
    }
}
