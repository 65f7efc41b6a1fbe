import SluiceCore
import Synchronization

/// The leases of this process: shards of ``LeaseMap``s, each behind its own lock, held for a lookup and
/// a few integer updates, and each lease's cell (``LeaseCells``), from which the common decision spends without
/// the lock. Bounded: when full, a new bucket gets no lease (it is decided by a script call).
///
/// Every access under a lock closes the lease's cell first (its unspent count moves into the ``Lease``) and
/// opens it again after, so ``Lease``'s methods see and leave the whole lease.
final class LeaseTable: Sendable {
    enum Outcome {
        /// Decided here, with its charge; the renewal to send, if one is due.
        case decided(Decision, GlobalCharge?, Renewal?)
        /// Waiting for Redis; the renewal to send, unless one is already in flight.
        case waiting(Renewal?)
        /// Redis is down: the caller falls back.
        case unavailable
        /// The table is full and the bucket has no lease.
        case full
    }

    private static let shardCount = 64
    private struct ShardState {
        var map = LeaseMap()
        /// Decisions made from this shard's leases (``Outcome/decided``), counted under the lock the decision
        /// holds anyway, rather than in a shared atomic counter that each would update.
        var decided = 0
    }

    private let shards: LockedShards<ShardState>
    private let capacityPerShard: Int
    private let sweepCursor = Atomic<Int>(0)
    /// Nil if the memory for them was refused: every decision then takes the lock.
    private let cells: LeaseCells?

    init(capacity: Int) {
        shards = LockedShards(count: Self.shardCount) { _ in ShardState() }
        // A `LeaseMap` numbers its leases in 32 bits; a shard that held more would need a terabyte.
        capacityPerShard = min(max(1, capacity / Self.shardCount), Int(UInt32.max) - 1)
        cells = LeaseCells(shardCount: Self.shardCount, capacityPerShard: capacityPerShard)
    }

    /// The leases held, and the decisions made from leases (``Outcome/decided`` and spends from cells) so far:
    /// summed over the shards and the cells when status is read, so no decision updates a counter that every
    /// shard shares.
    var counts: (leases: Int, decided: Int) {
        (0..<shards.count).reduce((leases: 0, decided: 0)) { sum, index in
            shards.withLock(index) { state in
                let fromCells = state.map.leases.reduce(0) { $0 + ($1.cell >= 0 ? cells?.decided($1.cell) ?? 0 : 0) }
                return (sum.leases + state.map.count, sum.decided + state.decided + fromCells)
            }
        }
    }

    private func shard(_ key: BucketKey) -> Int { Int(truncatingIfNeeded: key.secondary >> 58) & (Self.shardCount - 1) }

    /// Spends `check.cost` from its lease's cell without a lock, if the lease has one, open, that can serve it;
    /// nil when the lock must decide (``withLease(_:now:create:_:)``).
    @inline(__always)
    func spendWithoutLock(_ check: Check, now: Int64) -> LeaseCells.Spent? {
        cells?.spend(check, shard: shard(check.key), now: now)
    }

    /// Runs `body` on `key`'s lease, created by `create` when absent (unless the shard is full).
    /// Inlined into the caller, so that the closures are too (called through a context, they cost a decision more).
    @inline(__always)
    func withLease(_ key: BucketKey, now: Int64, create: () -> Lease, _ body: (inout Lease) -> Outcome) -> Outcome {
        let index = shard(key)
        return shards.withLock(index) { state in
            let outcome: Outcome
            if let position = state.map.position(of: key) {
                outcome = state.map.withLease(at: position) { lease in
                    close(&lease, now: now)
                    // A lease made while its key's index group was full has no cell: it takes one once there is room
                    // (a scan of one line, on a decision that takes the lock anyway).
                    if lease.cell < 0, let cells { lease.cell = cells.claim(key, shard: index) ?? -1 }
                    defer { open(&lease, now: now) }
                    return body(&lease)
                }
            } else {
                guard state.map.count < capacityPerShard else { return .full }
                var lease = create()
                outcome = body(&lease)
                if case .unavailable = outcome { return outcome }  // nothing to remember
                lease.cell = cells?.claim(key, shard: index) ?? -1
                open(&lease, now: now)
                state.map.insert(lease)
            }
            if case .decided = outcome { state.decided += 1 }
            return outcome
        }
    }

    /// Runs `body` on `key`'s lease if it exists.
    func update(_ key: BucketKey, now: Int64, _ body: (inout Lease) -> Void) {
        shards.withLock(shard(key)) { state in
            guard let position = state.map.position(of: key) else { return }
            state.map.withLease(at: position) { lease in
                close(&lease, now: now)
                body(&lease)
                open(&lease, now: now)
            }
        }
    }

    /// Takes `lease`'s unspent count back from its open cell, which spends no more. A count that went down since
    /// the opening was spent from the cell: the lease was used.
    private func close(_ lease: inout Lease, now: Int64) {
        guard lease.cellOpen, let cells else { return }
        lease.cellOpen = false
        lease.remaining = cells.close(lease.cell)
        if lease.remaining < lease.openedWith { lease.lastUsed = now }
    }

    /// Opens `lease`'s cell with the lease as it is, if it has one and its slice can be spent.
    private func open(_ lease: inout Lease, now: Int64) {
        guard lease.cell >= 0, let cells else { return }
        lease.cellOpen = cells.open(lease.cell, with: lease, now: now)
        lease.openedWith = lease.remaining
    }

    /// Drops leases that are spent or expired, idle, and awaited by nobody: a few shards per call.
    func sweep(now: Int64) {
        let start = sweepCursor.add(8, ordering: .relaxed).oldValue
        for offset in 0..<8 {
            shards.withLock((start + offset) & (Self.shardCount - 1)) { state in
                // A cell still open, valid and holding units serves a lease that is not disposable (as its
                // `remaining`, the count it opened with, says): only the others are closed to be judged.
                for position in 0..<state.map.count {
                    state.map.withLease(at: position) { lease in
                        if lease.cellOpen, lease.validUntil > now, let cells, cells.units(lease.cell) > 0 { return }
                        close(&lease, now: now)
                    }
                }
                var freed = 0
                _ = state.map.removeAll { lease in
                    guard lease.isDisposable(now: now) else { return false }
                    if lease.cell >= 0, let cells { freed += cells.free(lease.cell) }
                    return true
                }
                state.decided += freed
                for position in 0..<state.map.count {
                    state.map.withLease(at: position) { lease in if !lease.cellOpen { open(&lease, now: now) } }
                }
            }
        }
    }

    /// Empties the table, returning the leases with something left to give back.
    func drainForReturn(now: Int64) -> [Lease] {
        var returning: [Lease] = []
        for index in 0..<shards.count {
            shards.withLock(index) { state in
                var freed = 0
                for position in 0..<state.map.count {
                    state.map.withLease(at: position) { lease in
                        close(&lease, now: now)
                        if lease.cell >= 0, let cells { freed += cells.free(lease.cell) }
                        if lease.returnable(now: now) > 0 { returning.append(lease) }
                    }
                }
                state.decided += freed
                state.map.removeAll()
            }
        }
        return returning
    }
}
