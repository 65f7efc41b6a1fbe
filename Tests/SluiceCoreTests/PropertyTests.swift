import SluiceCore
import SluiceWorkload
import Testing

/// Long seeded random sequences against the plain reference models in `Support/ReferenceModel.swift`,
/// through both `RateLimit.evaluate` and `RateLimiter` + `BucketStore`, comparing every answer in full.
struct PropertyTests {
    static let operationsPerAlgorithm = 120_000

    static func configurations(for algorithm: Algorithm) -> [LimitCase] {
        switch algorithm {
        case .tokenBucket:
            return [
                LimitCase(algorithm: .tokenBucket, limit: 1, period: TestTime.second),
                LimitCase(algorithm: .tokenBucket, limit: 2, period: TestTime.second, burst: 2),
                LimitCase(algorithm: .tokenBucket, limit: 3, period: TestTime.second, burst: 1),
                LimitCase(algorithm: .tokenBucket, limit: 3, period: TestTime.second, burst: 5),
                LimitCase(algorithm: .tokenBucket, limit: 7, period: 3 * TestTime.millisecond, burst: 7),
                LimitCase(algorithm: .tokenBucket, limit: 10, period: TestTime.minute, burst: 25),
                LimitCase(algorithm: .tokenBucket, limit: 13, period: 999_999_937, burst: 20),
                LimitCase(algorithm: .tokenBucket, limit: 60, period: TestTime.hour, burst: 1),
                LimitCase(algorithm: .tokenBucket, limit: 1_000, period: TestTime.second, burst: 1_000),
                LimitCase(algorithm: .tokenBucket, limit: RateLimit.maximumLimit, period: TestTime.millisecond, burst: RateLimit.maximumLimit),
                LimitCase(algorithm: .tokenBucket, limit: 4_294_967_291, period: TestTime.day, burst: 3),
                LimitCase(algorithm: .tokenBucket, limit: 5, period: TestTime.day, burst: 1_000),
            ]
        case .fixedWindow:
            return [
                LimitCase(algorithm: .fixedWindow, limit: 1, period: TestTime.millisecond),
                LimitCase(algorithm: .fixedWindow, limit: 3, period: TestTime.minute),
                LimitCase(algorithm: .fixedWindow, limit: 5, period: 7 * TestTime.millisecond),
                LimitCase(algorithm: .fixedWindow, limit: 1_000, period: TestTime.hour),
                LimitCase(algorithm: .fixedWindow, limit: 2, period: 999_999_937),
                LimitCase(algorithm: .fixedWindow, limit: 10, period: TestTime.day),
                LimitCase(algorithm: .fixedWindow, limit: RateLimit.maximumLimit, period: TestTime.second),
            ]
        case .slidingWindow:
            return [
                LimitCase(algorithm: .slidingWindow, limit: 1, period: TestTime.millisecond),
                LimitCase(algorithm: .slidingWindow, limit: 4, period: TestTime.second),
                LimitCase(algorithm: .slidingWindow, limit: 3, period: TestTime.second),
                LimitCase(algorithm: .slidingWindow, limit: 7, period: 13 * TestTime.millisecond),
                LimitCase(algorithm: .slidingWindow, limit: 100, period: TestTime.hour),
                LimitCase(algorithm: .slidingWindow, limit: RateLimit.maximumSlidingWindowLimit, period: TestTime.day),
                LimitCase(algorithm: .slidingWindow, limit: 5, period: 999_999_937),
                LimitCase(algorithm: .slidingWindow, limit: 2, period: TestTime.minute),
            ]
        }
    }

    static func model(for rateLimit: RateLimit) -> any ReferenceModel {
        switch rateLimit.algorithm {
        case .tokenBucket: TokenBucketModel(rateLimit)
        case .fixedWindow: FixedWindowModel(rateLimit)
        case .slidingWindow: SlidingWindowModel(rateLimit)
        }
    }

