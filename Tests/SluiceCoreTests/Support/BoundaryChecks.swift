import SluiceCore
import Testing

/// Boundary checks that every algorithm must pass, whatever its numbers.
enum BoundaryChecks {
    /// Runs the generic boundary sequence on a fresh bucket.
    ///
    /// - a cost above capacity is `.exceedsCapacity` with retryAfter −1 and consumes nothing;
    /// - a cost equal to the capacity passes on a full bucket and leaves 0;
    /// - a denied request passes after exactly `retryAfter`, and not 1 ns earlier;
    /// - `resetAfter` brings the bucket back to its full capacity, and not 1 ns earlier;
    /// - remaining never goes negative however many requests are denied.
    static func run(_ limitCase: LimitCase, path: BucketDriver.Path) throws {
        let rateLimit = try limitCase.rateLimit()
        let capacity = rateLimit.capacity
        let driver = BucketDriver(rateLimit, path: path, start: TestTime.start + limitCase.startOffset)

        let tooBig = driver.decide(cost: capacity + 1)
        #expect(tooBig.outcome == .exceedsCapacity)
        #expect(tooBig.retryAfterNanoseconds == -1)
        #expect(tooBig.retryAfter == nil)
        #expect(tooBig.remaining == capacity)
        #expect(tooBig.resetAfterNanoseconds == 0)
        #expect(tooBig.limit == capacity)
        #expect(!tooBig.isAllowed)
        #expect(driver.isFull(), "an over-capacity request consumed something")

        let everything = driver.decide(cost: capacity)
        #expect(everything.outcome == .allowed)
        #expect(everything.isAllowed)
        #expect(everything.remaining == 0)
        #expect(everything.retryAfterNanoseconds == 0)
        #expect(everything.resetAfterNanoseconds > 0)

        let denied = driver.decide(cost: 1)
        #expect(denied.outcome == .denied)
        #expect(denied.remaining == 0)
        let retryAfter = denied.retryAfterNanoseconds
        try #require(retryAfter > 0)
        #expect(denied.retryAfter == .nanoseconds(retryAfter))

        let tooBigWhileEmpty = driver.decide(cost: capacity + 1)
        #expect(tooBigWhileEmpty.outcome == .exceedsCapacity)
        #expect(tooBigWhileEmpty.retryAfterNanoseconds == -1)
        #expect(tooBigWhileEmpty.remaining == 0)
        #expect(tooBigWhileEmpty.resetAfterNanoseconds == denied.resetAfterNanoseconds)

        for _ in 0..<5 {
            let again = driver.decide(cost: 1)
            #expect(again.outcome == .denied)
            #expect(again.remaining == 0)
            #expect(again.retryAfterNanoseconds == retryAfter)
        }

        driver.advance(retryAfter - 1)
        let early = driver.decide(cost: 1)
        #expect(early.outcome == .denied, "passed 1 ns before retryAfter \(retryAfter)")
        #expect(early.retryAfterNanoseconds == 1)
        #expect(early.remaining == 0)
        driver.advance(1)
        let onTime = driver.decide(cost: 1)
        #expect(onTime.outcome == .allowed, "did not pass after exactly retryAfter \(retryAfter)")
        #expect(onTime.remaining >= 0)

        let resetAfter = onTime.resetAfterNanoseconds
        try #require(resetAfter > 0)
        driver.advance(resetAfter - 1)
        #expect(!driver.isFull(), "full 1 ns before resetAfter \(resetAfter)")
        driver.advance(1)
        #expect(driver.isFull(), "not full after exactly resetAfter \(resetAfter)")
        let peek = driver.decide(cost: 1, consume: false)
        #expect(peek.outcome == .allowed)
        #expect(peek.remaining == capacity - 1)
        let full = driver.decide(cost: capacity)
        #expect(full.outcome == .allowed)
        #expect(full.remaining == 0)
    }
}
