#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The in-memory state of every bucket: power-of-two shards chosen by a stable hash of the key.
///
/// Memory is bounded and reserved up front: each slot takes 32 bytes, and each shard holds 4/3 of its share of
/// `maximumKeys` slots (at least one probe window), so a store configured for `maximumKeys` keys reserves
/// about 43 bytes per configured key (41 MiB for one million keys). The reservation is an anonymous mapping
/// whose pages the kernel gives, zeroed, as keys first touch them: an empty slot is all zero bytes, so nothing
/// is written at start and an idle sidecar is not resident for a table it has not used. At most `maximumKeys`
/// keys are live at once: a shard that is full replaces the bucket in the new key's probe window that will be
/// full soonest, preferring ones already full (no state lost).
public final class BucketStore: @unchecked Sendable {
    // @unchecked: `views` and `region` are raw allocations written once in init and freed in deinit;
    // the slots in `region` are only touched through atomics (installs and sweeps under a shard's lock).
    /// Where a consumption landed, so a multi-check request that is denied later can give it back.
    public struct Reservation: Sendable, Hashable {
        let shard: Int
        let index: Int
        let generation: UInt16
        /// The bucket as the consumption left it.
        let charged: BucketState
    }

    /// Bytes one slot occupies.
    public static let bytesPerSlot = MemoryLayout<BucketSlot>.stride

    let shards: [BucketShard]
    /// One reservation for every shard's slots (so huge pages can back it), all zero bytes at first.
    private let region: UnsafeMutableRawPointer
    /// The bytes mapped at `region`; 0 when it came from the allocator instead (see ``reserve(byteCount:alignment:)``).
    private let mappedBytes: Int
    private let adviseMemory: (@Sendable (UnsafeMutableRawPointer, Int) -> Void)?
    private let advised = Atomic<Bool>(false)
    private let regionBytes: Int
    /// `shards[i].view`, for the decision path.
    private let views: UnsafeMutablePointer<ShardView>
    let shardMask: Int
    /// The number of keys the store admits before it evicts.
    public let maximumKeys: Int
    /// Total slots across all shards.
    public let slotCount: Int

    /// Fewer keys than this per shard and sharding costs more (evictions of live buckets in a tiny
    /// shard) than it saves (insert-lock contention).
    public static let minimumKeysPerShard = 256

    /// Creates a store.
    ///
    /// - Parameters:
    ///   - maximumKeys: the bound on live keys (at least 1).
    ///   - shardCount: the number of shards, rounded down to a power of two, and lowered so each shard has
    ///     room for at least ``minimumKeysPerShard`` keys.
    ///   - probeWindow: slots scanned from a key's home slot (default 64).
    ///   - adviseMemory: called at most once with the slot region, by ``adviseMemoryIfBusy()`` once enough keys
    ///     live; the executable uses it to ask for transparent huge pages (`madvise(MADV_HUGEPAGE)`), which the
    ///     core cannot call itself. A large region is 2 MiB-aligned so huge pages can back it.
    public init(
        maximumKeys: Int, shardCount: Int = 64, probeWindow: Int = 64,
        adviseMemory: (@Sendable (UnsafeMutableRawPointer, Int) -> Void)? = nil
    ) {
        let keys = max(1, maximumKeys)
        var shards = 1
        while shards * 2 <= shardCount, shards * 2 * Self.minimumKeysPerShard <= keys, shards < 65_536 { shards *= 2 }
        var capacities: [Int] = []
        var shares: [Int] = []
        for shard in 0..<shards {
            let share = keys / shards + (shard < keys % shards ? 1 : 0)
            // 4/3 of the share (a table at most 3/4 full), even so that every shard starts on a cache line.
            let capacity = max(probeWindow, (share * 4 + 2) / 3)
            capacities.append(capacity + capacity % 2)
            shares.append(share)
        }
        let totalSlots = capacities.reduce(0, +)
        let byteCount = totalSlots * MemoryLayout<BucketSlot>.stride
        let hugePage = 2 << 20
        (region, mappedBytes) = Self.reserve(byteCount: byteCount, alignment: byteCount >= hugePage ? hugePage : MemoryLayout<BucketSlot>.alignment)
        self.adviseMemory = adviseMemory
        regionBytes = byteCount
        let base = region.bindMemory(to: BucketSlot.self, capacity: totalSlots)
        var built: [BucketShard] = []
        built.reserveCapacity(shards)
        var offset = 0
        for shard in 0..<shards {
            built.append(BucketShard(slots: base + offset, capacity: capacities[shard], maximumKeys: shares[shard], probeWindow: probeWindow))
            offset += capacities[shard]
        }
        self.shards = built
        views = UnsafeMutablePointer<ShardView>.allocate(capacity: shards)
        views.initialize(from: built.map(\.view), count: shards)
        self.shardMask = shards - 1
        self.maximumKeys = keys
        self.slotCount = totalSlots
    }

