import SluiceCore
import Synchronization

/// The leases of this process: shards of ``LeaseMap``s, each behind its own lock, held for a lookup and
/// a few integer updates. Bounded: when full, a new bucket gets no lease (it is decided by a script call).
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

    init(capacity: Int) {
        shards = LockedShards(count: Self.shardCount) { _ in ShardState() }
        // A `LeaseMap` numbers its leases in 32 bits; a shard that held more would need a terabyte.
        capacityPerShard = min(max(1, capacity / Self.shardCount), Int(UInt32.max) - 1)
    }

    /// The leases held, and the decisions made from leases (``Outcome/decided``) so far: summed over the shards
    /// when status is read, so no decision updates a counter that every shard shares.
    var counts: (leases: Int, decided: Int) {
        (0..<shards.count).reduce((leases: 0, decided: 0)) { sum, index in
            shards.withLock(index) { state in (sum.leases + state.map.count, sum.decided + state.decided) }
        }
    }

    private func shard(_ key: BucketKey) -> Int { Int(truncatingIfNeeded: key.secondary >> 58) & (Self.shardCount - 1) }

    /// Runs `body` on `key`'s lease, created by `create` when absent (unless the shard is full).
    /// Inlined into the caller, so that the closures are too (called through a context, they cost a decision more).
    @inline(__always)
    func withLease(_ key: BucketKey, create: () -> Lease, _ body: (inout Lease) -> Outcome) -> Outcome {
        shards.withLock(shard(key)) { state in
            let outcome: Outcome
            if let position = state.map.position(of: key) {
                outcome = state.map.withLease(at: position, body)
            } else {
                guard state.map.count < capacityPerShard else { return .full }
                var lease = create()
                outcome = body(&lease)
                if case .unavailable = outcome { return outcome }  // nothing to remember
                state.map.insert(lease)
            }
            if case .decided = outcome { state.decided += 1 }
            return outcome
        }
    }

    /// Runs `body` on `key`'s lease if it exists.
    func update(_ key: BucketKey, _ body: (inout Lease) -> Void) {
        shards.withLock(shard(key)) { state in
            if let position = state.map.position(of: key) { state.map.withLease(at: position, body) }
        }
    }

    /// Drops leases that are spent or expired, idle, and awaited by nobody: a few shards per call.
    func sweep(now: Int64) {
        let start = sweepCursor.add(8, ordering: .relaxed).oldValue
        for offset in 0..<8 {
            _ = shards.withLock((start + offset) & (Self.shardCount - 1)) { state in state.map.removeAll { $0.isDisposable(now: now) } }
        }
    }

    /// Empties the table, returning the leases with something left to give back.
    func drainForReturn(now: Int64) -> [Lease] {
        var returning: [Lease] = []
        for index in 0..<shards.count {
            shards.withLock(index) { state in
                for lease in state.map.leases where lease.returnable(now: now) > 0 { returning.append(lease) }
                state.map.removeAll()
            }
        }
        return returning
    }
}
