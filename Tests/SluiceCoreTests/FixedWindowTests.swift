import SluiceCore
import Testing

struct FixedWindowTests {
    static let scripts: [BoundaryScript] = [
        BoundaryScript(name: "3 per 1m, starting at :45", algorithm: .fixedWindow, limit: 3, period: TestTime.minute, startOffset: 45 * TestTime.second, steps: [
            ScriptStep(outcome: .allowed, remaining: 2, resetAfter: 15 * TestTime.second),
            ScriptStep(cost: 2, outcome: .allowed, remaining: 0, resetAfter: 15 * TestTime.second),
            ScriptStep(outcome: .denied, remaining: 0, resetAfter: 15 * TestTime.second, retryAfter: 15 * TestTime.second),
            ScriptStep(cost: 4, outcome: .exceedsCapacity, remaining: 0, resetAfter: 15 * TestTime.second, retryAfter: -1),
            ScriptStep(advance: 15 * TestTime.second - 1, outcome: .denied, remaining: 0, resetAfter: 1, retryAfter: 1),
            // At the window edge a new window admits cost == limit.
            ScriptStep(advance: 1, cost: 3, outcome: .allowed, remaining: 0, resetAfter: TestTime.minute),
            ScriptStep(advance: TestTime.minute, consume: false, outcome: .allowed, remaining: 2, resetAfter: TestTime.minute),
            // Nothing counted in this window: an impossible cost reports resetAfter 0.
            ScriptStep(cost: 4, outcome: .exceedsCapacity, remaining: 3, resetAfter: 0, retryAfter: -1),
            ScriptStep(advance: TestTime.minute - 1, outcome: .allowed, remaining: 2, resetAfter: 1),
            ScriptStep(cost: 2, outcome: .allowed, remaining: 0, resetAfter: 1),
            // The documented fixed-window burst: 2 × limit within 2 ns across the edge.
            ScriptStep(advance: 1, cost: 3, outcome: .allowed, remaining: 0, resetAfter: TestTime.minute),
            ScriptStep(advance: 30 * TestTime.second, consume: false, outcome: .denied, remaining: 0, resetAfter: 30 * TestTime.second, retryAfter: 30 * TestTime.second),
        ]),
        BoundaryScript(name: "1 per 1ms", algorithm: .fixedWindow, limit: 1, period: TestTime.millisecond, steps: [
            ScriptStep(outcome: .allowed, remaining: 0, resetAfter: TestTime.millisecond),
            ScriptStep(advance: 999_999, outcome: .denied, remaining: 0, resetAfter: 1, retryAfter: 1),
            ScriptStep(advance: 1, outcome: .allowed, remaining: 0, resetAfter: TestTime.millisecond),
            ScriptStep(advance: 5 * TestTime.millisecond + 3, outcome: .allowed, remaining: 0, resetAfter: TestTime.millisecond - 3),
        ]),
    ]

    @Test(arguments: BucketDriver.Path.allCases, scripts)
    func scriptedBoundaries(path: BucketDriver.Path, script: BoundaryScript) throws {
        for mismatch in try script.run(path: path) {
            Issue.record("step \(mismatch.step): expected \(mismatch.expected), got \(mismatch.actual)")
        }
    }

    static let limits: [LimitCase] = [
        LimitCase(algorithm: .fixedWindow, limit: 1, period: TestTime.millisecond),
        LimitCase(algorithm: .fixedWindow, limit: 3, period: TestTime.minute, startOffset: 45 * TestTime.second),
        LimitCase(algorithm: .fixedWindow, limit: 5, period: 7 * TestTime.millisecond),
        LimitCase(algorithm: .fixedWindow, limit: 1_000, period: TestTime.hour, startOffset: 1_234_567),
        LimitCase(algorithm: .fixedWindow, limit: RateLimit.maximumLimit, period: 366 * TestTime.day),
        LimitCase(algorithm: .fixedWindow, limit: 1, period: TestTime.day, startOffset: 13 * TestTime.hour),
        LimitCase(algorithm: .fixedWindow, limit: 2, period: 999_999_937, startOffset: 1),
    ]

    @Test(arguments: BucketDriver.Path.allCases, limits)
    func genericBoundaries(path: BucketDriver.Path, limitCase: LimitCase) throws {
        try BoundaryChecks.run(limitCase, path: path)
    }

