import SluiceCore
import SluiceWorkload
import Testing

struct SlidingWindowTests {
    static let scripts: [BoundaryScript] = [
        BoundaryScript(name: "4 per 1s", algorithm: .slidingWindow, limit: 4, period: TestTime.second, steps: [
            ScriptStep(cost: 4, outcome: .allowed, remaining: 0, resetAfter: 2_000_000_000),
            // The own window is full: in the next one 4 × (1 − e) + 1 ≤ 4 needs e ≥ 250ms.
            ScriptStep(outcome: .denied, remaining: 0, resetAfter: 2_000_000_000, retryAfter: 1_250_000_000),
            // At the window edge the previous window still weighs 4.
            ScriptStep(advance: 1_000_000_000, outcome: .denied, remaining: 0, resetAfter: 1_000_000_000, retryAfter: 250_000_000),
            ScriptStep(advance: 249_999_999, outcome: .denied, remaining: 0, resetAfter: 750_000_001, retryAfter: 1),
            ScriptStep(advance: 1, outcome: .allowed, remaining: 0, resetAfter: 1_750_000_000),
            // Within the window: 4 × (0.75 − t) ≤ 2 needs t ≥ 250ms.
            ScriptStep(outcome: .denied, remaining: 0, resetAfter: 1_750_000_000, retryAfter: 250_000_000),
            ScriptStep(cost: 5, outcome: .exceedsCapacity, remaining: 0, resetAfter: 1_750_000_000, retryAfter: -1),
            // After exactly resetAfter both windows have slid out.
            ScriptStep(advance: 1_750_000_000, cost: 4, consume: false, outcome: .allowed, remaining: 0, resetAfter: 2_000_000_000),
            ScriptStep(consume: false, outcome: .allowed, remaining: 3, resetAfter: 2_000_000_000),
            ScriptStep(cost: 2, outcome: .allowed, remaining: 2, resetAfter: 2_000_000_000),
            // Halfway through the next window the previous 2 weigh 1.
            ScriptStep(advance: 1_500_000_000, consume: false, outcome: .allowed, remaining: 2, resetAfter: 1_500_000_000),
            ScriptStep(cost: 3, outcome: .allowed, remaining: 0, resetAfter: 1_500_000_000),
            // Own window at the limit: retry at the next edge, where 3 × 1 + 1 ≤ 4.
            ScriptStep(outcome: .denied, remaining: 0, resetAfter: 1_500_000_000, retryAfter: 500_000_000),
            ScriptStep(advance: 499_999_999, outcome: .denied, remaining: 0, resetAfter: 1_000_000_001, retryAfter: 1),
            ScriptStep(advance: 1, outcome: .allowed, remaining: 0, resetAfter: 2_000_000_000),
            ScriptStep(advance: 1_000_000_000, consume: false, outcome: .allowed, remaining: 2, resetAfter: 2_000_000_000),
            // Only the previous window counts: resetAfter is the end of this window.
            ScriptStep(cost: 5, outcome: .exceedsCapacity, remaining: 3, resetAfter: 1_000_000_000, retryAfter: -1),
        ]),
        BoundaryScript(name: "3 per 1s: weights that are not whole nanoseconds", algorithm: .slidingWindow, limit: 3, period: TestTime.second, steps: [
            ScriptStep(cost: 3, outcome: .allowed, remaining: 0, resetAfter: 2_000_000_000),
            ScriptStep(outcome: .denied, remaining: 0, resetAfter: 2_000_000_000, retryAfter: 1_333_333_334),
            ScriptStep(advance: 1_333_333_333, outcome: .denied, remaining: 0, resetAfter: 666_666_667, retryAfter: 1),
            ScriptStep(advance: 1, outcome: .allowed, remaining: 0, resetAfter: 1_666_666_666),
        ]),
    ]

    @Test(arguments: BucketDriver.Path.allCases, scripts)
    func scriptedBoundaries(path: BucketDriver.Path, script: BoundaryScript) throws {
        for mismatch in try script.run(path: path) {
            Issue.record("step \(mismatch.step): expected \(mismatch.expected), got \(mismatch.actual)")
        }
    }

