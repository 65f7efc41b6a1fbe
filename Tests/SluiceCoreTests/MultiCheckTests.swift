import SluiceCore
import SluiceWorkload
import Testing

struct MultiCheckTests {
    let now = Timestamp(nanoseconds: TestTime.start + 250_000_000)

    func rateLimit(_ algorithm: Algorithm, limit: Int64) throws -> RateLimit {
        try RateLimit(algorithm: algorithm, limit: limit, periodNanoseconds: TestTime.second)
    }

    /// Peeks the whole capacity: true when the bucket is untouched (full).
    func isFull(_ limiter: RateLimiter, _ check: Check) -> Bool {
        var whole = check
        whole.cost = check.rateLimit.capacity
        return limiter.decide(whole, at: now, consume: false).outcome == .allowed
    }

    @Test(arguments: Algorithm.allCases)
    func denialBySecondCheckLeavesFirstUntouched(algorithm: Algorithm) throws {
        let limiter = RateLimiter(store: BucketStore(maximumKeys: 100, shardCount: 1))
        let first = Check(rateLimit: try rateLimit(algorithm, limit: 5), policyIndex: 0, key: BucketKey(seed: 1, key: "a"))
        let second = Check(rateLimit: try rateLimit(algorithm, limit: 1), policyIndex: 1, key: BucketKey(seed: 1, key: "b"))
        #expect(limiter.decide(second, at: now).outcome == .allowed)
        for _ in 0..<10 {
            let multi = limiter.decide([first, second], at: now)
            #expect(!multi.isAllowed)
            #expect(multi.decidingIndex == 1)
            #expect(multi.decisions.count == 2)
            #expect(multi.decisions[1].outcome == .denied)
            #expect(multi.decisions[1].policyIndex == 1)
            // The first shows what it would have answered: nothing was consumed.
            #expect(multi.decisions[0].outcome == .allowed)
            #expect(multi.decisions[0].remaining == 4)
            #expect(multi.decisions[0].policyIndex == 0)
            #expect(isFull(limiter, first))
        }
    }

