import Synchronization

/// What the decision path needs of a shard: where its slots are and how to probe them. A trivial struct,
/// so reading it costs no reference counting (a class reference would, on every decision, and two
/// threads on one shard would contend on its count).
struct ShardView {
    let slots: UnsafeMutablePointer<BucketSlot>
    let capacity: Int
    let probeWindow: Int

    /// The key's first slot: its secondary hash scaled to the capacity (a multiply, not a modulo, so the
    /// capacity need not be a power of two; the primary hash's top bits chose the shard, its low bits the tag).
    @inline(__always)
    func homeIndex(of key: BucketKey) -> Int { Int(truncatingIfNeeded: key.secondary.multipliedFullWidth(by: UInt64(capacity)).high) }

    /// The slot after `index`, wrapping at the end of the shard.
    @inline(__always)
    func next(_ index: Int) -> Int { index + 1 == capacity ? 0 : index + 1 }

    /// Finds the key's slot without locking.
    ///
    /// - Returns: the slot index and the generation it was found with, or nil.
    @inline(__always)
    func find(_ key: BucketKey) -> (index: Int, generation: UInt16)? {
        let wanted = BucketSlot.keyBits(of: key)
        var index = homeIndex(of: key)
        for _ in 0..<probeWindow {
            let tag = slots[index].tag.load(ordering: .acquiring)
            if tag & BucketSlot.keyBitsMask == wanted, slots[index].check.load(ordering: .relaxed) == key.secondary {
                return (index, UInt16(truncatingIfNeeded: tag >> 48))
            }
            index = next(index)
        }
        return nil
    }
}

/// One shard of the store: a fixed table of slots, scanned in a bounded window from each key's home slot.
///
/// Deciding on a key already present takes no lock (see ``BucketSlot``). Inserting a key takes the
/// shard's mutex, which only inserts, sweeps and resets contend for.
final class BucketShard: @unchecked Sendable {
    // @unchecked: `slots` points into the store's region of atomics, written only through atomic operations
    // (and, for installs and sweeps, only under `lock`); the store owns and frees the region.

    struct Bookkeeping {
        var liveKeys = 0
        var sweepHand = 0
    }

    let slots: UnsafeMutablePointer<BucketSlot>
    let capacity: Int
    let probeWindow: Int
    let maximumKeys: Int
    let lock = Locked(Bookkeeping())
    /// Mirrors `Bookkeeping.liveKeys` for lock-free reading by INFO and metrics.
    let liveKeyCount = Atomic<Int>(0)
    /// Keys dropped while not yet full again (state lost under memory pressure).
    let pressureEvictions = Atomic<Int>(0)
    /// Keys dropped because they were back to full (no state lost).
    let idleEvictions = Atomic<Int>(0)

    /// Creates a shard over `capacity` slots at `slots`, which must be zero bytes: an empty slot (tag 0, state
    /// `BucketState.full`) is all zeros, so the store's zeroed reservation needs no writing, and its pages stay
    /// untouched until keys arrive.
    init(slots: UnsafeMutablePointer<BucketSlot>, capacity: Int, maximumKeys: Int, probeWindow: Int) {
        precondition(capacity > 0, "a shard has slots")
        self.slots = slots
        self.capacity = capacity
        self.maximumKeys = maximumKeys
        self.probeWindow = min(probeWindow, capacity)
    }

    var view: ShardView { ShardView(slots: slots, capacity: capacity, probeWindow: probeWindow) }

    func homeIndex(of key: BucketKey) -> Int { view.homeIndex(of: key) }

    func find(_ key: BucketKey) -> (index: Int, generation: UInt16)? { view.find(key) }

    func next(_ index: Int) -> Int { view.next(index) }

    /// Gives a slot to `key` with `initial` as its bucket, unless another thread inserted it first.
    ///
    /// - Returns: `.inserted` with the slot, or `.existing` when the key is already present.
    func insert(_ key: BucketKey, initial: BucketState, now: Int64) -> InsertResult {
        lock.withLock { book in
            if let found = find(key) { return .existing(index: found.index, generation: found.generation) }
            var freeIndex: Int?
            var victimIndex: Int?
            var victimHorizon = Int64.max
            var index = homeIndex(of: key)
            for _ in 0..<probeWindow {
                let tag = slots[index].tag.load(ordering: .relaxed)
                if tag & BucketSlot.keyBitsMask == 0 {
                    if freeIndex == nil { freeIndex = index }
                } else {
                    let horizon = BucketState(slots[index].state.load(ordering: .relaxed)).horizon
                    if horizon < victimHorizon {
                        victimHorizon = horizon
                        victimIndex = index
                    }
                }
                index = next(index)
            }
            if book.liveKeys >= maximumKeys {
                // Full: a key must go. Prefer one in this window (the free slot, if any, stays free).
                if let victim = victimIndex {
                    countEviction(horizon: victimHorizon, now: now)
                    return .inserted(index: victim, generation: install(key, initial: initial, at: victim))
                }
                guard let free = freeIndex else { preconditionFailure("a probe window is never empty and full at once") }
                evictElsewhere(&book, now: now)
                book.liveKeys += 1
                liveKeyCount.store(book.liveKeys, ordering: .relaxed)
                return .inserted(index: free, generation: install(key, initial: initial, at: free))
            }
            if let free = freeIndex {
                book.liveKeys += 1
                liveKeyCount.store(book.liveKeys, ordering: .relaxed)
                return .inserted(index: free, generation: install(key, initial: initial, at: free))
            }
            // The window is all taken though the shard is not full: replace the bucket closest to full.
            guard let victim = victimIndex else { preconditionFailure("a probe window with no free slot has a live one") }
            countEviction(horizon: victimHorizon, now: now)
            return .inserted(index: victim, generation: install(key, initial: initial, at: victim))
        }
    }