    @Test(arguments: Algorithm.allCases)
    func algorithmMatchesReferenceModel(algorithm: Algorithm) throws {
        var generator = SplitMix64(seed: 0x5_1_1CE_0000 + UInt64(Algorithm.allCases.firstIndex(of: algorithm) ?? 0))
        let configurations = Self.configurations(for: algorithm)
        let operations = (Self.operationsPerAlgorithm + configurations.count - 1) / configurations.count
        var total = 0
        for configuration in configurations {
            total += try Self.run(configuration, operations: operations, generator: &generator)
        }
        #expect(total >= 100_000)
    }

    /// Runs one limit for `operations` random steps over three keys; returns the steps checked.
    static func run(_ configuration: LimitCase, operations: Int, generator: inout SplitMix64) throws -> Int {
        let rateLimit = try configuration.rateLimit()
        let capacity = rateLimit.capacity
        let period = rateLimit.periodNanoseconds
        let tokenTime = max(1, period / rateLimit.limit)
        let clock = ManualClock(start: Timestamp(nanoseconds: TestTime.start + generator.next(in: 0...(3 * period))))
        let limiter = RateLimiter(store: BucketStore(maximumKeys: 1_024, shardCount: 1))
        let keys = (0..<3).map { BucketKey(seed: 31, key: "property-\($0)") }
        var models = keys.map { _ in Self.model(for: rateLimit) }
        var states = keys.map { _ in BucketState.full }
        var last = ExpectedDecision(outcome: .allowed, remaining: 0, resetAfterNanoseconds: 0, retryAfterNanoseconds: 0)
        var outcomes: [Decision.Outcome: Int] = [:]

        for step in 0..<operations {
            let wait: Int64
            switch generator.next(in: 0...99) {
            case 0..<25: wait = 0
            case 25..<55: wait = generator.next(in: 0...(2 * tokenTime))
            case 55..<68: wait = generator.next(in: 0...period)
            case 68..<76: wait = max(0, last.retryAfterNanoseconds - generator.next(in: 0...1))  // right at, or 1 ns before, retryAfter
            case 76..<84: wait = max(0, last.resetAfterNanoseconds - generator.next(in: 0...1))  // right at, or 1 ns before, resetAfter
            case 84..<92: wait = generator.next(in: 1...3)
            case 92..<97: wait = period - generator.next(in: 0...1)
            default: wait = generator.next(in: period...(6 * period))  // jumps over several periods
            }
            clock.advance(nanoseconds: wait)

            let cost: Int64
            switch generator.next(in: 0...99) {
            case 0..<55: cost = 1
            case 55..<78: cost = generator.next(in: 1...min(capacity, 4))
            case 78..<90: cost = generator.next(in: 1...capacity)
            case 90..<94: cost = capacity
            default: cost = capacity + generator.next(in: 1...3)
            }
            let consume = !generator.chance(15)
            let index = generator.chance(70) ? 0 : Int(generator.next(in: 1...2))
            let now = clock.now()

            let expected = models[index].decide(now: now.nanoseconds, cost: cost, consume: consume)
            let decision = limiter.decide(Check(rateLimit: rateLimit, key: keys[index], cost: cost), at: now, consume: consume)
            let evaluation = rateLimit.evaluate(states[index], now: now.nanoseconds, cost: cost)
            if consume, evaluation.decision.outcome == .allowed { states[index] = evaluation.newState }

            let context = "\(configuration) step \(step) key \(index) at +\(now.nanoseconds - TestTime.start) cost \(cost) consume \(consume)"
            guard ExpectedDecision(decision) == expected, ExpectedDecision(evaluation.decision) == expected,
                decision.limit == capacity, decision.remaining >= 0
            else {
                Issue.record("\(context): expected \(expected); limiter \(ExpectedDecision(decision)); evaluate \(ExpectedDecision(evaluation.decision))")
                return step
            }
            outcomes[expected.outcome, default: 0] += 1
            last = expected
        }
        // The walk must have visited every kind of answer, or it proves little.
        #expect(outcomes[.allowed, default: 0] > operations / 20, "\(configuration): \(outcomes)")
        #expect(outcomes[.denied, default: 0] > operations / 50, "\(configuration): \(outcomes)")
        #expect(outcomes[.exceedsCapacity, default: 0] > 0, "\(configuration): \(outcomes)")
        #expect(limiter.store.pressureEvictions == 0)
        return operations
    }