    static let limits: [LimitCase] = [
        LimitCase(algorithm: .slidingWindow, limit: 1, period: TestTime.millisecond),
        LimitCase(algorithm: .slidingWindow, limit: 4, period: TestTime.second),
        LimitCase(algorithm: .slidingWindow, limit: 3, period: TestTime.second, startOffset: 1),
        LimitCase(algorithm: .slidingWindow, limit: 7, period: 13 * TestTime.millisecond, startOffset: 5_000_001),
        LimitCase(algorithm: .slidingWindow, limit: 100, period: TestTime.hour, startOffset: 30 * TestTime.minute),
        LimitCase(algorithm: .slidingWindow, limit: RateLimit.maximumSlidingWindowLimit, period: TestTime.day),
        LimitCase(algorithm: .slidingWindow, limit: 1, period: 366 * TestTime.day),
        LimitCase(algorithm: .slidingWindow, limit: 5, period: 999_999_937, startOffset: 999_999_936),
    ]

    @Test(arguments: BucketDriver.Path.allCases, limits)
    func genericBoundaries(path: BucketDriver.Path, limitCase: LimitCase) throws {
        try BoundaryChecks.run(limitCase, path: path)
    }

    /// The documented worst case of the approximation: a full window's traffic at its very end, then the
    /// next window admits in proportion to how far into it we are.
    @Test(arguments: BucketDriver.Path.allCases)
    func previousWindowDecaysLinearly(path: BucketDriver.Path) throws {
        let driver = BucketDriver(
            try RateLimit(algorithm: .slidingWindow, limit: 4, periodNanoseconds: TestTime.second), path: path,
            start: TestTime.start + TestTime.second - 1
        )
        #expect(driver.decide(cost: 4).outcome == .allowed)
        driver.advance(1 + 500_000_000)  // half-way into the next window: the previous 4 weigh 2
        let half = driver.decide(cost: 2)
        #expect(half.outcome == .allowed)
        #expect(half.remaining == 0)
        #expect(driver.decide().outcome == .denied)
    }

    /// However the traffic falls, no aligned window ever admits more than `limit`.
    @Test(arguments: BucketDriver.Path.allCases)
    func neverMoreThanLimitInOneAlignedWindow(path: BucketDriver.Path) throws {
        let limit: Int64 = 9
        let period = 10 * TestTime.millisecond
        let driver = BucketDriver(try RateLimit(algorithm: .slidingWindow, limit: limit, periodNanoseconds: period), path: path)
        var generator = SplitMix64(seed: 42)
        var admitted: [Int64: Int64] = [:]
        for _ in 0..<20_000 {
            driver.advance(generator.next(in: 0...(period / 4)))
            let cost = generator.next(in: 1...3)
            if driver.decide(cost: cost).outcome == .allowed { admitted[driver.now / period, default: 0] += cost }
        }
        #expect(admitted.values.allSatisfy { $0 <= limit })
        #expect(admitted.values.contains(limit))
    }

    /// A request whose clock was read before the stored window began (it raced with a request from the next
    /// window on another thread) is judged at the start of that later window: it must not rewind the bucket,
    /// which would wipe the later window's count and let it admit more than `limit`.
    @Test(arguments: BucketDriver.Path.allCases)
    func staleRequestDoesNotRewindTheWindow(path: BucketDriver.Path) throws {
        let start = TestTime.start + TestTime.second
        let driver = BucketDriver(try RateLimit(algorithm: .slidingWindow, limit: 2, periodNanoseconds: TestTime.second), path: path, start: start)
        #expect(driver.decide(cost: 2).outcome == .allowed)
        driver.clock.set(Timestamp(nanoseconds: start - 1))
        let stale = driver.decide()
        #expect(stale.outcome == .denied)
        #expect(stale.remaining == 0)
        // From the stale instant: 1 ns to the stored window, 1 s through it, then 500 ms until 2 × 0.5 + 1 ≤ 2.
        #expect(stale.retryAfterNanoseconds == 1_500_000_001)
        #expect(stale.resetAfterNanoseconds == 2_000_000_001)
        driver.clock.set(Timestamp(nanoseconds: start + 1))
        #expect(driver.decide().outcome == .denied, "the later window's count was lost")
        driver.clock.set(Timestamp(nanoseconds: start - 1 + 1_500_000_000))
        #expect(driver.decide().outcome == .denied)
        driver.advance(1)
        #expect(driver.decide().outcome == .allowed)
    }
}