    deinit {
        views.deinitialize(count: shards.count)
        views.deallocate()
        // Slots are atomics of plain integers: nothing to deinitialize.
        if mappedBytes > 0 { munmap(region, mappedBytes) } else { region.deallocate() }
    }

    /// Zeroed memory for `byteCount` bytes at `alignment`: an anonymous private mapping, trimmed to the alignment,
    /// whose pages become resident only when touched; the allocator, zeroed by hand, if the kernel refuses.
    private static func reserve(byteCount: Int, alignment: Int) -> (UnsafeMutableRawPointer, mappedBytes: Int) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let length = (byteCount + page - 1) / page * page
        let slack = max(0, alignment - page)
        let mapped = mmap(nil, length + slack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let mapped, mapped != MAP_FAILED else {
            let memory = UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: alignment)
            memory.initializeMemory(as: UInt8.self, repeating: 0, count: byteCount)
            return (memory, 0)
        }
        let start = (Int(bitPattern: mapped) + alignment - 1) / alignment * alignment
        let head = start - Int(bitPattern: mapped)
        if head > 0 { munmap(mapped, head) }
        if slack - head > 0 { munmap(mapped + head + length, slack - head) }
        return (mapped + head, length)
    }

    @inline(__always)
    func shardIndex(of key: BucketKey) -> Int { Int(truncatingIfNeeded: key.primary >> 48) & shardMask }

    /// Starts loading the key's home slot into the cache, for a decision on it soon after. Deciding a batch of
    /// keys that are not in cache (a table larger than the last-level cache) costs one memory latency per key
    /// when each waits for its own slot; prefetching the whole batch first lets those waits overlap.
    @inline(__always)
    public func prefetch(_ key: BucketKey) {
        let view = views[shardIndex(of: key)]
        BucketSlot.prefetch(view.slots + view.homeIndex(of: key))
    }

    /// Decides a request against the key's bucket and, when allowed and `consume` is set, charges it.
    ///
    /// A key that is absent is judged against a full bucket, and stored only if the request consumed
    /// something. An existing key is updated by compare-and-exchange without any lock.
    ///
    /// - Parameters:
    ///   - limit: the limit to apply.
    ///   - key: the bucket.
    ///   - cost: a positive cost.
    ///   - now: the time of the decision.
    ///   - consume: false to only look (PEEK).
    /// - Returns: the evaluation and, when something was consumed, where.
    public func decide(
        _ limit: RateLimit, key: BucketKey, cost: Int64, now: Timestamp, consume: Bool
    ) -> (Evaluation, Reservation?) {
        let shardIndex = shardIndex(of: key)
        let view = views[shardIndex]
        while true {
            if let found = view.find(key) {
                if let result = decide(limit, shard: shardIndex, slot: found, cost: cost, now: now.nanoseconds, consume: consume) {
                    return result
                }
                continue  // the slot changed hands under us; look again
            }
            let evaluation = limit.evaluate(.full, now: now.nanoseconds, cost: cost)
            guard consume, evaluation.decision.outcome == .allowed else { return (evaluation, nil) }
            switch shards[shardIndex].insert(key, initial: evaluation.newState, now: now.nanoseconds) {
            case .inserted(let index, let generation):
                return (evaluation, Reservation(shard: shardIndex, index: index, generation: generation, charged: evaluation.newState))
            case .existing(let index, let generation):
                if let result = decide(limit, shard: shardIndex, slot: (index, generation), cost: cost, now: now.nanoseconds, consume: consume) {
                    return result
                }
            }
        }
    }

    @inline(__always)
    private func decide(
        _ limit: RateLimit, shard shardIndex: Int, slot: (index: Int, generation: UInt16), cost: Int64, now: Int64, consume: Bool
    ) -> (Evaluation, Reservation?)? {
        let slots = views[shardIndex].slots
        // Relaxed suffices: the state word is self-contained and every update is a read-modify-write on it.
        // A guess, possibly torn: the exchange below validates it, or the whole load before a decision that writes
        // nothing. (The generation is in the first word alone, so a mismatch is real.)
        var observed = BucketSlot.stateGuess(at: slots + slot.index)
        while true {
            let state = BucketState(observed)
            guard state.generation == slot.generation else { return nil }
            let evaluation = limit.evaluate(state, now: now, cost: cost)
            guard consume, evaluation.decision.outcome == .allowed else {
                let whole = slots[slot.index].state.load(ordering: .relaxed)
                if whole == observed { return (evaluation, nil) }
                observed = whole
                continue
            }
            let (exchanged, original) = slots[slot.index].state.compareExchange(
                expected: observed, desired: evaluation.newState.words, ordering: .relaxed
            )
            if exchanged {
                let reservation = Reservation(shard: shardIndex, index: slot.index, generation: slot.generation, charged: evaluation.newState)
                return (evaluation, reservation)
            }
            observed = original
        }
    }

    /// Gives back what a reservation consumed, if its slot still holds the same key.
    public func refund(_ reservation: Reservation, limit: RateLimit, cost: Int64) {
        let slot = shards[reservation.shard].slots + reservation.index
        var observed = slot.pointee.state.load(ordering: .relaxed)
        while true {
            let state = BucketState(observed)
            guard state.generation == reservation.generation,
                let refunded = limit.refund(state, cost: cost, charged: reservation.charged)
            else { return }
            let (exchanged, original) = slot.pointee.state.compareExchange(
                expected: observed, desired: refunded.words, ordering: .relaxed
            )
            if exchanged { return }
            observed = original
        }
    }

    /// Empties a key's bucket back to full.
    ///
    /// - Returns: whether the key was present.
    @discardableResult
    public func reset(_ key: BucketKey) -> Bool {
        let shard = shards[shardIndex(of: key)]
        guard let found = shard.find(key) else { return false }
        let slot = shard.slots + found.index
        var observed = slot.pointee.state.load(ordering: .relaxed)
        while BucketState(observed).generation == found.generation {
            let (exchanged, original) = slot.pointee.state.compareExchange(
                expected: observed, desired: BucketState.full.with(generation: found.generation).words, ordering: .relaxed
            )
            if exchanged { return true }
            observed = original
        }
        return false
    }

    /// Drops every key whose bucket is full again by `now`; one shard at a time, so deciding never waits.
    ///
    /// - Returns: the number of keys dropped.
    @discardableResult
    public func sweep(now: Timestamp) -> Int {
        shards.reduce(0) { $0 + $1.sweep(now: now.nanoseconds) }
    }

    /// Calls the `adviseMemory` given at init, once, when the live keys are twice the table's small pages: by then
    /// nearly every page holds a key and is resident anyway, and huge pages spare the decision path its TLB misses.
    /// Before that, huge pages would make a sidecar with a few keys resident for its whole table (a few hundred
    /// random keys touch every 2 MiB page). Cheap enough for a sweeper's every tick.
    public func adviseMemoryIfBusy() {
        guard let adviseMemory, !advised.load(ordering: .relaxed) else { return }
        let smallPages = regionBytes / Int(sysconf(Int32(_SC_PAGESIZE)))
        guard keyCount >= 2 * smallPages, advised.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        adviseMemory(region, regionBytes)
    }

    /// Live keys now (a relaxed sum; exact when the store is quiet).
    public var keyCount: Int { shards.reduce(0) { $0 + $1.liveKeyCount.load(ordering: .relaxed) } }
    /// Keys dropped before they were full again because the store was full.
    public var pressureEvictions: Int { shards.reduce(0) { $0 + $1.pressureEvictions.load(ordering: .relaxed) } }
    /// Keys dropped because they were full again.
    public var idleEvictions: Int { shards.reduce(0) { $0 + $1.idleEvictions.load(ordering: .relaxed) } }
    /// The number of shards.
    public var shardCount: Int { shards.count }
}

extension BucketStore {
    /// Drops the keys of one shard whose buckets are full again by `now`; a sweeper calls this for one
    /// shard per tick so no tick holds any lock for long.
    ///
    /// - Returns: the number of keys dropped.
    @discardableResult
    public func sweep(shard: Int, now: Timestamp) -> Int {
        shards[shard & shardMask].sweep(now: now.nanoseconds)
    }
}
