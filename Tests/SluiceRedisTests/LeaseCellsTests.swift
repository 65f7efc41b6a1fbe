import SluiceCore
import Synchronization
import Testing

@testable import SluiceRedis

/// Spending from a lease's cell without the lock: it serves exactly what the lease would, the lock always sees
/// and leaves the whole lease, a cell given to another key or lease serves nobody from before, and threads that
/// spend while the lock renews and refunds never take more than was granted.
struct LeaseCellsTests {
    static let second: Int64 = 1_000_000_000
    static let stale: Int64 = 100_000_000

    static func key(_ name: String) -> BucketKey { BucketKey(seed: 9, key: name) }

    static func check(_ key: BucketKey, cost: Int64 = 1, limit: Int64 = 1000) -> Check {
        Check(rateLimit: LeaseTests.rateLimit(.fixedWindow, limit: limit), key: key, cost: cost)
    }

    /// A table holding `key`'s lease with a slice of `granted` (window 7, valid until 100 s, Redis 500 beside it),
    /// as a first grant leaves it.
    static func table(_ key: BucketKey, granted: Int64, capacity: Int = 1000, identity: UInt64 = 11) -> LeaseTable {
        let table = LeaseTable(capacity: capacity)
        _ = table.withLease(key, now: 0, create: {
            Lease(key: key, redisKey: Array("test:k".utf8), rateLimit: LeaseTests.rateLimit(.fixedWindow), identity: identity)
        }) { lease in
            let renewal = lease.startRenewal(need: 1, now: 0)
            _ = lease.apply(LeaseTests.grant(granted, window: 7, validMilliseconds: 100_000), of: renewal, now: 0)
            return .waiting(nil)
        }
        return table
    }

    /// The lease as the lock sees it.
    static func lease(_ table: LeaseTable, _ key: BucketKey, now: Int64 = 0) -> Lease? {
        var found: Lease?
        table.update(key, now: now) { found = $0 }
        return found
    }