    @Test(arguments: Algorithm.allCases)
    func denialByLastOfThreeRefundsBothEarlierCharges(algorithm: Algorithm) throws {
        let limiter = RateLimiter(store: BucketStore(maximumKeys: 100, shardCount: 1))
        let checks = [
            Check(rateLimit: try rateLimit(algorithm, limit: 3), key: BucketKey(seed: 2, key: "x"), cost: 2),
            Check(rateLimit: try rateLimit(algorithm, limit: 7), key: BucketKey(seed: 2, key: "y"), cost: 7),
            Check(rateLimit: try rateLimit(algorithm, limit: 2), key: BucketKey(seed: 2, key: "z"), cost: 2),
        ]
        // Leave one unit in the third bucket, so its cost of 2 is denied.
        #expect(limiter.decide(Check(rateLimit: checks[2].rateLimit, key: checks[2].key, cost: 1), at: now).outcome == .allowed)
        let denied = limiter.decide(checks, at: now)
        #expect(!denied.isAllowed)
        #expect(denied.decidingIndex == 2)
        #expect(isFull(limiter, checks[0]))
        #expect(isFull(limiter, checks[1]))
        #expect(limiter.decide(Check(rateLimit: checks[2].rateLimit, key: checks[2].key), at: now, consume: false).remaining == 0)

        #expect(limiter.reset(checks[2].key))
        let allowed = limiter.decide(checks, at: now)
        #expect(allowed.isAllowed)
        #expect(allowed.decisions.map(\.remaining) == [1, 0, 0])
        for check in checks { #expect(!isFull(limiter, check)) }
    }

    @Test("costs whose sum overflows on one bucket are refused, not a crash")
    func overflowingCostsOnOneBucket() throws {
        let limiter = RateLimiter(store: BucketStore(maximumKeys: 100, shardCount: 1))
        let limit = try rateLimit(.fixedWindow, limit: 10)
        let key = BucketKey(seed: 1, key: "k")
        let checks = [6, 6, Int64.max].map { Check(rateLimit: limit, policyIndex: 0, key: key, cost: $0) }
        let multi = limiter.decide(checks, at: now)
        #expect(!multi.isAllowed)
        #expect(multi.decisions[multi.decidingIndex].outcome == .exceedsCapacity)
        #expect(limiter.decide(Check(rateLimit: limit, key: key, cost: 10), at: now, consume: false).outcome == .allowed, "nothing was taken")
    }

    @Test func denialByFirstCheckStillAnswersForEveryCheck() throws {
        let limiter = RateLimiter(store: BucketStore(maximumKeys: 100, shardCount: 1))
        let checks = [
            Check(rateLimit: try rateLimit(.tokenBucket, limit: 1), key: BucketKey(seed: 3, key: "a"), cost: 2),
            Check(rateLimit: try rateLimit(.fixedWindow, limit: 4), key: BucketKey(seed: 3, key: "b")),
            Check(rateLimit: try rateLimit(.slidingWindow, limit: 4), key: BucketKey(seed: 3, key: "c"), cost: 4),
        ]
        let multi = limiter.decide(checks, at: now)
        #expect(!multi.isAllowed)
        #expect(multi.decidingIndex == 0)
        #expect(multi.decisions.map(\.outcome) == [.exceedsCapacity, .allowed, .allowed])
        #expect(multi.decisions.map(\.remaining) == [1, 3, 0])
        #expect(limiter.store.keyCount == 0)
    }

    @Test func allowedRequestReportsTheMostRestrictiveCheck() throws {
        let limiter = RateLimiter(store: BucketStore(maximumKeys: 100, shardCount: 1))
        let checks = [
            Check(rateLimit: try rateLimit(.fixedWindow, limit: 10), key: BucketKey(seed: 4, key: "a")),
            Check(rateLimit: try rateLimit(.tokenBucket, limit: 3), key: BucketKey(seed: 4, key: "b")),
            Check(rateLimit: try RateLimit(algorithm: .tokenBucket, limit: 3, periodNanoseconds: TestTime.minute), key: BucketKey(seed: 4, key: "c")),
        ]
        let multi = limiter.decide(checks, at: now)
        #expect(multi.isAllowed)
        #expect(multi.decisions.map(\.remaining) == [9, 2, 2])
        // A tie on remaining goes to the longer reset: 20 s for one token of 3 per minute.
        #expect(multi.decidingIndex == 2)
        #expect(multi.decisions[2].resetAfterNanoseconds == 20 * TestTime.second)
    }

    @Test func sameBucketTwiceInOneRequest() throws {
        let limiter = RateLimiter(store: BucketStore(maximumKeys: 100, shardCount: 1))
        let key = BucketKey(seed: 5, key: "twice")
        let one = Check(rateLimit: try rateLimit(.fixedWindow, limit: 1), key: key)
        let denied = limiter.decide([one, one], at: now)
        #expect(!denied.isAllowed)
        #expect(denied.decidingIndex == 1)
        #expect(isFull(limiter, one))
        let two = Check(rateLimit: try rateLimit(.fixedWindow, limit: 2), key: BucketKey(seed: 5, key: "twice, two"))
        let allowed = limiter.decide([two, two], at: now)
        #expect(allowed.isAllowed)
        #expect(allowed.decisions.map(\.remaining) == [1, 0])
    }

    @Test(arguments: Algorithm.allCases)
    func shadowPoliciesNeverBlock(algorithm: Algorithm) throws {
        let limiter = RateLimiter(store: BucketStore(maximumKeys: 100, shardCount: 1))
        let shadow = Check(rateLimit: try rateLimit(algorithm, limit: 2), mode: .shadow, policyIndex: 7, key: BucketKey(seed: 6, key: "s"))
        let enforced = Check(rateLimit: try rateLimit(algorithm, limit: 100), key: BucketKey(seed: 6, key: "e"))
        for attempt in 0..<10 {
            let single = limiter.decide(shadow, at: now, consume: false)
            let multi = limiter.decide([shadow, enforced], at: now)
            #expect(multi.isAllowed)
            #expect(multi.decisions[1].outcome == .allowed)
            #expect(multi.decisions[1].remaining == 100 - Int64(attempt) - 1)
            let verdict = multi.decisions[0]
            #expect(verdict.policyIndex == 7)
            #expect(verdict.isAllowed)
            #expect(single.isAllowed)
            if attempt < 2 {
                #expect(verdict.outcome == .allowed)
                #expect(!verdict.isShadowed)
            } else {
                // Decided and counted as a denial, but let through.
                #expect(verdict.outcome == .denied)
                #expect(verdict.isShadowed)
                #expect(verdict.retryAfterNanoseconds > 0)
                #expect(single.isShadowed)
            }
        }
        let impossible = limiter.decide(Check(rateLimit: shadow.rateLimit, mode: .shadow, key: shadow.key, cost: 3), at: now)
        #expect(impossible.outcome == .exceedsCapacity)
        #expect(impossible.isShadowed)
        #expect(impossible.isAllowed)
        #expect(impossible.retryAfterNanoseconds == -1)
    }

    @Test func shadowChargeIsRefundedWhenAnEnforcedCheckDenies() throws {
        let limiter = RateLimiter(store: BucketStore(maximumKeys: 100, shardCount: 1))
        let shadow = Check(rateLimit: try rateLimit(.tokenBucket, limit: 3), mode: .shadow, key: BucketKey(seed: 7, key: "s"))
        let enforced = Check(rateLimit: try rateLimit(.fixedWindow, limit: 1), key: BucketKey(seed: 7, key: "e"))
        #expect(limiter.decide(enforced, at: now).outcome == .allowed)
        let multi = limiter.decide([shadow, enforced], at: now)
        #expect(!multi.isAllowed)
        #expect(multi.decidingIndex == 1)
        #expect(isFull(limiter, shadow))
    }

    @Test func peekingSeveralChecksConsumesNothing() throws {
        let limiter = RateLimiter(store: BucketStore(maximumKeys: 100, shardCount: 1))
        var checks: [Check] = []
        for algorithm in Algorithm.allCases {
            checks.append(Check(rateLimit: try rateLimit(algorithm, limit: 2), key: BucketKey(seed: 8, key: algorithm.rawValue), cost: 2))
        }
        for _ in 0..<5 {
            let multi = limiter.decide(checks, at: now, consume: false)
            #expect(multi.isAllowed)
            #expect(multi.decisions.allSatisfy { $0.outcome == .allowed && $0.remaining == 0 })
        }
        #expect(limiter.store.keyCount == 0)
        #expect(limiter.decide(checks, at: now).isAllowed)
        #expect(!limiter.decide(checks, at: now, consume: false).isAllowed)
    }

    /// Random multi-check requests over a few buckets of every algorithm, against one reference model per
    /// bucket: a request passes iff every enforced check fits; only then does anything (shadow checks
    /// included) consume; a denied request leaves every bucket as it was.
    @Test func randomRequestsMatchTheModels() throws {
        var generator = SplitMix64(seed: 0xA11_0F_0_0E)
        let clock = ManualClock(start: Timestamp(nanoseconds: TestTime.start + 123_456_789))
        let limiter = RateLimiter(store: BucketStore(maximumKeys: 64, shardCount: 2))
        let period = 100 * TestTime.millisecond
        let rateLimits = [
            try RateLimit(algorithm: .tokenBucket, limit: 5, periodNanoseconds: period, burst: 3),
            try RateLimit(algorithm: .fixedWindow, limit: 4, periodNanoseconds: period),
            try RateLimit(algorithm: .slidingWindow, limit: 6, periodNanoseconds: period),
            try RateLimit(algorithm: .tokenBucket, limit: 3, periodNanoseconds: 7 * TestTime.millisecond),
        ]
        var models: [any ReferenceModel] = []
        var checks: [Check] = []
        for (index, rateLimit) in rateLimits.enumerated() {
            for mode in [Policy.Mode.enforce, .shadow] {
                checks.append(Check(rateLimit: rateLimit, mode: mode, policyIndex: Int32(checks.count), key: BucketKey(seed: 9, key: "\(index)-\(mode)")))
                switch rateLimit.algorithm {
                case .tokenBucket: models.append(TokenBucketModel(rateLimit))
                case .fixedWindow: models.append(FixedWindowModel(rateLimit))
                case .slidingWindow: models.append(SlidingWindowModel(rateLimit))
                }
            }
        }
        var allowedCount = 0
        for step in 0..<10_000 {
            clock.advance(nanoseconds: generator.chance(40) ? 0 : generator.next(in: 0...(period / 5)))
            let now = clock.now().nanoseconds
            var chosen = Array(checks.indices)
            chosen.shuffle(using: &generator)
            chosen = Array(chosen.prefix(Int(generator.next(in: 1...4))))
            var request = chosen.map { checks[$0] }
            for index in request.indices { request[index].cost = generator.next(in: 1...(request[index].rateLimit.capacity + 1)) }
            let consume = !generator.chance(10)

            var expected: [ExpectedDecision] = []
            var deniedAt: Int?
            for (position, check) in request.enumerated() {
                var model = models[chosen[position]]
                let answer = model.decide(now: now, cost: check.cost, consume: false)
                expected.append(answer)
                if deniedAt == nil, answer.outcome != .allowed, check.mode == .enforce { deniedAt = position }
            }
            if deniedAt == nil, consume {
                for (position, check) in request.enumerated() {
                    _ = models[chosen[position]].decide(now: now, cost: check.cost, consume: true)
                }
            }
            let multi = limiter.decide(request, at: clock.now(), consume: consume)
            #expect(multi.isAllowed == (deniedAt == nil), "step \(step)")
            #expect(multi.decisions.map(ExpectedDecision.init) == expected, "step \(step)")
            #expect(zip(multi.decisions, request).allSatisfy { $0.isShadowed == ($1.mode == .shadow && $0.outcome != .allowed) })
            if let deniedAt { #expect(multi.decidingIndex == deniedAt, "step \(step)") }
            if multi.isAllowed { allowedCount += 1 }
            if multi.decisions.map(ExpectedDecision.init) != expected { break }
        }
        #expect(allowedCount > 1_000)
        #expect(allowedCount < 9_000)
        #expect(limiter.store.pressureEvictions == 0)
    }
}
