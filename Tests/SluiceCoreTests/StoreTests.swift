import Synchronization
import Testing

@testable import SluiceCore

struct StoreTests {
    let fixedFive: RateLimit

    init() throws {
        fixedFive = try RateLimit(algorithm: .fixedWindow, limit: 5, periodNanoseconds: TestTime.second)
    }

    @Test("An empty slot is all zero bytes: the store's zeroed reservation needs no writing, and stays untouched until used")
    func emptySlotIsZeroBytes() {
        let full = BucketState.full.words
        #expect(full.first == 0 && full.second == 0)
        #expect(MemoryLayout<BucketSlot>.size == 32)
        // A store fresh from the kernel: every slot reads as empty, and a decision takes one.
        let limiter = RateLimiter(store: BucketStore(maximumKeys: 1_000_000))
        let now = Timestamp(nanoseconds: TestTime.start)
        #expect(limiter.store.keyCount == 0)
        #expect(limiter.store.sweep(now: now) == 0)
        #expect(limiter.decide(Check(rateLimit: fixedFive, key: BucketKey(seed: 1, key: "user:1"), cost: 1), at: now).remaining == 4)
        #expect(limiter.store.keyCount == 1)
    }

    @Test("The two-halves read of a slot's state (the decision path's guess) finds what the atomic load finds")
    func stateGuessReadsTheSlotsState() {
        let memory = UnsafeMutableRawPointer.allocate(byteCount: 32, alignment: 16)
        defer { memory.deallocate() }
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: 32)
        let slot = memory.bindMemory(to: BucketSlot.self, capacity: 1)
        let words = WordPair(first: 0x0123_4567_89AB_CDEF, second: 0xFEDC_BA98_7654_3210)
        slot.pointee.tag.store(0x1111, ordering: .relaxed)
        slot.pointee.check.store(0x2222, ordering: .relaxed)
        slot.pointee.state.store(words, ordering: .relaxed)
        #expect(BucketSlot.stateGuess(at: slot) == words)
        #expect(BucketSlot.stateGuess(at: slot) == slot.pointee.state.load(ordering: .relaxed))
    }

    @Test("Prefetching is only a hint: keys present or absent, every shard's first and last slot, nothing changes")
    func prefetchChangesNothing() {
        let limiter = RateLimiter(store: BucketStore(maximumKeys: 4_096, shardCount: 8))
        let now = Timestamp(nanoseconds: TestTime.start)
        let present = (0..<100).map { BucketKey(seed: 1, key: "user:\($0)") }
        for key in present { _ = limiter.decide(Check(rateLimit: fixedFive, key: key, cost: 1), at: now) }
        // Absent keys, and hashes whose home slots are the ends of their shards (secondary 0 and all ones).
        let absent = (0..<1_000).map { BucketKey(seed: 2, key: "other:\($0)") }
            + (0..<8).flatMap { shard in
                [UInt64(0), .max].map { BucketKey(primary: UInt64(shard) << 48 | 1, secondary: $0) }
            }
        for key in present + absent { limiter.prefetch(Check(rateLimit: fixedFive, key: key, cost: 1)) }
        #expect(limiter.store.keyCount == 100)
        for key in present {
            #expect(limiter.decide(Check(rateLimit: fixedFive, key: key, cost: 1), at: now, consume: false).remaining == 3)
        }
    }

    @Test("Huge pages are asked for once, when the live keys are twice the table's small pages, not before")
    func memoryAdviceWaitsForABusyTable() {
        let calls = Locked(0)
        let store = BucketStore(maximumKeys: 100_000) { _, _ in calls.withLock { $0 += 1 } }
        let limiter = RateLimiter(store: store)
        let now = Timestamp(nanoseconds: TestTime.start)
        let threshold = 2 * store.slotCount * BucketStore.bytesPerSlot / 4096
        for index in 0..<(threshold - 1) {
            _ = limiter.decide(Check(rateLimit: fixedFive, key: BucketKey(seed: 1, key: "user:\(index)"), cost: 1), at: now)
        }
        store.adviseMemoryIfBusy()
        #expect(calls.withLock { $0 } == 0, "\(store.keyCount) keys, below \(threshold)")
        _ = limiter.decide(Check(rateLimit: fixedFive, key: BucketKey(seed: 1, key: "one more"), cost: 1), at: now)
        store.adviseMemoryIfBusy()
        store.adviseMemoryIfBusy()
        #expect(calls.withLock { $0 } == 1)
    }

    @Test func keysPersistBetweenDecisions() throws {
        let limiter = RateLimiter(store: BucketStore(maximumKeys: 100, shardCount: 1))
        let now = Timestamp(nanoseconds: TestTime.start)
        let key = BucketKey(seed: 1, key: "user:42")
        #expect(limiter.decide(Check(rateLimit: fixedFive, key: key, cost: 3), at: now).remaining == 2)
        #expect(limiter.store.keyCount == 1)
        let later = Timestamp(nanoseconds: TestTime.start + 500_000_000)
        #expect(limiter.decide(Check(rateLimit: fixedFive, key: key, cost: 1), at: later, consume: false).remaining == 1)
        #expect(limiter.decide(Check(rateLimit: fixedFive, key: key, cost: 2), at: later).remaining == 0)
        #expect(limiter.decide(Check(rateLimit: fixedFive, key: key, cost: 1), at: later).outcome == .denied)
        // Peeks, denials and impossible costs on unknown keys store nothing.
        let stranger = BucketKey(seed: 1, key: "user:43")
        #expect(limiter.decide(Check(rateLimit: fixedFive, key: stranger, cost: 1), at: later, consume: false).outcome == .allowed)
        #expect(limiter.decide(Check(rateLimit: fixedFive, key: stranger, cost: 6), at: later).outcome == .exceedsCapacity)
        #expect(limiter.store.keyCount == 1)
        #expect(limiter.reset(stranger) == false)
    }

    @Test func bucketKeysHashTheSameFromStringsAndBytes() {
        for text in ["", "a", "user:42", "exactly8", "more than eight bytes of key", "ключ"] {
            let fromString = BucketKey(seed: 77, key: text)
            let fromBytes = Array(text.utf8).withUnsafeBytes { BucketKey(seed: 77, bytes: $0) }
            #expect(fromString == fromBytes)
            #expect(fromString != BucketKey(seed: 78, key: text))
        }
        #expect(BucketKey(seed: 1, key: "ab") != BucketKey(seed: 1, key: "ba"))
        #expect(BucketKey(seed: 1, key: "a") != BucketKey(seed: 1, key: "a\u{0}"))
    }

    @Test func differentPoliciesHaveSeparateBuckets() throws {
        let api = try Policy(name: "api", rateLimit: fixedFive)
        let web = try Policy(name: "web", rateLimit: fixedFive)
        let set = try PolicySet([api, web])
        let limiter = RateLimiter(store: BucketStore(maximumKeys: 100, shardCount: 1))
        let now = Timestamp(nanoseconds: TestTime.start)
        func check(_ policy: Int, _ key: String, cost: Int64 = 1) -> Check {
            var key = key
            return key.withUTF8 { set.check(policy: policy, key: UnsafeRawBufferPointer($0), cost: cost) }
        }
        #expect(check(0, "user:1").key == BucketKey(seed: api.bucketSeed, key: "user:1"))
        #expect(check(1, "user:1").policyIndex == 1)

        #expect(limiter.decide(check(0, "user:1", cost: 5), at: now).remaining == 0)
        #expect(limiter.decide(check(0, "user:1"), at: now).outcome == .denied)
        let other = limiter.decide(check(1, "user:1"), at: now)
        #expect(other.outcome == .allowed)
        #expect(other.remaining == 4)
        #expect(other.policyIndex == 1)
        #expect(limiter.decide(check(0, "user:2"), at: now).remaining == 4)
        #expect(limiter.store.keyCount == 3)

        // A policy whose limit changes (same name) gets a new seed, so a reload starts it afresh.
        let reloaded = try Policy(name: "api", rateLimit: RateLimit(algorithm: .fixedWindow, limit: 6, periodNanoseconds: TestTime.second))
        #expect(reloaded.bucketSeed != api.bucketSeed)
        #expect(try Policy(name: "api", rateLimit: fixedFive, mode: .shadow).bucketSeed == api.bucketSeed)
        // Inline limits share buckets exactly when their numbers are equal.
        let sameNumbers = try RateLimit(algorithm: .fixedWindow, limit: 5, periodNanoseconds: TestTime.second)
        #expect(Check.inlineSeed(for: sameNumbers) == Check.inlineSeed(for: fixedFive))
        #expect(Check.inlineSeed(for: fixedFive) != api.bucketSeed)
    }

    @Test(arguments: Algorithm.allCases)
    func resetRefillsOnlyThatKey(algorithm: Algorithm) throws {
        let rateLimit = try RateLimit(algorithm: algorithm, limit: 3, periodNanoseconds: TestTime.minute)
        let limiter = RateLimiter(store: BucketStore(maximumKeys: 10, shardCount: 1))
        let now = Timestamp(nanoseconds: TestTime.start + 12_345)
        let first = BucketKey(seed: 5, key: "first")
        let second = BucketKey(seed: 5, key: "second")
        #expect(limiter.reset(first) == false)
        for key in [first, second] {
            #expect(limiter.decide(Check(rateLimit: rateLimit, key: key, cost: 3), at: now).outcome == .allowed)
        }
        #expect(limiter.reset(first) == true)
        #expect(limiter.decide(Check(rateLimit: rateLimit, key: first, cost: 3), at: now, consume: false).outcome == .allowed)
        #expect(limiter.decide(Check(rateLimit: rateLimit, key: second, cost: 1), at: now).outcome == .denied)
        // The key stays in place (now full), so the next sweep drops it and nothing else.
        #expect(limiter.store.keyCount == 2)
        #expect(limiter.store.sweep(now: now) == 1)
        #expect(limiter.store.keyCount == 1)
        #expect(limiter.reset(first) == false)
    }

    /// At many instants around the buckets' refill boundaries, a sweep never drops a key that is not full
    /// (no key's answer changes because of it), and drops every key that was already full 1 ns earlier.
    @Test func sweepDropsOnlyFullKeys() throws {
        let limits: [(RateLimit, Int64)] = [
            (try RateLimit(algorithm: .fixedWindow, limit: 1, periodNanoseconds: TestTime.second), 1),
            (try RateLimit(algorithm: .tokenBucket, limit: 3, periodNanoseconds: TestTime.second, burst: 1), 1),  // T = 333,333,333⅓ ns
            (try RateLimit(algorithm: .tokenBucket, limit: 3, periodNanoseconds: TestTime.second, burst: 3), 2),
            (try RateLimit(algorithm: .tokenBucket, limit: 1, periodNanoseconds: TestTime.second), 1),
            (try RateLimit(algorithm: .slidingWindow, limit: 2, periodNanoseconds: TestTime.second), 2),
            (try RateLimit(algorithm: .slidingWindow, limit: 7, periodNanoseconds: 3 * TestTime.millisecond), 1),
        ]
        let store = BucketStore(maximumKeys: 64, shardCount: 1)
        let limiter = RateLimiter(store: store)
        let start = TestTime.start
        let keys = limits.indices.map { BucketKey(seed: 3, key: "key\($0)") }
        for (index, (rateLimit, cost)) in limits.enumerated() {
            let decision = limiter.decide(Check(rateLimit: rateLimit, key: keys[index], cost: cost), at: Timestamp(nanoseconds: start))
            #expect(decision.outcome == .allowed)
        }
        func answers(at now: Int64) -> [Decision] {
            limits.indices.map { limiter.decide(Check(rateLimit: limits[$0].0, key: keys[$0], cost: 1), at: Timestamp(nanoseconds: now), consume: false) }
        }
        func isFull(_ index: Int, at now: Int64) -> Bool {
            let (rateLimit, _) = limits[index]
            return limiter.decide(Check(rateLimit: rateLimit, key: keys[index], cost: rateLimit.capacity), at: Timestamp(nanoseconds: now), consume: false)
                .outcome == .allowed
        }
        // A dropped key reads as a fresh, full bucket, and a full bucket stays full while nobody consumes:
        // so the keys full at an instant always include every key dropped so far.
        var dropped = 0
        var instants: [Int64] = []
        for boundary: Int64 in [0, 3_000_000, 333_333_333, 666_666_667, 1_000_000_000, 2_000_000_000] {
            instants += [boundary - 1, boundary, boundary + 1].filter { $0 >= 0 }
        }
        for offset in instants {
            let now = start + offset
            let fullNow = keys.indices.filter { isFull($0, at: now) }.count
            // (Before the first instant the buckets did not exist yet: nothing is owed there.)
            let fullBefore = offset == 0 ? 0 : keys.indices.filter { isFull($0, at: now - 1) }.count
            let before = answers(at: now)
            let count = store.sweep(now: Timestamp(nanoseconds: now))
            #expect(answers(at: now) == before, "a sweep at +\(offset) ns changed what some key answers")
            #expect(dropped + count <= fullNow, "at +\(offset) ns: dropped \(count) more, but only \(fullNow - dropped) more were full")
            #expect(dropped + count >= fullBefore, "at +\(offset) ns: dropped \(count) more, but \(fullBefore - dropped) more were full 1 ns earlier")
            dropped += count
            #expect(store.keyCount == keys.count - dropped)
        }
        #expect(store.keyCount == 0)
        #expect(store.idleEvictions == keys.count)
        #expect(store.pressureEvictions == 0)
    }

    @Test(arguments: [(1, 64), (7, 4), (100, 64), (1_000, 16), (64, 1), (33, 3)] as [(Int, Int)])
    func maximumKeysBoundsLiveKeys(maximumKeys: Int, shardCount: Int) throws {
        let store = BucketStore(maximumKeys: maximumKeys, shardCount: shardCount)
        let limiter = RateLimiter(store: store)
        let rateLimit = try RateLimit(algorithm: .tokenBucket, limit: 10, periodNanoseconds: TestTime.second)
        let clock = ManualClock()
        let distinct = 5_000
        var maximumSeen = 0
        for index in 0..<distinct {
            let key = BucketKey(seed: 11, key: "client-\(index)")
            #expect(limiter.decide(Check(rateLimit: rateLimit, key: key), at: clock.now()).outcome == .allowed)
            maximumSeen = max(maximumSeen, store.keyCount)
        }
        #expect(maximumSeen <= maximumKeys)
        #expect(store.keyCount == maximumKeys)
        // Every insert either took a free slot or evicted a bucket that was not yet full again.
        #expect(store.keyCount + store.pressureEvictions == distinct)
        #expect(store.idleEvictions == 0)

        // Once the buckets are full again, evicting them loses nothing and is counted as idle.
        clock.advance(nanoseconds: TestTime.second)
        for index in 0..<distinct {
            _ = limiter.decide(Check(rateLimit: rateLimit, key: BucketKey(seed: 12, key: "later-\(index)")), at: clock.now())
            #expect(store.keyCount <= maximumKeys)
        }
        #expect(store.idleEvictions > 0)
        #expect(store.keyCount + store.pressureEvictions + store.idleEvictions == 2 * distinct)
    }

    /// A token-bucket refund that arrives after another request charged a refilled bucket must not erase
    /// that request's charge (10/s, burst 1: A at t0, B at t0+200 ms, A refunded, then C at t0+200 ms).
    @Test func lateTokenBucketRefundNeverOverAdmits() throws {
        let store = BucketStore(maximumKeys: 1_000)
        let limit = try RateLimit(algorithm: .tokenBucket, limit: 10, periodNanoseconds: 1_000_000_000, burst: 1)
        let key = BucketKey(seed: 77, key: "late-refund")
        let start = Timestamp(nanoseconds: TestTime.start)
        let later = Timestamp(nanoseconds: TestTime.start + 200_000_000)
        let (first, reservation) = store.decide(limit, key: key, cost: 1, now: start, consume: true)
        #expect(first.decision.outcome == .allowed)
        let (second, _) = store.decide(limit, key: key, cost: 1, now: later, consume: true)
        #expect(second.decision.outcome == .allowed)
        store.refund(try #require(reservation), limit: limit, cost: 1)
        let (third, _) = store.decide(limit, key: key, cost: 1, now: later, consume: true)
        #expect(third.decision.outcome == .denied, "the refund erased a later charge")
    }

    /// An undisturbed token-bucket refund gives the tokens back exactly.
    @Test func immediateTokenBucketRefundRestoresTheBucket() throws {
        let store = BucketStore(maximumKeys: 1_000)
        let limit = try RateLimit(algorithm: .tokenBucket, limit: 10, periodNanoseconds: 1_000_000_000, burst: 3)
        let key = BucketKey(seed: 78, key: "refund")
        let now = Timestamp(nanoseconds: TestTime.start)
        let (_, reservation) = store.decide(limit, key: key, cost: 2, now: now, consume: true)
        store.refund(try #require(reservation), limit: limit, cost: 2)
        #expect(store.decide(limit, key: key, cost: 1, now: now, consume: false).0.decision.remaining == 2)
    }

    @Test func storeGeometry() {
        #expect(BucketStore.bytesPerSlot == 32)
        // At least BucketStore.minimumKeysPerShard (256) keys per shard: 1,000 keys make 2 shards, not 64.
        let store = BucketStore(maximumKeys: 1_000, shardCount: 64)
        #expect(store.shardCount == 2)
        #expect(store.maximumKeys == 1_000)
        // 500 keys per shard need 667 slots at 3/4 load, 668 to stay even (whole cache lines).
        #expect(store.slotCount == 2 * 668)
        #expect(BucketStore(maximumKeys: 100_000, shardCount: 3).shardCount == 2)
        #expect(BucketStore(maximumKeys: 5, shardCount: 64).shardCount == 1)
        #expect(BucketStore(maximumKeys: 1_000_000, shardCount: 64).shardCount == 64)
        #expect(BucketStore(maximumKeys: 0).maximumKeys == 1)
        let big = BucketStore(maximumKeys: 100_000, shardCount: 8)
        // 12,500 keys per shard need 16,667 slots at 3/4 load, 16,668 to stay even.
        #expect(big.slotCount == 8 * 16_668)
        // The default: 41 MiB of slots for a million keys.
        #expect(BucketStore(maximumKeys: 1_000_000).slotCount * BucketStore.bytesPerSlot == 42_668_032)
    }

    /// Keys built to land in the same shard and on the same home slot still get buckets of their own.
    @Test func collidingHomeSlotsKeepDistinctBuckets() throws {
        let store = BucketStore(maximumKeys: 1_000, shardCount: 4)
        let limiter = RateLimiter(store: store)
        let rateLimit = try RateLimit(algorithm: .fixedWindow, limit: 100, periodNanoseconds: TestTime.hour)
        let now = Timestamp(nanoseconds: TestTime.start)
        var keys: [BucketKey] = []
        for index in 0..<40 {
            // Same top 16 bits of the primary lane (shard), same low bits of the secondary (home slot).
            keys.append(BucketKey(primary: 0x0003_0000_0000_0000 | UInt64(index) << 8, secondary: 0x0000_0000_0000_1234 | UInt64(index) << 40))
        }
        // Same 48 tag bits (the low bit is forced to 1), different secondary lane.
        keys.append(BucketKey(primary: 0x0003_0000_0000_7700, secondary: 0x0000_0000_0000_1234 | 0xAB << 40))
        keys.append(BucketKey(primary: 0x0003_0000_0000_7701, secondary: 0x0000_0000_0000_1234 | 0xAC << 40))
        // Same secondary lane, different tag bits.
        keys.append(BucketKey(primary: 0x0003_0000_0000_8800, secondary: 0x0000_0000_0000_1234 | 0xAD << 40))
        keys.append(BucketKey(primary: 0x0003_0000_0000_8900, secondary: 0x0000_0000_0000_1234 | 0xAD << 40))
        #expect(Set(keys).count == keys.count)

        for (index, key) in keys.enumerated() {
            #expect(limiter.decide(Check(rateLimit: rateLimit, key: key, cost: Int64(index + 1)), at: now).outcome == .allowed)
        }
        #expect(store.keyCount == keys.count)
        #expect(store.pressureEvictions == 0)
        for (index, key) in keys.enumerated() {
            let peek = limiter.decide(Check(rateLimit: rateLimit, key: key, cost: 1), at: now, consume: false)
            #expect(peek.remaining == 100 - Int64(index + 1) - 1, "key \(index) shares a bucket")
        }
        #expect(limiter.reset(keys[3]))
        #expect(limiter.decide(Check(rateLimit: rateLimit, key: keys[4], cost: 1), at: now, consume: false).remaining == 100 - 5 - 1)
        #expect(limiter.decide(Check(rateLimit: rateLimit, key: keys[3], cost: 1), at: now, consume: false).remaining == 99)
    }

    /// When more keys share a home slot than the probe window holds, the bucket closest to full is replaced.
    @Test func fullProbeWindowReplacesTheBucketClosestToFull() throws {
        let store = BucketStore(maximumKeys: 1_000, shardCount: 1, probeWindow: 4)
        let limiter = RateLimiter(store: store)
        let rateLimit = try RateLimit(algorithm: .tokenBucket, limit: 10, periodNanoseconds: TestTime.second)
        let now = Timestamp(nanoseconds: TestTime.start)
        let keys = (0..<6).map { BucketKey(primary: UInt64($0 + 1) << 4, secondary: 0x77 | UInt64($0 + 1) << 32) }
        let costs: [Int64] = [5, 1, 3, 4, 2, 6]
        for index in 0..<4 {
            #expect(limiter.decide(Check(rateLimit: rateLimit, key: keys[index], cost: costs[index]), at: now).outcome == .allowed)
        }
        #expect(store.keyCount == 4)
        // The fifth key evicts key 1 (1 token spent: the soonest full); the sixth then evicts the fifth (2 spent).
        #expect(limiter.decide(Check(rateLimit: rateLimit, key: keys[4], cost: costs[4]), at: now).outcome == .allowed)
        #expect(limiter.decide(Check(rateLimit: rateLimit, key: keys[5], cost: costs[5]), at: now).outcome == .allowed)
        #expect(store.keyCount == 4)
        #expect(store.pressureEvictions == 2)
        let remaining = keys.map { limiter.decide(Check(rateLimit: rateLimit, key: $0, cost: 1), at: now, consume: false).remaining }
        #expect(remaining == [4, 9, 6, 5, 9, 3])
    }

    /// A refund that arrives after the bucket has moved on (another request, timed in a later window, got in
    /// between) gives back only what is still counted: never budget in a window it was not charged to.
    @Test func windowRefundsTouchOnlyTheChargedWindow() throws {
        let store = BucketStore(maximumKeys: 16, shardCount: 1)
        let charged = TestTime.start + 500_000_000

        let fixed = try RateLimit(algorithm: .fixedWindow, limit: 2, periodNanoseconds: TestTime.second)
        let fixedKey = BucketKey(seed: 51, key: "fixed")
        let (first, fixedReservation) = store.decide(fixed, key: fixedKey, cost: 1, now: Timestamp(nanoseconds: charged), consume: true)
        #expect(first.decision.outcome == .allowed)
        let fixedRefund = try #require(fixedReservation)
        let nextWindow = Timestamp(nanoseconds: charged + TestTime.second)
        #expect(store.decide(fixed, key: fixedKey, cost: 2, now: nextWindow, consume: true).0.decision.outcome == .allowed)
        store.refund(fixedRefund, limit: fixed, cost: 1)
        #expect(store.decide(fixed, key: fixedKey, cost: 1, now: nextWindow, consume: false).0.decision.outcome == .denied)

        let sliding = try RateLimit(algorithm: .slidingWindow, limit: 2, periodNanoseconds: TestTime.second)
        let slidingKey = BucketKey(seed: 51, key: "sliding")
        let (_, slidingReservation) = store.decide(sliding, key: slidingKey, cost: 1, now: Timestamp(nanoseconds: charged), consume: true)
        let slidingRefund = try #require(slidingReservation)
        // One window later the charge is the previous window's count: the refund takes it from there.
        #expect(store.decide(sliding, key: slidingKey, cost: 1, now: nextWindow, consume: true).0.decision.outcome == .allowed)
        store.refund(slidingRefund, limit: sliding, cost: 1)
        let afterRefund = store.decide(sliding, key: slidingKey, cost: 1, now: nextWindow, consume: false).0.decision
        #expect(afterRefund.outcome == .allowed)
        #expect(afterRefund.remaining == 0)
        // Two windows later the charge has slid out: a refund must not touch the newer windows' counts.
        let (_, secondReservation) = store.decide(sliding, key: slidingKey, cost: 1, now: nextWindow, consume: true)
        let secondRefund = try #require(secondReservation)
        for later in [nextWindow.nanoseconds + TestTime.second, nextWindow.nanoseconds + 2 * TestTime.second] {
            #expect(store.decide(sliding, key: slidingKey, cost: 1, now: Timestamp(nanoseconds: later), consume: true).0.decision.outcome == .allowed)
        }
        store.refund(secondRefund, limit: sliding, cost: 1)
        let twoLater = Timestamp(nanoseconds: nextWindow.nanoseconds + 2 * TestTime.second)
        let untouched = store.decide(sliding, key: slidingKey, cost: 1, now: twoLater, consume: false).0.decision
        #expect(untouched.outcome == .denied)  // the previous 1 weighs ½, the current 1 counts fully
        #expect(untouched.remaining == 0)
    }
}