    @Test("a cell's slice lies where the two-load read looks for it, and what a spend writes is on the first line")
    func layout() {
        #expect(MemoryLayout<LeaseCell>.stride <= LeaseCells.cellBytes)
        let memory = UnsafeMutableRawPointer.allocate(byteCount: LeaseCells.cellBytes, alignment: 64)
        defer { memory.deallocate() }
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: LeaseCells.cellBytes)
        let cell = memory.bindMemory(to: LeaseCell.self, capacity: 1)
        cell.pointee.slice.store(WordPair(first: 0x1111, second: 0x2222), ordering: .relaxed)
        cell.pointee.decided.store(0x3333, ordering: .relaxed)
        cell.pointee.identity.store(0x4444, ordering: .relaxed)
        let words = memory.bindMemory(to: UInt64.self, capacity: LeaseCells.cellBytes / 8)
        #expect(words[LeaseCell.sliceOffset / 8] == 0x1111 && words[LeaseCell.sliceOffset / 8 + 1] == 0x2222)
        #expect((0..<8).contains { words[$0] == 0x3333 }, "the count a spend adds to is on the first line")
        #expect((8..<16).contains { words[$0] == 0x4444 }, "what only a charge reads is on the second")
    }

    @Test("cells are given out densely from each shard's pool and reused; a full pool or a full group gives none")
    func pooledCells() throws {
        let cells = try #require(LeaseCells(shardCount: 2, capacityPerShard: 2))
        let a = Self.key("pool-a"), b = Self.key("pool-b"), c = Self.key("pool-c")
        #expect(cells.claim(a, shard: 1) == 2 && cells.claim(b, shard: 1) == 3, "shard 1's cells are 2 and 3, in order")
        #expect(cells.claim(c, shard: 1) == nil, "its pool is spent")
        #expect(cells.find(a, shard: 1)?.index == 2 && cells.find(b, shard: 1)?.index == 3 && cells.find(c, shard: 1) == nil)
        #expect(cells.claim(c, shard: 0) == 0, "another shard's pool is its own")
        _ = cells.free(2)
        #expect(cells.find(a, shard: 1) == nil)
        let reused = try #require(cells.claim(c, shard: 1))
        #expect(reused == 2)
        #expect(cells.find(c, shard: 1).map { $0.index == 2 && $0.generation == 1 } == true, "the next generation")
        // Nine keys whose first lanes pick the same group of eight: the ninth gets no cell, and loses none.
        let crowded = try #require(LeaseCells(shardCount: 1, capacityPerShard: 20))
        let keys = (0..<9).map { BucketKey(primary: UInt64($0 + 1) << 32, secondary: UInt64($0)) }
        #expect(keys.prefix(8).allSatisfy { crowded.claim($0, shard: 0) != nil })
        #expect(crowded.claim(keys[8], shard: 0) == nil)
        #expect(crowded.claim(BucketKey(primary: 2, secondary: 99), shard: 0) == 8, "the pool still gives the next cell")
        #expect(keys.prefix(8).allSatisfy { crowded.find($0, shard: 0) != nil })
    }

    @Test("a lease made while its group was full takes a cell at its next locked decision once the group has room")
    func aLeaseWithoutACellTakesOneLater() throws {
        let table = LeaseTable(capacity: 1000)
        // Nine keys of one shard whose first lanes pick the same group of eight; the first lease's slice ends at 1 s.
        let keys = (0..<9).map { BucketKey(primary: UInt64($0 + 1) << 32, secondary: UInt64($0)) }
        for (number, key) in keys.enumerated() {
            _ = table.withLease(key, now: 0, create: {
                Lease(key: key, redisKey: Array("test:\(number)".utf8), rateLimit: LeaseTests.rateLimit(.fixedWindow), identity: UInt64(number))
            }) { lease in
                let renewal = lease.startRenewal(need: 1, now: 0)
                _ = lease.apply(LeaseTests.grant(50, validMilliseconds: number == 0 ? 1_000 : 100_000), of: renewal, now: 0)
                return .waiting(nil)
            }
        }
        #expect(table.spendWithoutLock(Self.check(keys[1]), now: 0) != nil, "the first eight have cells")
        #expect(table.spendWithoutLock(Self.check(keys[8]), now: 0) == nil, "the ninth has none: the lock decides it")
        // The first lease expires and is swept (a few shards per call), which frees its cell and its group entry.
        let later = 5 * Self.second
        for _ in 0..<8 { table.sweep(now: later) }
        #expect(Self.lease(table, keys[0], now: later) == nil)
        #expect(table.spendWithoutLock(Self.check(keys[8]), now: later) == nil, "no cell until the lock sees the lease")
        _ = table.withLease(keys[8], now: later, create: { preconditionFailure("the lease exists") }) { _ in .waiting(nil) }
        let lease = try #require(Self.lease(table, keys[8], now: later))
        let before = lease.remaining
        let spent = try #require(table.spendWithoutLock(Self.check(keys[8]), now: later), "the ninth now spends from a cell")
        #expect(before > 1 && spent.decision.remaining == before - 1 + lease.globalRemaining && spent.charge.lease == 8)
        #expect(Self.lease(table, keys[8], now: later)?.remaining == before - 1, "the lock sees the spend")
        #expect(table.counts.decided == 2, "both spends from cells are counted")
    }

    @Test("a spend from the cell answers as the lease would, names the same charge, and the lock then sees it spent")
    func spendsAsTheLeaseWould() throws {
        let key = Self.key("a")
        let table = Self.table(key, granted: 10)
        var reference = try #require(Self.lease(table, key))
        guard case .allowed(let expected, let expectedCharge, _) = reference.spend(Self.check(key, cost: 3), now: 5, staleAfter: Self.stale, connected: true)
        else { Issue.record("the lease itself allows it"); return }
        let spent = try #require(table.spendWithoutLock(Self.check(key, cost: 3), now: 5))
        #expect(spent.decision == expected)
        #expect(spent.charge == expectedCharge)
        #expect(spent.charge.lease == 11 && spent.charge.window == 7 && spent.charge.fromLease)
        #expect(!spent.renewalDue, "7 of 10 left: not yet half")
        #expect(Self.lease(table, key)?.remaining == 7)
        #expect(table.counts.decided == 1, "counted from the cell")
    }

    @Test("the cell serves nothing it cannot: more than it holds, an expired slice, a key without a lease")
    func refusesWhatTheLockMustDecide() throws {
        let key = Self.key("b")
        let table = Self.table(key, granted: 4)
        #expect(table.spendWithoutLock(Self.check(key, cost: 5), now: 1) == nil)
        #expect(table.spendWithoutLock(Self.check(key), now: 100 * Self.second) == nil, "past validUntil")
        #expect(table.spendWithoutLock(Self.check(Self.key("other")), now: 1) == nil)
        for _ in 0..<4 { #expect(table.spendWithoutLock(Self.check(key), now: 1) != nil) }
        #expect(table.spendWithoutLock(Self.check(key), now: 1) == nil, "spent out: the lock decides (and asks Redis)")
        #expect(Self.lease(table, key)?.remaining == 0)
        #expect(table.counts.decided == 4)
    }

    @Test("half of the grant spent reports a renewal due once; the lock starts it, and no spend reports another while it flies")
    func renewalDueOnce() throws {
        let key = Self.key("c")
        let table = Self.table(key, granted: 10)
        var due: [Bool] = []
        for _ in 0..<4 { due.append(try #require(table.spendWithoutLock(Self.check(key), now: 1)).renewalDue) }
        #expect(due == [false, false, false, false], "10 → 6")
        let half = try #require(table.spendWithoutLock(Self.check(key), now: 1))
        #expect(half.renewalDue, "5 left of 10")
        var renewal: Renewal?
        table.update(key, now: 1) { renewal = $0.renewalIfDue(now: 1, staleAfter: Self.stale, connected: true) }
        let started = try #require(renewal)
        #expect(started.keep == 5)
        let next = try #require(table.spendWithoutLock(Self.check(key), now: 2))
        #expect(!next.renewalDue, "a renewal flies")
        // Its reply: 16 more (the same window), and spends carry on from the cell with the new count.
        table.update(key, now: 3) { _ = $0.apply(LeaseTests.grant(16, window: 7, validMilliseconds: 100_000), of: started, now: 3) }
        #expect(Self.lease(table, key, now: 3)?.remaining == 20)
        let after = try #require(table.spendWithoutLock(Self.check(key), now: 4))
        #expect(after.decision.remaining == 519, "19 here and 500 in Redis")
    }

    @Test("a refund of a spend from the cell goes back to the slice while it owns the unit, and not after the window moved")
    func refundsThroughTheLock() throws {
        let key = Self.key("d")
        let table = Self.table(key, granted: 10)
        let spent = try #require(table.spendWithoutLock(Self.check(key, cost: 2), now: 1))
        var refunded = false
        table.update(key, now: 2) { refunded = $0.refund(2, charge: spent.charge, now: 2) }
        #expect(refunded && Self.lease(table, key)?.remaining == 10)
        let again = try #require(table.spendWithoutLock(Self.check(key, cost: 2), now: 3))
        // A renewal's reply for the next window: the unit of window 7 is not this slice's to take back.
        table.update(key, now: 4) { lease in
            let renewal = lease.startRenewal(need: 1, now: 4)
            _ = lease.apply(LeaseTests.grant(5, window: 8, validMilliseconds: 100_000), of: renewal, now: 4)
        }
        table.update(key, now: 5) { refunded = $0.refund(2, charge: again.charge, now: 5) }
        #expect(!refunded && Self.lease(table, key, now: 5)?.remaining == 5)
        let inNewWindow = try #require(table.spendWithoutLock(Self.check(key), now: 6))
        #expect(inNewWindow.charge.window == 8)
    }

    @Test("a swept lease's cell serves no later lease's spends from before, and a drained one nothing at all")
    func freedCellsServeNobodyFromBefore() throws {
        let key = Self.key("e")
        let table = Self.table(key, granted: 1)
        _ = try #require(table.spendWithoutLock(Self.check(key), now: 1))
        // The first sweep finds the cell's count gone down since it opened: used now, so idle only from now.
        for _ in 0..<8 { table.sweep(now: 10 * Self.second) }
        #expect(table.counts.leases == 1)
        for _ in 0..<8 { table.sweep(now: 12 * Self.second) }
        #expect(table.counts.leases == 0, "spent, idle for a second: swept")
        #expect(table.counts.decided == 1, "its cell's decisions are still counted")
        // The same key leased again gets a fresh identity; its spends carry it.
        let outcome = table.withLease(key, now: 12 * Self.second, create: {
            Lease(key: key, redisKey: Array("test:k".utf8), rateLimit: LeaseTests.rateLimit(.fixedWindow), identity: 12)
        }) { lease in
            let renewal = lease.startRenewal(need: 1, now: 12 * Self.second)
            _ = lease.apply(LeaseTests.grant(3, window: 7, validMilliseconds: 100_000), of: renewal, now: 12 * Self.second)
            return .waiting(nil)
        }
        guard case .waiting = outcome else { Issue.record("a new lease"); return }
        let renewed = try #require(table.spendWithoutLock(Self.check(key), now: 12 * Self.second + 1))
        #expect(renewed.charge.lease == 12)
        let returned = table.drainForReturn(now: 12 * Self.second + 2)
        #expect(returned.map(\.remaining) == [2], "the drain takes the cell's count back")
        #expect(table.spendWithoutLock(Self.check(key), now: 12 * Self.second + 3) == nil)
    }

    @Test("threads spending from one cell while the lock renews, refunds and sweeps take exactly what was granted")
    func concurrentSpendsNeverOverspend() async throws {
        let key = Self.key("f")
        let table = Self.table(key, granted: 2_000, capacity: 64)
        let taken = Tally()
        let fromCell = Tally()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    var now: Int64 = 1
                    while true {
                        now += 1
                        if table.spendWithoutLock(Self.check(key), now: now) != nil {
                            taken.value.add(1, ordering: .relaxed)
                            fromCell.value.add(1, ordering: .relaxed)
                            continue
                        }
                        let outcome = table.withLease(key, now: now, create: { preconditionFailure("it exists") }) { lease in
                            guard case .allowed = lease.spend(Self.check(key), now: now, staleAfter: Self.stale, connected: false) else {
                                return .unavailable
                            }
                            return LeaseTableTests.allowed
                        }
                        guard case .decided = outcome else { return }
                        taken.value.add(1, ordering: .relaxed)
                    }
                }
            }
            group.addTask {
                // The lock's traffic meanwhile: peeks, refunds of a unit it then spends itself, sweeps.
                for step in 0..<2_000 {
                    table.update(key, now: 1) { lease in
                        if lease.refund(1, charge: GlobalCharge(fromLease: true, window: 7, renewals: lease.renewals, lease: 11), now: 1) {
                            lease.remaining -= 1
                        }
                        _ = lease.peek(Self.check(key), now: 1)
                    }
                    if step % 100 == 0 { table.sweep(now: 1) }
                }
            }
        }
        #expect(taken.value.load(ordering: .relaxed) == 2_000, "every unit granted, none twice")
        #expect(fromCell.value.load(ordering: .relaxed) > 0)
        #expect(Self.lease(table, key, now: 2)?.remaining == 0)
        #expect(table.counts.decided == 2_000, "each counted once, from the cell or under the lock")
    }
}

/// A count that tasks share.
private final class Tally: Sendable {
    let value = Atomic<Int>(0)
}
