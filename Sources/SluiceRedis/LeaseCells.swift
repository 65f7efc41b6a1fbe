#if canImport(Glibc)
import Glibc
#endif
internal import CSluiceAtomics
import SluiceCore
import Synchronization

/// Where a leased decision spends without a lock: one cell per lease (unless its index group is full), found by
/// its key with atomic loads and spent from with one 16-byte compare-and-exchange, as the store decides a local one.
///
/// Why: under the lease table's shard lock, a leased decision wrote the shard's mutex line and one or two lines of
/// the lease; with two event loops on two cores each moved between the cores (80–120 ns of CPU a decision over a
/// local one). A cell keeps what a spend writes in one line (its index entry, which a spend only reads, in
/// another).
///
/// The ``Lease`` under ``LeaseTable``'s lock stays the authority: a cell only holds its unspent count while
/// *open*. Whatever the lock does to a lease first *closes* its cell (its count moves into the lease, and spends
/// from the cell fail and go to the lock), then *opens* it again with the lease as it left it. So a spend from a
/// cell is always one the lease itself would have made: the slice valid and holding the cost, no renewal needed
/// but the one the spend reports.
///
/// A cell is two lines: the first is everything a spend reads or writes; the second what a spend's charge names,
/// written only while the cell is closed.
struct LeaseCell: ~Copyable {
    /// The cell's generation (high 16 bits) and 48 bits of the key's first hash lane with the low bit set;
    /// 48 zero bits: the cell is free.
    let tag: Atomic<UInt64>
    /// The key's second hash lane.
    let check: Atomic<UInt64>
    /// ``Slice``: the generation, the number of the last opening, and the count; then the time the slice is
    /// valid until, 0 while closed.
    let slice: Atomic<WordPair>
    /// The grant below half of which a spend asks for a renewal (``Lease/lastGrant``); -1 while a renewal flies.
    let renewBelow: Atomic<Int64>
    /// What Redis had left beside the slice (``Lease/globalRemaining``) and when the bucket is full
    /// (``Lease/resetAt``), for the decision's fields.
    let globalRemaining: Atomic<Int64>
    let resetAt: Atomic<Int64>
    /// Decisions spent from the cell since it was claimed.
    let decided: Atomic<Int>
    // Second line.
    /// ``Lease/window``, ``Lease/renewals`` and ``Lease/identity``: what a charge names.
    let window: Atomic<Int64>
    let renewals: Atomic<Int64>
    let identity: Atomic<UInt64>

    // No initializer: cells are found in zeroed memory (a free cell is all zero bytes), as the store's slots are.

    static let keyBitsMask: UInt64 = (1 << 48) - 1
    static func keyBits(of key: BucketKey) -> UInt64 { (key.primary & keyBitsMask) | 1 }
    /// Where `slice` lies (after `tag` and `check`, at its 16-byte alignment).
    static let sliceOffset = 16
}

/// The first word of ``LeaseCell/slice`` and the validity beside it.
struct Slice: Equatable {
    /// The cell's generation: a spend that found the cell under another generation fails.
    var generation: UInt16
    /// Bumped at every opening, so a spend that read the cell before a close and exchanges after the next
    /// opening fails even if the count came back the same.
    var opening: UInt16
    var units: UInt32
    /// Nanoseconds; 0 while closed.
    var validUntil: Int64

    init(generation: UInt16, opening: UInt16, units: UInt32, validUntil: Int64) {
        self.generation = generation
        self.opening = opening
        self.units = units
        self.validUntil = validUntil
    }

    init(_ words: WordPair) {
        let first = UInt64(words.first)
        generation = UInt16(truncatingIfNeeded: first >> 48)
        opening = UInt16(truncatingIfNeeded: first >> 32)
        units = UInt32(truncatingIfNeeded: first)
        validUntil = Int64(truncatingIfNeeded: words.second)
    }

    var words: WordPair {
        WordPair(
            first: UInt(UInt64(generation) << 48 | UInt64(opening) << 32 | UInt64(units)), second: UInt(bitPattern: Int(validUntil))
        )
    }
}

