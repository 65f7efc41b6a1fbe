import SluiceCore
import Synchronization

/// The leases of this process: shards of dictionaries, each behind its own lock, held for a lookup and
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
    private final class Shard: Sendable {
        let table = Locked<[BucketKey: Lease]>([:])
    }

    private let shards: [Shard]
    private let capacityPerShard: Int
    private let live = Atomic<Int>(0)
    private let sweepCursor = Atomic<Int>(0)

    init(capacity: Int) {
        shards = (0..<Self.shardCount).map { _ in Shard() }
        capacityPerShard = max(1, capacity / Self.shardCount)
    }

    var count: Int { live.load(ordering: .relaxed) }

    private func shard(_ key: BucketKey) -> Int { Int(truncatingIfNeeded: key.secondary >> 58) & (Self.shardCount - 1) }

    /// Runs `body` on `key`'s lease, created by `create` when absent (unless the shard is full).
    func withLease(_ key: BucketKey, create: () -> Lease, _ body: (inout Lease) -> Outcome) -> Outcome {
        shards[shard(key)].table.withLock { table in
            if let index = table.index(forKey: key) {
                return body(&table.values[index])
            }
            guard table.count < capacityPerShard else { return .full }
            var lease = create()
            let outcome = body(&lease)
            if case .unavailable = outcome { return outcome }  // nothing to remember
            table[key] = lease
            live.add(1, ordering: .relaxed)
            return outcome
        }
    }

    /// Runs `body` on `key`'s lease if it exists.
    func update(_ key: BucketKey, _ body: (inout Lease) -> Void) {
        shards[shard(key)].table.withLock { table in
            if let index = table.index(forKey: key) { body(&table.values[index]) }
        }
    }

    /// Drops leases that are spent or expired, idle, and awaited by nobody: a few shards per call.
    func sweep(now: Int64) {
        let start = sweepCursor.add(8, ordering: .relaxed).oldValue
        for offset in 0..<8 {
            let removed = shards[(start + offset) & (Self.shardCount - 1)].table.withLock { table in
                let before = table.count
                table = table.filter { _, lease in !lease.isDisposable(now: now) }
                return before - table.count
            }
            if removed > 0 { live.subtract(removed, ordering: .relaxed) }
        }
    }

    /// Empties the table, returning the leases with something left to give back.
    func drainForReturn(now: Int64) -> [Lease] {
        var returning: [Lease] = []
        for shard in shards {
            shard.table.withLock { table in
                for lease in table.values where lease.returnable(now: now) > 0 { returning.append(lease) }
                table.removeAll()
            }
        }
        live.store(0, ordering: .relaxed)
        return returning
    }
}
