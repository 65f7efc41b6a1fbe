import SluiceCore

/// The leases of one shard of ``LeaseTable``: a dense array of leases, and an open-addressing index over
/// their keys' own hash.
///
/// A ``BucketKey`` is already a keyed 128-bit hash of the caller's key, so its first lane serves as the
/// index's hash as it is. Swift's `Dictionary` hashed the 16 bytes again with SipHash on every lookup, a
/// sixth of what a leased decision cost over a local one (`perf` under `Benchmarks/load/leased_steady.sh`).
struct LeaseMap {
    /// The leases, in no particular order.
    private(set) var leases: [Lease] = []
    /// The index: each slot 0 (empty) or a lease's position in `leases` plus one in the low 32 bits, with
    /// the top 32 bits of its key's first lane above them, so a probe reads a lease only when those match.
    /// A power of two in size (or empty), at most three quarters full; linear probing. Positions fit in 32 bits:
    /// ``LeaseTable`` holds fewer than 2^32 - 1 leases in a shard.
    private var slots: [UInt64] = []

    private static let smallest = 16

    var count: Int { leases.count }

    /// The position of `key`'s lease in ``leases``, or nil.
    func position(of key: BucketKey) -> Int? {
        guard !slots.isEmpty else { return nil }
        let mask = slots.count &- 1
        let tag = key.primary >> 32
        var slot = Int(truncatingIfNeeded: key.primary) & mask
        while true {
            let entry = slots[slot]
            if entry == 0 { return nil }
            if entry >> 32 == tag {
                let position = Int(truncatingIfNeeded: entry & 0xFFFF_FFFF) &- 1
                if leases[position].key == key { return position }
            }
            slot = (slot &+ 1) & mask
        }
    }

    /// Runs `body` on the lease at `position` (from ``position(of:)``), in place.
    mutating func withLease<Result>(at position: Int, _ body: (inout Lease) -> Result) -> Result {
        body(&leases[position])
    }

    /// Adds `lease`, whose key has no lease here yet.
    mutating func insert(_ lease: Lease) {
        if (leases.count + 1) * 4 > slots.count * 3 { reindex(slotCount: max(Self.smallest, slots.count * 2)) }
        leases.append(lease)
        place(leases.count - 1)
    }

    /// Removes the leases `shouldRemove` picks; returns how many.
    mutating func removeAll(where shouldRemove: (Lease) -> Bool) -> Int {
        let before = leases.count
        leases.removeAll(where: shouldRemove)
        let removed = before - leases.count
        if removed > 0 { reindex(slotCount: Self.slotCount(for: leases.count)) }
        return removed
    }

    /// Removes every lease.
    mutating func removeAll() {
        leases.removeAll()
        slots.removeAll()
    }

    /// The fewest slots (a power of two, at least ``smallest``, or none for no lease) that hold `count` leases
    /// at most three quarters full.
    private static func slotCount(for count: Int) -> Int {
        guard count > 0 else { return 0 }
        var size = smallest
        while count * 4 > size * 3 { size *= 2 }
        return size
    }

    /// Rebuilds the index with `slotCount` slots over the leases as they now are.
    private mutating func reindex(slotCount: Int) {
        slots = Array(repeating: 0, count: slotCount)
        for position in leases.indices { place(position) }
    }

    /// Puts the lease at `position` into the first free slot of its probe sequence (there is one: the index is
    /// never full).
    private mutating func place(_ position: Int) {
        let primary = leases[position].key.primary
        let mask = slots.count &- 1
        var slot = Int(truncatingIfNeeded: primary) & mask
        while slots[slot] != 0 { slot = (slot &+ 1) & mask }
        slots[slot] = (primary >> 32) << 32 | UInt64(position + 1)
    }
}
