import Dispatch
import SluiceCore
import Synchronization
import Testing

/// A counter shared by worker threads.
final class SharedCounter: Sendable {
    private let value = Atomic<Int>(0)
    func add(_ amount: Int) { value.add(amount, ordering: .relaxed) }
    var total: Int { value.load(ordering: .relaxed) }
}

/// Several threads hammering shared buckets: the lock-free store must neither lose nor invent budget.
struct ConcurrencyTests {
    static let threads = 4

    @Test(arguments: Algorithm.allCases)
    func sharedKeysAdmitExactlyTheLimit(algorithm: Algorithm) throws {
        let limit: Int64 = 1_000
        let rateLimit = try RateLimit(algorithm: algorithm, limit: limit, periodNanoseconds: TestTime.hour)
        let limiter = RateLimiter(store: BucketStore(maximumKeys: 1_024, shardCount: 4))
        let now = Timestamp(nanoseconds: TestTime.start + 17)
        let keys = (0..<4).map { BucketKey(seed: 21, key: "shared-\($0)") }
        let admitted = (0..<keys.count).map { _ in SharedCounter() }
        DispatchQueue.concurrentPerform(iterations: Self.threads) { worker in
            for attempt in 0..<6_000 {
                let index = (attempt + worker) % keys.count
                let decision = limiter.decide(Check(rateLimit: rateLimit, key: keys[index]), at: now)
                if decision.outcome == .allowed { admitted[index].add(1) }
                if decision.remaining < 0 { admitted[index].add(1_000_000) }  // never negative
            }
        }
        for (index, key) in keys.enumerated() {
            #expect(admitted[index].total == Int(limit))
            #expect(limiter.decide(Check(rateLimit: rateLimit, key: key), at: now, consume: false).outcome == .denied)
        }
    }

    /// Many fresh keys raced from their very first request: the insert path must not admit twice.
    @Test(arguments: Algorithm.allCases)
    func racingFirstRequestsOnFreshKeys(algorithm: Algorithm) throws {
        let limit: Int64 = 3
        let rateLimit = try RateLimit(algorithm: algorithm, limit: limit, periodNanoseconds: TestTime.hour)
        let limiter = RateLimiter(store: BucketStore(maximumKeys: 4_096, shardCount: 8))
        let now = Timestamp(nanoseconds: TestTime.start)
        let rounds = 300
        let admitted = (0..<rounds).map { _ in SharedCounter() }
        DispatchQueue.concurrentPerform(iterations: Self.threads) { _ in
            for round in 0..<rounds {
                let key = BucketKey(seed: 22, key: "fresh-\(round)")
                for _ in 0..<4 where limiter.decide(Check(rateLimit: rateLimit, key: key), at: now).outcome == .allowed {
                    admitted[round].add(1)
                }
            }
        }
        #expect(admitted.allSatisfy { $0.total == Int(limit) })
        #expect(limiter.store.keyCount == rounds)
    }

    /// No aligned window admits more than `limit` while the clock moves under the threads (a decision
    /// timed just before an edge must not rewind a bucket a later decision already moved on); a fixed
    /// window admits exactly `limit` in each.
    @Test(arguments: [Algorithm.fixedWindow, .slidingWindow])
    func windowsAdmitAtMostLimitWhileTimeMoves(algorithm: Algorithm) throws {
        let limit: Int64 = 50
        let period = TestTime.second
        let rateLimit = try RateLimit(algorithm: algorithm, limit: limit, periodNanoseconds: period)
        let limiter = RateLimiter(store: BucketStore(maximumKeys: 64, shardCount: 2))
        let clock = ManualClock()
        let key = BucketKey(seed: 23, key: "moving")
        let windows = 100
        let perWindow = (0..<windows).map { _ in SharedCounter() }
        DispatchQueue.concurrentPerform(iterations: Self.threads) { worker in
            for attempt in 0..<40_000 {
                // Worker 0 moves the clock; the others often read it just before it moves, so their
                // decisions race with ones from the next window.
                if worker == 0, attempt % 400 == 399 { clock.advance(nanoseconds: period) }
                let now = clock.now()
                let decision = limiter.decide(Check(rateLimit: rateLimit, key: key), at: now)
                guard decision.outcome == .allowed else { continue }
                // Attribute the admission to the window the core charged (a request timed just before an
                // edge is charged to the later window): the charged window ends at now + resetAfter, and
                // a sliding window's counts slide out one period after that.
                let end = now.nanoseconds + decision.resetAfterNanoseconds - (algorithm == .slidingWindow ? period : 0)
                let window = Int((end - TestTime.start) / period) - 1
                if window < windows { perWindow[window].add(1) }
            }
        }
        let totals = perWindow.map(\.total)
        #expect(totals.allSatisfy { $0 <= Int(limit) }, "over the limit: \(totals.enumerated().filter { $0.element > Int(limit) })")
        if algorithm == .fixedWindow {
            // Every window sees far more attempts than the limit, so every window fills.
            #expect(totals.allSatisfy { $0 == Int(limit) })
        } else {
            #expect(totals.contains(Int(limit)))
        }
    }