/// The cells of a ``LeaseTable``: for each of its shards, a pool of as many cells as the shard holds leases, given
/// out densely (so memory becomes resident as leases arrive, not as they scatter over a table), and an index of
/// eight-entry groups, one cache line each, from a key's hash to its cell. Claiming, closing, opening and freeing
/// happen under the shard's lock; finding and spending take none.
final class LeaseCells: @unchecked Sendable {
    // @unchecked: the cells and the index are zeroed memory from calloc, freed in deinit, touched only through
    // atomics; a shard's pool only under that shard's lock.
    /// Per shard, the cells never given out yet (from `unused` up) and those given back.
    private struct Pool {
        var unused = 0
        var free: [Int32] = []
    }

    private let cellMemory: UnsafeMutableRawPointer
    private let cells: UnsafeMutableRawPointer
    private let indexMemory: UnsafeMutableRawPointer
    /// Per shard `groupsPerShard` groups of eight entries: 0, or the top 40 bits of the key's first hash lane
    /// above its cell's number in the shard plus one (24 bits).
    private let index: UnsafeMutablePointer<Atomic<UInt64>>
    private let pools: UnsafeMutablePointer<Pool>
    let capacityPerShard: Int
    let groupsPerShard: Int
    let shardCount: Int
    /// Two lines.
    static let cellBytes = 128
    static let groupEntries = 8

    /// `capacityPerShard` cells per shard, and index groups for two entries per cell (a power of two), so that
    /// a key's group is rarely full; a lease whose group is full gets no cell and is decided under the lock.
    /// Nil when the memory is refused (every leased decision then takes the lock).
    init?(shardCount: Int, capacityPerShard: Int) {
        precondition(MemoryLayout<LeaseCell>.stride <= Self.cellBytes, "a cell fits its two lines")
        precondition(MemoryLayout<Atomic<UInt64>>.stride == 8, "eight entries to a line")
        guard capacityPerShard < 1 << 24 else { return nil }  // a cell's number takes 24 bits of an entry
        var groups = 1
        while groups * Self.groupEntries < 2 * capacityPerShard { groups *= 2 }
        self.capacityPerShard = capacityPerShard
        groupsPerShard = groups
        self.shardCount = shardCount
        // calloc: large blocks come zeroed from the kernel, resident only once touched; one line extra to align.
        guard let cellMemory = calloc(shardCount * capacityPerShard * Self.cellBytes + 64, 1) else { return nil }
        guard let indexMemory = calloc(shardCount * groups * Self.groupEntries * 8 + 64, 1) else {
            Glibc.free(cellMemory)
            return nil
        }
        self.cellMemory = cellMemory
        self.indexMemory = indexMemory
        cells = Self.lineAligned(cellMemory)
        index = Self.lineAligned(indexMemory).bindMemory(to: Atomic<UInt64>.self, capacity: shardCount * groups * Self.groupEntries)
        _ = cells.bindMemory(to: LeaseCell.self, capacity: shardCount * capacityPerShard)
        pools = .allocate(capacity: shardCount)
        pools.initialize(repeating: Pool(), count: shardCount)
    }

    deinit {
        pools.deinitialize(count: shardCount)
        pools.deallocate()
        Glibc.free(cellMemory)
        Glibc.free(indexMemory)
    }

    private static func lineAligned(_ memory: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        memory + ((64 - Int(bitPattern: memory) % 64) % 64)
    }

    @inline(__always)
    private func cell(_ index: Int) -> UnsafeMutablePointer<LeaseCell> {
        cells.advanced(by: index &* Self.cellBytes).assumingMemoryBound(to: LeaseCell.self)
    }

    /// The first entry of the group of a key whose first lane is `primary`: its bits from the second up pick it
    /// (the cell's tag keeps bits 1 to 47, so a cell's group is found again from it).
    @inline(__always)
    private func group(primary: UInt64, shard: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        index + (shard &* groupsPerShard &+ (Int(truncatingIfNeeded: primary >> 1) & (groupsPerShard &- 1))) &* Self.groupEntries
    }

    @inline(__always)
    private static func entryTag(_ key: BucketKey) -> UInt64 { key.primary >> 24 }