    /// Windows are `[k × period, (k + 1) × period)` since the Unix epoch, not since the first request.
    @Test(arguments: [
        // (period, start offset from 2026-01-01T00:00:00Z, time left in the window)
        (TestTime.minute, 45 * TestTime.second, 15 * TestTime.second),
        (TestTime.minute, 0, TestTime.minute),
        (TestTime.minute, TestTime.minute - 1, 1),
        (TestTime.hour, 59 * TestTime.minute, TestTime.minute),
        (TestTime.day, 13 * TestTime.hour, 11 * TestTime.hour),
        (TestTime.second, 1, TestTime.second - 1),
        // 2026-01-01 is 1,767,225,600,000 ms after the epoch: 3 ms past a multiple of 13 ms.
        (13 * TestTime.millisecond, 0, 10 * TestTime.millisecond),
        (13 * TestTime.millisecond, 10 * TestTime.millisecond, 13 * TestTime.millisecond),
        // A period that is not a whole number of milliseconds: 1,767,225,600,000,000,000 mod 999,999,937 = 335,219,793.
        (999_999_937, 0, 999_999_937 - 335_219_793),
        // 366 days: 2026-01-01 is day 20,454 = 55 × 366 + 324, so its window began on 2025-02-11 and has 42 days left.
        (366 * TestTime.day, 0, 42 * TestTime.day),
    ] as [(Int64, Int64, Int64)])
    func windowsAlignToTheEpoch(period: Int64, startOffset: Int64, untilEnd: Int64) throws {
        #expect((TestTime.start + startOffset + untilEnd) % period == 0)
        for path in BucketDriver.Path.allCases {
            let driver = BucketDriver(
                try RateLimit(algorithm: .fixedWindow, limit: 2, periodNanoseconds: period), path: path, start: TestTime.start + startOffset
            )
            let first = driver.decide(cost: 2)
            #expect(first.resetAfterNanoseconds == untilEnd)
            let denied = driver.decide()
            #expect(denied.retryAfterNanoseconds == untilEnd)
            driver.advance(untilEnd - 1)
            #expect(driver.decide().outcome == .denied)
            driver.advance(1)
            let next = driver.decide(cost: 2)
            #expect(next.outcome == .allowed)
            #expect(next.resetAfterNanoseconds == period)
        }
    }

    /// Counts of earlier windows never leak into later ones, however far the clock jumps.
    @Test(arguments: BucketDriver.Path.allCases)
    func oldWindowsReadAsEmpty(path: BucketDriver.Path) throws {
        let driver = BucketDriver(try RateLimit(algorithm: .fixedWindow, limit: 4, periodNanoseconds: TestTime.second), path: path)
        for jump in [TestTime.second, 2 * TestTime.second, 17 * TestTime.second + 5, TestTime.day] {
            #expect(driver.decide(cost: 3).remaining == 1)
            driver.advance(jump)
            #expect(driver.isFull())
        }
    }

    /// A request whose clock was read before the stored window began (it raced with a request from the next
    /// window on another thread) is judged in that later window: it must not rewind the bucket, which would
    /// wipe the later window's count and let it admit more than `limit`.
    @Test(arguments: BucketDriver.Path.allCases)
    func staleRequestDoesNotRewindTheWindow(path: BucketDriver.Path) throws {
        let start = TestTime.start + TestTime.second
        let driver = BucketDriver(try RateLimit(algorithm: .fixedWindow, limit: 2, periodNanoseconds: TestTime.second), path: path, start: start)
        #expect(driver.decide(cost: 2).outcome == .allowed)
        driver.clock.set(Timestamp(nanoseconds: start - 1))
        let stale = driver.decide()
        #expect(stale.outcome == .denied)
        #expect(stale.remaining == 0)
        #expect(stale.retryAfterNanoseconds == TestTime.second + 1)
        #expect(stale.resetAfterNanoseconds == TestTime.second + 1)
        driver.clock.set(Timestamp(nanoseconds: start + 1))
        #expect(driver.decide().outcome == .denied, "the later window's count was lost")
        driver.advance(TestTime.second - 1)
        #expect(driver.decide(cost: 2).outcome == .allowed)
    }
}