    enum InsertResult {
        case inserted(index: Int, generation: UInt16)
        case existing(index: Int, generation: UInt16)
    }

    private func countEviction(horizon: Int64, now: Int64) {
        // Strictly before now: the horizon is the instant *after* which a bucket is full (a token bucket's
        // horizon is its arrival time rounded down, so at `now == horizon` a fraction of a token may be missing).
        if horizon < now {
            idleEvictions.add(1, ordering: .relaxed)
        } else {
            pressureEvictions.add(1, ordering: .relaxed)
        }
    }

    /// Takes the slot over for `key` with a new generation. Caller holds `lock`.
    private func install(_ key: BucketKey, initial: BucketState, at index: Int) -> UInt16 {
        var observed = slots[index].state.load(ordering: .relaxed)
        while true {
            let generation = BucketState(observed).generation &+ 1
            let (exchanged, original) = slots[index].state.compareExchange(
                expected: observed, desired: initial.with(generation: generation).words, ordering: .relaxed
            )
            if exchanged {
                slots[index].check.store(key.secondary, ordering: .relaxed)
                // Release: a reader that sees this tag also sees the check word and state written above.
                slots[index].tag.store(UInt64(generation) << 48 | BucketSlot.keyBits(of: key), ordering: .releasing)
                return generation
            }
            observed = original
        }
    }

    /// Frees the live slot at `index` if its bucket is full by `now` (or unconditionally when `force`).
    /// Caller holds `lock`. Returns whether it freed the slot.
    private func free(at index: Int, now: Int64, force: Bool) -> Bool {
        let tag = slots[index].tag.load(ordering: .relaxed)
        guard tag & BucketSlot.keyBitsMask != 0 else { return false }
        let observed = slots[index].state.load(ordering: .relaxed)
        let state = BucketState(observed)
        // Strictly before now, as in `countEviction`: never drop a bucket that still lacks part of a token.
        guard force || state.horizon < now else { return false }
        let generation = state.generation &+ 1
        let (exchanged, _) = slots[index].state.compareExchange(
            expected: observed, desired: BucketState.full.with(generation: generation).words, ordering: .relaxed
        )
        // A failed exchange means a decision just used the key: it is not idle, leave it.
        guard exchanged else { return false }
        slots[index].tag.store(UInt64(generation) << 48, ordering: .releasing)
        return true
    }

    /// Frees one key outside any particular window, the closest to full among the next live slots of the
    /// sweep hand. Caller holds `lock`.
    private func evictElsewhere(_ book: inout Bookkeeping, now: Int64) {
        var best: Int?
        var bestHorizon = Int64.max
        var index = book.sweepHand
        var seen = 0
        for _ in 0..<capacity where seen < probeWindow {
            if slots[index].tag.load(ordering: .relaxed) & BucketSlot.keyBitsMask != 0 {
                seen += 1
                let horizon = BucketState(slots[index].state.load(ordering: .relaxed)).horizon
                if horizon < bestHorizon {
                    bestHorizon = horizon
                    best = index
                }
            }
            index = next(index)
        }
        book.sweepHand = index
        guard let victim = best else { return }
        countEviction(horizon: bestHorizon, now: now)
        while !free(at: victim, now: now, force: true) {}
        book.liveKeys -= 1
    }

    /// Drops every key whose bucket is back to full by `now`.
    ///
    /// - Returns: how many keys were dropped.
    func sweep(now: Int64) -> Int {
        lock.withLock { book in
            var dropped = 0
            for index in 0..<capacity where free(at: index, now: now, force: false) {
                dropped += 1
            }
            book.liveKeys -= dropped
            liveKeyCount.store(book.liveKeys, ordering: .relaxed)
            idleEvictions.add(dropped, ordering: .relaxed)
            return dropped
        }
    }
}