    /// The cell holding `key`'s lease, and its generation; nil when none does. Takes no lock.
    @inline(__always)
    func find(_ key: BucketKey, shard: Int) -> (index: Int, generation: UInt16)? {
        let entries = group(primary: key.primary, shard: shard)
        let tag = Self.entryTag(key)
        let wanted = LeaseCell.keyBits(of: key)
        for slot in 0..<Self.groupEntries {
            let entry = entries[slot].load(ordering: .acquiring)
            guard entry != 0, entry >> 24 == tag else { continue }
            let found = shard &* capacityPerShard &+ Int(truncatingIfNeeded: entry & 0xFF_FFFF) &- 1
            let cellTag = cell(found).pointee.tag.load(ordering: .acquiring)
            if cellTag & LeaseCell.keyBitsMask == wanted, cell(found).pointee.check.load(ordering: .relaxed) == key.secondary {
                return (found, UInt16(truncatingIfNeeded: cellTag >> 48))
            }
        }
        return nil
    }

    /// What a spend from a cell gave.
    struct Spent {
        var decision: Decision
        var charge: GlobalCharge
        /// Half of the last grant is spent and no renewal flies: the lock must see whether to start one.
        var renewalDue: Bool
    }

    /// Spends `check.cost` from `key`'s cell if it is open, valid at `now` and holds enough; nil otherwise (the
    /// lock decides). Takes no lock.
    @inline(__always)
    func spend(_ check: Check, shard: Int, now: Int64) -> Spent? {
        guard let found = find(check.key, shard: shard), check.cost <= Int64(UInt32.max) else { return nil }
        let cell = cell(found.index)
        let cost = UInt32(truncatingIfNeeded: check.cost)
        var observed = Self.guess(cell)
        while true {
            var slice = Slice(observed)
            guard slice.generation == found.generation, slice.validUntil > now, slice.units >= cost else { return nil }
            // Read before the exchange, which then proves no close came between (a close changes `slice`), and
            // after the fence, so that they are at least as new as the opening that published `observed`.
            atomicMemoryFence(ordering: .acquiring)
            let window = cell.pointee.window.load(ordering: .relaxed)
            let renewals = cell.pointee.renewals.load(ordering: .relaxed)
            let identity = cell.pointee.identity.load(ordering: .relaxed)
            slice.units -= cost
            let (exchanged, original) = cell.pointee.slice.compareExchange(expected: observed, desired: slice.words, ordering: .relaxed)
            guard exchanged else {
                observed = original
                continue
            }
            cell.pointee.decided.wrappingAdd(1, ordering: .relaxed)
            let left = Int64(slice.units)
            let decision = Lease.allowed(
                check, remaining: left, globalRemaining: cell.pointee.globalRemaining.load(ordering: .relaxed),
                resetAt: cell.pointee.resetAt.load(ordering: .relaxed), now: now
            )
            let charge = GlobalCharge(fromLease: true, window: window, renewals: renewals, lease: identity)
            return Spent(decision: decision, charge: charge, renewalDue: left * 2 <= cell.pointee.renewBelow.load(ordering: .relaxed))
        }
    }

    /// The cell's slice as two relaxed loads: a guess, validated by the compare-and-exchange that follows.
    @inline(__always)
    private static func guess(_ cell: UnsafeMutablePointer<LeaseCell>) -> WordPair {
        let halves = sluice_load_halves(UnsafeRawPointer(cell) + LeaseCell.sliceOffset)
        return WordPair(first: UInt(halves.first), second: UInt(halves.second))
    }

    // MARK: Under the shard's lock

    /// Gives `key` a cell of shard `shard`'s pool, closed, and enters it in the key's group; nil when the pool is
    /// spent or the group full. Under the shard's lock.
    func claim(_ key: BucketKey, shard: Int) -> Int? {
        let entries = group(primary: key.primary, shard: shard)
        guard let slot = (0..<Self.groupEntries).first(where: { entries[$0].load(ordering: .relaxed) == 0 }) else { return nil }
        let number: Int
        if let reused = pools[shard].free.popLast() {
            number = Int(reused)
        } else if pools[shard].unused < capacityPerShard {
            number = pools[shard].unused
            pools[shard].unused += 1
        } else {
            return nil
        }
        let index = shard * capacityPerShard + number
        let cell = cell(index)
        // A freed cell's slice already carries the generation its next tenant gets (see `free`).
        let generation = Slice(cell.pointee.slice.load(ordering: .relaxed)).generation
        cell.pointee.decided.store(0, ordering: .relaxed)
        cell.pointee.check.store(key.secondary, ordering: .relaxed)
        cell.pointee.tag.store(UInt64(generation) << 48 | LeaseCell.keyBits(of: key), ordering: .releasing)
        entries[slot].store(Self.entryTag(key) << 24 | UInt64(number + 1), ordering: .releasing)
        return index
    }

