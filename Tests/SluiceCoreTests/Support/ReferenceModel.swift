import SluiceCore

/// What a reference model expects one decision to report.
struct ExpectedDecision: Equatable, CustomStringConvertible {
    var outcome: Decision.Outcome
    var remaining: Int64
    var resetAfterNanoseconds: Int64
    var retryAfterNanoseconds: Int64

    init(outcome: Decision.Outcome, remaining: Int64, resetAfterNanoseconds: Int64, retryAfterNanoseconds: Int64) {
        self.outcome = outcome
        self.remaining = remaining
        self.resetAfterNanoseconds = resetAfterNanoseconds
        self.retryAfterNanoseconds = retryAfterNanoseconds
    }

    init(_ decision: Decision) {
        self.init(
            outcome: decision.outcome, remaining: decision.remaining,
            resetAfterNanoseconds: decision.resetAfterNanoseconds, retryAfterNanoseconds: decision.retryAfterNanoseconds
        )
    }

    var description: String {
        "\(outcome) remaining=\(remaining) resetAfter=\(resetAfterNanoseconds) retryAfter=\(retryAfterNanoseconds)"
    }
}

/// A deliberately plain model of one bucket: it answers "does `cost` fit at instant t?" and "is the bucket
/// full at t?" from first principles, and derives `retryAfter` and `resetAfter` by searching for the first
/// instant where those answers become true, rather than by any closed formula.
protocol ReferenceModel {
    /// The largest cost that can ever pass.
    var capacity: Int64 { get }
    /// Whether a request of `cost` fits at `instant` (assuming the caller already checked cost ≤ capacity).
    func admits(cost: Int64, at instant: Int64) -> Bool
    /// Whole cost-1 requests that would pass at `instant`, one after another.
    func remaining(at instant: Int64) -> Int64
    /// Whether the bucket is back to its full capacity at `instant`.
    func isFull(at instant: Int64) -> Bool
    /// Records a consumption of `cost` at `instant`.
    mutating func charge(cost: Int64, at instant: Int64)
    /// A wait after which both `admits(cost:)` and `isFull` certainly hold.
    func searchBound(cost: Int64, at instant: Int64) -> Int64
}

extension ReferenceModel {
    /// The least `wait` in `0...bound` with `predicate(now + wait)`; the predicates are monotone in time.
    static func firstWait(from now: Int64, bound: Int64, where predicate: (Int64) -> Bool) -> Int64 {
        precondition(predicate(now + bound), "search bound too small")
        if predicate(now) { return 0 }
        var low: Int64 = 0  // predicate false
        var high = bound  // predicate true
        while high - low > 1 {
            let middle = low + (high - low) / 2
            if predicate(now + middle) { high = middle } else { low = middle }
        }
        return high
    }

    func waitUntilFull(from now: Int64) -> Int64 {
        Self.firstWait(from: now, bound: searchBound(cost: 1, at: now)) { isFull(at: $0) }
    }

    /// The decision the documented semantics call for; charges the model when allowed and `consume`.
    mutating func decide(now: Int64, cost: Int64, consume: Bool) -> ExpectedDecision {
        if cost > capacity {
            return ExpectedDecision(
                outcome: .exceedsCapacity, remaining: remaining(at: now),
                resetAfterNanoseconds: waitUntilFull(from: now), retryAfterNanoseconds: -1
            )
        }
        if admits(cost: cost, at: now) {
            var charged = self
            charged.charge(cost: cost, at: now)
            let expected = ExpectedDecision(
                outcome: .allowed, remaining: charged.remaining(at: now),
                resetAfterNanoseconds: charged.waitUntilFull(from: now), retryAfterNanoseconds: 0
            )
            if consume { self = charged }
            return expected
        }
        let retryAfter = Self.firstWait(from: now, bound: searchBound(cost: cost, at: now)) { admits(cost: cost, at: $0) }
        return ExpectedDecision(
            outcome: .denied, remaining: remaining(at: now),
            resetAfterNanoseconds: waitUntilFull(from: now), retryAfterNanoseconds: retryAfter
        )
    }
}

