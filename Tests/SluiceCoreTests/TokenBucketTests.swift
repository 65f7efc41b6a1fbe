import SluiceCore
import Testing

struct TokenBucketTests {
    static let scripts: [BoundaryScript] = [
        BoundaryScript(name: "2 per 1s, burst 2 (T = 500ms)", algorithm: .tokenBucket, limit: 2, period: TestTime.second, steps: [
            ScriptStep(outcome: .allowed, remaining: 1, resetAfter: 500_000_000),
            ScriptStep(outcome: .allowed, remaining: 0, resetAfter: 1_000_000_000),
            ScriptStep(outcome: .denied, remaining: 0, resetAfter: 1_000_000_000, retryAfter: 500_000_000),
            ScriptStep(advance: 499_999_999, outcome: .denied, remaining: 0, resetAfter: 500_000_001, retryAfter: 1),
            // Exactly at refill.
            ScriptStep(advance: 1, outcome: .allowed, remaining: 0, resetAfter: 1_000_000_000),
            ScriptStep(cost: 3, outcome: .exceedsCapacity, remaining: 0, resetAfter: 1_000_000_000, retryAfter: -1),
            // After exactly resetAfter the whole burst fits (peeks consume nothing).
            ScriptStep(advance: 1_000_000_000, cost: 2, consume: false, outcome: .allowed, remaining: 0, resetAfter: 1_000_000_000),
            ScriptStep(consume: false, outcome: .allowed, remaining: 1, resetAfter: 500_000_000),
            ScriptStep(cost: 2, outcome: .allowed, remaining: 0, resetAfter: 1_000_000_000),
            ScriptStep(advance: 1_000_000_000, consume: false, outcome: .allowed, remaining: 1, resetAfter: 500_000_000),
            // A long idle does not overfill the bucket.
            ScriptStep(advance: 10_000_000_000, cost: 2, outcome: .allowed, remaining: 0, resetAfter: 1_000_000_000),
            ScriptStep(outcome: .denied, remaining: 0, resetAfter: 1_000_000_000, retryAfter: 500_000_000),
            // Half a token is not a token.
            ScriptStep(advance: 250_000_000, outcome: .denied, remaining: 0, resetAfter: 750_000_000, retryAfter: 250_000_000),
            ScriptStep(advance: 500_000_000, outcome: .allowed, remaining: 0, resetAfter: 750_000_000),
            ScriptStep(advance: 250_000_000, outcome: .allowed, remaining: 0, resetAfter: 1_000_000_000),
        ]),
        BoundaryScript(name: "3 per 1s, burst 1 (T = 333,333,333⅓ ns)", algorithm: .tokenBucket, limit: 3, period: TestTime.second, burst: 1, steps: [
            ScriptStep(outcome: .allowed, remaining: 0, resetAfter: 333_333_334),
            ScriptStep(outcome: .denied, remaining: 0, resetAfter: 333_333_334, retryAfter: 333_333_334),
            ScriptStep(advance: 333_333_333, outcome: .denied, remaining: 0, resetAfter: 1, retryAfter: 1),
            ScriptStep(advance: 1, outcome: .allowed, remaining: 0, resetAfter: 333_333_334),
            ScriptStep(cost: 2, outcome: .exceedsCapacity, remaining: 0, resetAfter: 333_333_334, retryAfter: -1),
            ScriptStep(outcome: .denied, remaining: 0, resetAfter: 333_333_334, retryAfter: 333_333_334),
        ]),
        BoundaryScript(name: "3 per 1s, burst 3: retryAfter alternates without drift", algorithm: .tokenBucket, limit: 3, period: TestTime.second, steps: [
            ScriptStep(cost: 3, outcome: .allowed, remaining: 0, resetAfter: 1_000_000_000),
            ScriptStep(outcome: .denied, remaining: 0, resetAfter: 1_000_000_000, retryAfter: 333_333_334),
            ScriptStep(advance: 333_333_334, outcome: .allowed, remaining: 0, resetAfter: 1_000_000_000),
            ScriptStep(outcome: .denied, remaining: 0, resetAfter: 1_000_000_000, retryAfter: 333_333_333),
            ScriptStep(advance: 333_333_333, outcome: .allowed, remaining: 0, resetAfter: 1_000_000_000),
            ScriptStep(outcome: .denied, remaining: 0, resetAfter: 1_000_000_000, retryAfter: 333_333_333),
            // Exactly at refill: the third token's arrival lands on a whole nanosecond.
            ScriptStep(advance: 333_333_333, outcome: .allowed, remaining: 0, resetAfter: 1_000_000_000),
            ScriptStep(advance: 1_000_000_000, cost: 3, consume: false, outcome: .allowed, remaining: 0, resetAfter: 1_000_000_000),
            ScriptStep(consume: false, outcome: .allowed, remaining: 2, resetAfter: 333_333_334),
            ScriptStep(cost: 3, outcome: .allowed, remaining: 0, resetAfter: 1_000_000_000),
            // Two tokens take ceil(2T); one nanosecond earlier there are 1.99… tokens: remaining 1, cost 2 denied.
            ScriptStep(cost: 2, outcome: .denied, remaining: 0, resetAfter: 1_000_000_000, retryAfter: 666_666_667),
            ScriptStep(advance: 666_666_666, cost: 2, outcome: .denied, remaining: 1, resetAfter: 333_333_334, retryAfter: 1),
            ScriptStep(advance: 1, cost: 2, outcome: .allowed, remaining: 0, resetAfter: 1_000_000_000),
        ]),
        BoundaryScript(name: "2 per 1s, burst 5: burst above the rate", algorithm: .tokenBucket, limit: 2, period: TestTime.second, burst: 5, steps: [
            ScriptStep(cost: 6, outcome: .exceedsCapacity, remaining: 5, resetAfter: 0, retryAfter: -1),
            ScriptStep(cost: 5, outcome: .allowed, remaining: 0, resetAfter: 2_500_000_000),
            ScriptStep(cost: 5, outcome: .denied, remaining: 0, resetAfter: 2_500_000_000, retryAfter: 2_500_000_000),
            ScriptStep(advance: 1_250_000_000, cost: 5, outcome: .denied, remaining: 2, resetAfter: 1_250_000_000, retryAfter: 1_250_000_000),
            ScriptStep(cost: 2, outcome: .allowed, remaining: 0, resetAfter: 2_250_000_000),
        ]),
    ]