    /// A rate whose token time is not a whole number of nanoseconds must not drift: after any number of
    /// decisions the admitted count is exactly `limit × elapsed / period + burst`.
    ///
    /// The bursts are at least 2: with a burst of 1 the bucket is full the moment a token arrives, so
    /// arriving at the rounded-up retryAfter rightly discards the sub-nanosecond refill in between.
    @Test(arguments: [
        (3, TestTime.second, 5, 1_000_000),
        (7, TestTime.minute, 2, 200_000),
        (1_000_003, TestTime.second, 10, 200_000),
        (4_294_967_291, TestTime.day, 3, 200_000),
    ] as [(Int64, Int64, Int64, Int)])
    func tokenBucketDoesNotDrift(limit: Int64, period: Int64, burst: Int64, decisions: Int) throws {
        let rateLimit = try RateLimit(algorithm: .tokenBucket, limit: limit, periodNanoseconds: period, burst: burst)
        let start = TestTime.start
        var state = BucketState.full
        var now = start
        var admitted: Int64 = 0
        var made = 0
        // Jump exactly by each denial's retryAfter: the k-th refilled token must arrive at ceil(k × T).
        while made < decisions {
            let evaluation = rateLimit.evaluate(state, now: now, cost: 1)
            made += 1
            if evaluation.decision.outcome == .allowed {
                state = evaluation.newState
                admitted += 1
                let refilled = admitted - burst
                if refilled > 0 {
                    let due = start + Int64((Int128(refilled) * Int128(period) + Int128(limit) - 1) / Int128(limit))
                    guard now == due else {
                        Issue.record("token \(refilled) admitted at +\(now - start) ns, due at +\(due - start) ns")
                        return
                    }
                }
            } else {
                try #require(evaluation.decision.retryAfterNanoseconds > 0)
                now += evaluation.decision.retryAfterNanoseconds
            }
        }
        while rateLimit.evaluate(state, now: now, cost: 1).decision.outcome == .allowed {
            state = rateLimit.evaluate(state, now: now, cost: 1).newState
            admitted += 1
        }
        let elapsed = Int128(now - start)
        #expect(Int128(admitted) == Int128(limit) * elapsed / Int128(period) + Int128(burst))
        #expect(made >= decisions)
    }

    /// The same through `RateLimiter` and the store, sampling at irregular instants and draining each time.
    @Test func tokenBucketDoesNotDriftThroughTheLimiter() throws {
        let rateLimit = try RateLimit(algorithm: .tokenBucket, limit: 3, periodNanoseconds: TestTime.second, burst: 5)
        let limiter = RateLimiter(store: BucketStore(maximumKeys: 16, shardCount: 1))
        let clock = ManualClock()
        let check = Check(rateLimit: rateLimit, key: BucketKey(seed: 41, key: "drift"))
        var generator = SplitMix64(seed: 3)
        var admitted: Int64 = 0
        var decisions = 0
        let start = clock.now().nanoseconds
        while decisions < 200_000 {
            while true {
                decisions += 1
                guard limiter.decide(check, at: clock.now()).outcome == .allowed else { break }
                admitted += 1
            }
            let elapsed = Int128(clock.now().nanoseconds - start)
            if Int128(admitted) != 3 * elapsed / Int128(TestTime.second) + 5 {
                Issue.record("after \(decisions) decisions over \(elapsed) ns: admitted \(admitted)")
                return
            }
            // At most 700 ms between samples: less than the 5-token burst (1.67 s), so no refill is lost.
            clock.advance(nanoseconds: generator.next(in: 1...700_000_000))
        }
    }
}
