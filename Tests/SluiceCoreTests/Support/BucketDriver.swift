import SluiceCore

/// Drives one bucket through a chosen path, so a table runs the same steps against both.
///
/// `.evaluate` threads a ``BucketState`` through `RateLimit.evaluate(_:now:cost:)` by hand;
/// `.limiter` goes through `RateLimiter` and `BucketStore` with a `ManualClock`.
final class BucketDriver {
    enum Path: String, CaseIterable, Sendable, CustomStringConvertible {
        case evaluate
        case limiter
        var description: String { rawValue }
    }

    let rateLimit: RateLimit
    let path: Path
    let clock: ManualClock
    let limiter = RateLimiter(store: BucketStore(maximumKeys: 16, shardCount: 2))
    let key = BucketKey(seed: 0x5EED, key: "driver")
    private(set) var state = BucketState.full

    init(_ rateLimit: RateLimit, path: Path, start: Int64 = TestTime.start) {
        self.rateLimit = rateLimit
        self.path = path
        self.clock = ManualClock(start: Timestamp(nanoseconds: start))
    }

    var now: Int64 { clock.now().nanoseconds }

    func advance(_ nanoseconds: Int64) { clock.advance(nanoseconds: nanoseconds) }

    func decide(cost: Int64 = 1, consume: Bool = true) -> Decision {
        switch path {
        case .evaluate:
            let evaluation = rateLimit.evaluate(state, now: now, cost: cost)
            if consume, evaluation.decision.outcome == .allowed { state = evaluation.newState }
            return evaluation.decision
        case .limiter:
            return limiter.decide(Check(rateLimit: rateLimit, key: key, cost: cost), at: clock.now(), consume: consume)
        }
    }

    /// Whether the bucket is back to its full capacity (a peek of the whole capacity passes).
    func isFull() -> Bool { decide(cost: rateLimit.capacity, consume: false).outcome == .allowed }
}