    /// Closes cell `index` (open): spends from it fail from now on. Returns the units it held. Under the shard's
    /// lock.
    func close(_ index: Int) -> Int64 {
        let cell = cell(index)
        var observed = cell.pointee.slice.load(ordering: .relaxed)
        while true {
            var slice = Slice(observed)
            let units = Int64(slice.units)
            slice.units = 0
            slice.validUntil = 0
            let (exchanged, original) = cell.pointee.slice.compareExchange(expected: observed, desired: slice.words, ordering: .relaxed)
            if exchanged { return units }
            observed = original
        }
    }

    /// Opens cell `index` (closed) with `lease` as it is: its remaining count, validity, and what decisions and
    /// charges read. A count that does not fit a cell, or a slice not valid, leaves it closed. Under the shard's
    /// lock.
    ///
    /// - Returns: whether it opened.
    func open(_ index: Int, with lease: Lease, now: Int64) -> Bool {
        guard lease.validUntil > now, lease.remaining > 0, lease.remaining <= Int64(UInt32.max) else { return false }
        let cell = cell(index)
        cell.pointee.window.store(lease.window, ordering: .relaxed)
        cell.pointee.renewals.store(lease.renewals, ordering: .relaxed)
        cell.pointee.identity.store(lease.identity, ordering: .relaxed)
        cell.pointee.globalRemaining.store(lease.globalRemaining, ordering: .relaxed)
        cell.pointee.resetAt.store(lease.resetAt, ordering: .relaxed)
        cell.pointee.renewBelow.store(lease.renewing ? -1 : lease.lastGrant, ordering: .relaxed)
        // Closed, nothing else writes the slice: a plain read-modify-write publishes it (releasing the stores above).
        var slice = Slice(cell.pointee.slice.load(ordering: .relaxed))
        slice.opening &+= 1
        slice.units = UInt32(truncatingIfNeeded: lease.remaining)
        slice.validUntil = lease.validUntil
        cell.pointee.slice.store(slice.words, ordering: .releasing)
        return true
    }

    /// Frees cell `index` (closed): out of its group, back to its pool, and its next tenant gets the next
    /// generation, so a spend that found it under this one fails. Returns the decisions spent from it. Under the
    /// shard's lock.
    func free(_ index: Int) -> Int {
        let cell = cell(index)
        let shard = index / capacityPerShard
        let number = index - shard * capacityPerShard
        let tag = cell.pointee.tag.load(ordering: .relaxed)
        let entries = group(primary: tag & LeaseCell.keyBitsMask, shard: shard)
        for slot in 0..<Self.groupEntries where entries[slot].load(ordering: .relaxed) & 0xFF_FFFF == UInt64(number + 1) {
            entries[slot].store(0, ordering: .releasing)
        }
        cell.pointee.tag.store(tag & ~LeaseCell.keyBitsMask, ordering: .releasing)
        let slice = Slice(cell.pointee.slice.load(ordering: .relaxed))
        cell.pointee.slice.store(Slice(generation: slice.generation &+ 1, opening: 0, units: 0, validUntil: 0).words, ordering: .releasing)
        pools[shard].free.append(Int32(number))
        return cell.pointee.decided.load(ordering: .relaxed)
    }

    /// The units cell `index` holds now (0 when closed); spends may take more at once. Under the shard's lock.
    func units(_ index: Int) -> Int64 {
        Int64(Slice(Self.guess(cell(index))).units)
    }

    /// Decisions spent from cell `index` since it was claimed. Under the shard's lock.
    func decided(_ index: Int) -> Int { cell(index).pointee.decided.load(ordering: .relaxed) }
}
