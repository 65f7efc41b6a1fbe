internal import CSluiceAtomics
import Synchronization

/// One slot of a shard's open-addressing table: 32 bytes, two to a cache line.
///
/// - `tag`: the slot generation (high 16 bits) and 48 bits of the key's primary hash with the low bit
///   forced to 1; 48 zero bits mean the slot is free.
/// - `check`: the key's secondary hash, compared in full.
/// - `state`: the bucket (``BucketState``), whose generation must equal the tag's for the slot to belong
///   to the key the tag names.
///
/// `check` and `state` are written before `tag` is published with release ordering, and only while the
/// shard's lock is held; decisions read `tag` with acquire ordering and then update `state` by
/// compare-and-exchange, which fails if the slot was given to another key in between.
struct BucketSlot: ~Copyable {
    let tag: Atomic<UInt64>
    let check: Atomic<UInt64>
    let state: Atomic<WordPair>

    // No initializer: slots are never built, only found in the store's zeroed reservation. An empty slot is
    // all zero bytes (tag 0, check 0, `BucketState.full`), which `StoreTests` holds to.

    static let keyBitsMask: UInt64 = (1 << 48) - 1

    static func keyBits(of key: BucketKey) -> UInt64 { (key.primary & keyBitsMask) | 1 }

    /// Where `state` lies in a slot (after `tag` and `check`, at its 16-byte alignment); `StoreTests` holds to it.
    static let stateOffset = 16

    /// Starts loading the slot's cache line, for writing (see SluiceAtomics.h); a hint that never faults.
    @inline(__always)
    static func prefetch(_ slot: UnsafeMutablePointer<BucketSlot>) { sluice_prefetch_for_write(UnsafeRawPointer(slot)) }

    /// The slot's state as two relaxed 64-bit loads (see SluiceAtomics.h): cheaper than `state.load`, a locked
    /// cmpxchg16b on x86-64, but possibly torn, the halves of two different states. Use it only as the expected
    /// value of a compare-and-exchange, or confirm it with `state.load` before answering from it.
    @inline(__always)
    static func stateGuess(at slot: UnsafeMutablePointer<BucketSlot>) -> WordPair {
        let halves = sluice_load_halves(UnsafeRawPointer(slot) + stateOffset)
        return WordPair(first: UInt(halves.first), second: UInt(halves.second))
    }
}
