import SluiceCore
import Synchronization

/// One bucket's slice of a global budget, held by this process.
struct Lease: Sendable {
    let key: BucketKey
    /// The bucket's key in Redis.
    let redisKey: [UInt8]
    let rateLimit: RateLimit
    /// Units of the slice not yet spent.
    var remaining: Int64 = 0
    /// Local time (ns) after which the slice may not be spent: its window's end, or the holding's lifetime.
    var validUntil: Int64 = 0
    /// The Redis window the slice belongs to (windows only), for returning it.
    var window: Int64 = -1
    /// Until when (ns) Redis has nothing for a cost of at least ``exhaustedNeed``: denied here, no round trip.
    var exhaustedUntil: Int64 = 0
    var exhaustedNeed: Int64 = .max
    /// What Redis had left besides this slice at the last reply, for `remaining` in decisions.
    var globalRemaining: Int64 = 0
    /// When (ns) the bucket is full again, as of the last reply.
    var resetAt: Int64 = 0
    /// The last slice granted, and when.
    var lastGrant: Int64 = 0
    var grantedAt: Int64 = 0
    /// The slice to ask for next.
    var want: Int64
    /// A request to Redis is in flight, sent at `renewalSentAt` (ns).
    var renewing = false
    var renewalSentAt: Int64 = 0
    /// Renewals sent so far.
    var renewals: Int64 = 0
    var lastUsed: Int64 = 0
    /// Decisions waiting for the slice in flight, in arrival order.
    var waiters: [Waiter] = []

    init(key: BucketKey, redisKey: [UInt8], rateLimit: RateLimit) {
        self.key = key
        self.redisKey = redisKey
        self.rateLimit = rateLimit
        want = max(1, min(16, rateLimit.capacity / 16))
    }
}

/// A decision waiting for a lease.
struct Waiter: Sendable {
    let check: Check
    let pending: PendingDecision
}

/// The leases of this process: shards of dictionaries, each behind its own lock, held for a lookup and
/// a few integer updates. Bounded: when full, a new bucket gets no lease (it is decided by a script call).
final class LeaseTable: Sendable {
    enum Outcome {
        /// Decided here, with its charge; the renewal to send, if one is due.
        case decided(Decision, GlobalCharge?, RedisJob?)
        /// Waiting for Redis; the request to send, unless one is already in flight.
        case waiting(RedisJob?)
        /// Redis is down: the caller falls back.
        case unavailable
        /// The table is full and the bucket has no lease.
        case full
    }

    private static let shardCount = 64
    private final class Shard: Sendable {
        let table = Mutex<[BucketKey: Lease]>([:])
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
                table = table.filter { _, lease in
                    lease.renewing || !lease.waiters.isEmpty || lease.exhaustedUntil > now
                        || (lease.validUntil > now && lease.remaining > 0) || now - lease.lastUsed < 1_000_000_000
                }
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
                for lease in table.values where lease.remaining > 0 && lease.validUntil > now { returning.append(lease) }
                table.removeAll()
            }
        }
        live.store(0, ordering: .relaxed)
        return returning
    }
}