    @Test(arguments: BucketDriver.Path.allCases, scripts)
    func scriptedBoundaries(path: BucketDriver.Path, script: BoundaryScript) throws {
        for mismatch in try script.run(path: path) {
            Issue.record("step \(mismatch.step): expected \(mismatch.expected), got \(mismatch.actual)")
        }
    }

    static let limits: [LimitCase] = [
        LimitCase(algorithm: .tokenBucket, limit: 1, period: TestTime.second),
        LimitCase(algorithm: .tokenBucket, limit: 2, period: TestTime.second, burst: 2),
        LimitCase(algorithm: .tokenBucket, limit: 3, period: TestTime.second, burst: 1, startOffset: 7),
        LimitCase(algorithm: .tokenBucket, limit: 3, period: TestTime.second, burst: 5),
        LimitCase(algorithm: .tokenBucket, limit: 10, period: TestTime.minute, burst: 25),
        LimitCase(algorithm: .tokenBucket, limit: 7, period: 3 * TestTime.millisecond, burst: 7),
        LimitCase(algorithm: .tokenBucket, limit: 1_000, period: TestTime.second, burst: 1),
        LimitCase(algorithm: .tokenBucket, limit: RateLimit.maximumLimit, period: TestTime.millisecond, burst: RateLimit.maximumLimit),
        LimitCase(algorithm: .tokenBucket, limit: 4_294_967_291, period: TestTime.day, burst: 1),
        LimitCase(algorithm: .tokenBucket, limit: 1, period: 366 * TestTime.day, burst: 9),
    ]

    @Test(arguments: BucketDriver.Path.allCases, limits)
    func genericBoundaries(path: BucketDriver.Path, limitCase: LimitCase) throws {
        try BoundaryChecks.run(limitCase, path: path)
    }

    /// Remaining counts whole tokens: with 3 per second and a burst of 3, after draining, half a second
    /// refills 1.5 tokens.
    @Test(arguments: BucketDriver.Path.allCases, [
        (0, 0), (333_333_333, 0), (333_333_334, 1), (500_000_000, 1), (666_666_666, 1), (666_666_667, 2),
        (999_999_999, 2), (1_000_000_000, 3), (50_000_000_000, 3),
    ] as [(Int64, Int64)])
    func remainingIsWholeTokens(path: BucketDriver.Path, wait: (Int64, Int64)) throws {
        let driver = BucketDriver(try RateLimit(algorithm: .tokenBucket, limit: 3, periodNanoseconds: TestTime.second), path: path)
        #expect(driver.decide(cost: 3).outcome == .allowed)
        driver.advance(wait.0)
        // A peek of 1 reports remaining after taking one, so add it back.
        let peek = driver.decide(cost: 1, consume: false)
        #expect((peek.outcome == .allowed ? peek.remaining + 1 : peek.remaining) == wait.1)
        let exceeding = driver.decide(cost: 4)
        #expect(exceeding.remaining == wait.1)
    }

    /// A peek (consume: false) answers exactly what a real request would, but changes nothing.
    @Test(arguments: BucketDriver.Path.allCases)
    func peekDoesNotConsume(path: BucketDriver.Path) throws {
        let driver = BucketDriver(try RateLimit(algorithm: .tokenBucket, limit: 5, periodNanoseconds: TestTime.second, burst: 5), path: path)
        for _ in 0..<20 {
            let peek = driver.decide(cost: 5, consume: false)
            #expect(peek.outcome == .allowed)
            #expect(peek.remaining == 0)
        }
        let real = driver.decide(cost: 5)
        #expect(real == driver.limiter.decide(Check(rateLimit: driver.rateLimit, key: BucketKey(seed: 9, key: "other"), cost: 5), at: driver.clock.now(), consume: false))
        #expect(driver.decide(cost: 1, consume: false).outcome == .denied)
    }
}