    /// Two buckets of capacity 1 and many requests needing both, in both orders: at most one request
    /// passes, and afterwards the buckets agree (both spent if one passed, both full otherwise).
    @Test(arguments: Algorithm.allCases)
    func allOrNothingUnderContention(algorithm: Algorithm) throws {
        let rateLimit = try RateLimit(algorithm: algorithm, limit: 1, periodNanoseconds: TestTime.hour)
        let limiter = RateLimiter(store: BucketStore(maximumKeys: 4_096, shardCount: 4))
        let now = Timestamp(nanoseconds: TestTime.start)
        let rounds = 200
        let passed = (0..<rounds).map { _ in SharedCounter() }
        DispatchQueue.concurrentPerform(iterations: Self.threads) { worker in
            for round in 0..<rounds {
                let first = Check(rateLimit: rateLimit, key: BucketKey(seed: 24, key: "left-\(round)"))
                let second = Check(rateLimit: rateLimit, key: BucketKey(seed: 24, key: "right-\(round)"))
                // Odd rounds: everyone asks in the same order, so exactly one must pass.
                let reversed = round % 2 == 0 && worker % 2 == 1
                for _ in 0..<25 where limiter.decide(reversed ? [second, first] : [first, second], at: now).isAllowed {
                    passed[round].add(1)
                }
            }
        }
        for round in 0..<rounds {
            let first = Check(rateLimit: rateLimit, key: BucketKey(seed: 24, key: "left-\(round)"))
            let second = Check(rateLimit: rateLimit, key: BucketKey(seed: 24, key: "right-\(round)"))
            let passes = passed[round].total
            #expect(passes <= 1, "round \(round): \(passes) requests passed")
            if round % 2 == 1 { #expect(passes == 1, "round \(round)") }
            let firstFull = limiter.decide(first, at: now, consume: false).outcome == .allowed
            let secondFull = limiter.decide(second, at: now, consume: false).outcome == .allowed
            #expect(firstFull == (passes == 0) && secondFull == (passes == 0), "round \(round): buckets disagree")
        }
    }

    /// Distinct keys from every thread into a small store: the bound holds throughout and every insert
    /// is accounted for as a live key or an eviction.
    @Test func evictionUnderContentionKeepsTheBound() throws {
        let maximumKeys = 48
        let store = BucketStore(maximumKeys: maximumKeys, shardCount: 4, probeWindow: 8)
        let limiter = RateLimiter(store: store)
        let rateLimit = try RateLimit(algorithm: .tokenBucket, limit: 2, periodNanoseconds: TestTime.second)
        let clock = ManualClock()
        let perThread = 10_000
        let overBound = SharedCounter()
        let denied = SharedCounter()
        DispatchQueue.concurrentPerform(iterations: Self.threads) { worker in
            for index in 0..<perThread {
                if worker == 0, index % 2_000 == 0 { clock.advance(nanoseconds: TestTime.second) }
                // A few keys repeat, so some requests find their key (or find it evicted).
                let name = index % 10 == 0 ? "hot-\(index % 30)" : "w\(worker)-\(index)"
                if limiter.decide(Check(rateLimit: rateLimit, key: BucketKey(seed: 25, key: name)), at: clock.now()).outcome != .allowed {
                    denied.add(1)
                }
                if store.keyCount > maximumKeys { overBound.add(1) }
            }
        }
        #expect(overBound.total == 0)
        #expect(store.keyCount <= maximumKeys)
        #expect(store.keyCount == maximumKeys)
        let inserts = store.keyCount + store.pressureEvictions + store.idleEvictions
        #expect(inserts <= Self.threads * perThread - denied.total)
        #expect(store.pressureEvictions > 0)
    }
}