/// The token bucket as exact rationals: every time is kept multiplied by `limit`, so one token's refill
/// time `period / limit` is exactly `period` units and nothing is ever rounded.
struct TokenBucketModel: ReferenceModel {
    let limit: Int128
    let period: Int128
    let burst: Int128
    /// The theoretical arrival time × limit; 0 is "long ago" (a full bucket).
    var scaledArrival: Int128 = 0

    init(_ rateLimit: RateLimit) {
        limit = Int128(rateLimit.limit)
        period = Int128(rateLimit.periodNanoseconds)
        burst = Int128(rateLimit.burst)
    }

    var capacity: Int64 { Int64(burst) }

    /// Tokens × period held at `instant`: (now + tau − max(now, TAT)) × limit.
    func scaledTokens(at instant: Int64) -> Int128 {
        let scaledNow = Int128(instant) * limit
        return scaledNow + burst * period - max(scaledNow, scaledArrival)
    }

    func admits(cost: Int64, at instant: Int64) -> Bool { scaledTokens(at: instant) >= Int128(cost) * period }

    func remaining(at instant: Int64) -> Int64 { Int64(max(0, scaledTokens(at: instant)) / period) }

    func isFull(at instant: Int64) -> Bool { scaledArrival <= Int128(instant) * limit }

    mutating func charge(cost: Int64, at instant: Int64) {
        scaledArrival = max(Int128(instant) * limit, scaledArrival) + Int128(cost) * period
    }

    func searchBound(cost: Int64, at instant: Int64) -> Int64 {
        let untilArrival = max(0, scaledArrival / limit - Int128(instant))
        return Int64(untilArrival + (burst + Int128(cost)) * period / limit + 2)
    }
}

/// The fixed window as a counter per window index (windows start at multiples of the period since the epoch).
struct FixedWindowModel: ReferenceModel {
    let limit: Int64
    let period: Int64
    var counts: [Int64: Int64] = [:]

    init(_ rateLimit: RateLimit) {
        limit = rateLimit.limit
        period = rateLimit.periodNanoseconds
    }

    var capacity: Int64 { limit }

    func count(at instant: Int64) -> Int64 { counts[instant / period] ?? 0 }

    func admits(cost: Int64, at instant: Int64) -> Bool { count(at: instant) + cost <= limit }

    func remaining(at instant: Int64) -> Int64 { limit - count(at: instant) }

    func isFull(at instant: Int64) -> Bool { count(at: instant) == 0 }

    mutating func charge(cost: Int64, at instant: Int64) {
        let window = instant / period
        counts[window, default: 0] += cost
        counts = counts.filter { $0.key >= window }
    }

    func searchBound(cost: Int64, at instant: Int64) -> Int64 { period + 1 }
}

/// The sliding window as two counters (the previous and the current aligned window) and the documented
/// exact integer test `previous × (period − elapsed) + (current + cost) × period ≤ limit × period`.
struct SlidingWindowModel: ReferenceModel {
    let limit: Int64
    let period: Int64
    var counts: [Int64: Int64] = [:]

    init(_ rateLimit: RateLimit) {
        limit = rateLimit.limit
        period = rateLimit.periodNanoseconds
    }

    var capacity: Int64 { limit }

    func window(at instant: Int64) -> (previous: Int128, current: Int128, elapsed: Int128) {
        let index = instant / period
        return (Int128(counts[index - 1] ?? 0), Int128(counts[index] ?? 0), Int128(instant - index * period))
    }

    func admits(cost: Int64, at instant: Int64) -> Bool {
        let (previous, current, elapsed) = window(at: instant)
        let period = Int128(period)
        return previous * (period - elapsed) + (current + Int128(cost)) * period <= Int128(limit) * period
    }

    func remaining(at instant: Int64) -> Int64 {
        let (previous, current, elapsed) = window(at: instant)
        let period = Int128(period)
        let weighted = (previous * (period - elapsed) + period - 1) / period  // rounded up
        return max(0, limit - Int64(current) - Int64(weighted))
    }

    func isFull(at instant: Int64) -> Bool {
        let (previous, current, _) = window(at: instant)
        return previous == 0 && current == 0
    }

    mutating func charge(cost: Int64, at instant: Int64) {
        let index = instant / period
        counts[index, default: 0] += cost
        counts = counts.filter { $0.key >= index - 1 }
    }

    func searchBound(cost: Int64, at instant: Int64) -> Int64 { 2 * period + 1 }
}
