/// The sliding window counter (the weighted two-window approximation).
///
/// Windows are aligned as for the fixed window, and as there a request timed before the stored window
/// began is judged in the stored window (at its start). At `now`, `elapsed` into the current window, the
/// estimated count over the last `period` is `previous × (period − elapsed) / period + current`: the previous
/// window counts in proportion to the part of it still inside the sliding window.
/// - A request of `cost` is allowed iff `previous × (period − elapsed) + (current + cost) × period ≤ limit × period`
///   (exact integer comparison, no rounding).
/// - `remaining` is `limit − current − ceil(previous × (period − elapsed) / period)` after the request, at least 0.
/// - `retryAfter` (denied) is the exact time until the weighted sum has dropped enough, computed from the
///   weights: within this window if `current + cost ≤ limit`, otherwise in the next one, where this
///   window's count becomes the previous one.
/// - `resetAfter` is the time until both windows' counts have slid out (0 when both are empty).
/// - A cost above `limit` can never pass: ``Decision/Outcome/exceedsCapacity``.
///
/// The approximation: it assumes the previous window's requests were spread evenly. It never admits more
/// than `limit` within one aligned window. Against an exact sliding log it can over-admit when the previous
/// window's traffic came at its very end: the worst case, for any interval of length `period`, approaches
/// `2 × limit` (all of `limit` at the end of one window, then `limit × elapsed / period` more as the weight
/// decays). With traffic spread evenly the estimate is exact.
extension RateLimit {
    static let slidingCounterMask: UInt64 = (1 << 24) - 1


    func evaluateSlidingWindow(_ state: BucketState, now: Int64, cost: Int64) -> Evaluation {
        let period = periodNanoseconds
        // A request timed before the stored window began (its clock read raced with a request from a later
        // window) is judged at the start of the stored window: rewinding would overwrite the later counts.
        let horizon = max((now / period) * period + 2 * period, state.horizon)
        let windowStart = horizon - 2 * period
        let elapsed = max(0, now - windowStart)
        var current: Int64 = 0
        var previous: Int64 = 0
        if state.horizon == horizon {
            current = Int64(state.counters & Self.slidingCounterMask)
            previous = Int64(state.counters >> 24)
        } else if state.horizon == horizon - period {
            previous = Int64(state.counters & Self.slidingCounterMask)
        }
        // previous × (period − elapsed): at most 2^24 × 2^55, so it needs the full width.
        let weighted = Int128(previous) * Int128(period - elapsed)
        let weightedCount = previous == 0 ? 0 : quotient(dividingByPeriod: weighted + Int128(period) - 1)
        func remaining(current: Int64) -> Int64 { max(0, limit - current - weightedCount) }
        func resetAfter(current: Int64) -> Int64 {
            current > 0 ? horizon - now : previous > 0 ? windowStart + period - now : 0
        }
        guard cost <= limit else {
            let decision = Decision(
                outcome: .exceedsCapacity, limit: limit, remaining: remaining(current: current),
                resetAfterNanoseconds: resetAfter(current: current), retryAfterNanoseconds: -1
            )
            return Evaluation(decision: decision, newState: state)
        }
        let budget = limit - current - cost
        if budget >= 0, weighted <= Int128(budget) * Int128(period) {
            let newCurrent = current + cost
            let decision = Decision(
                outcome: .allowed, limit: limit, remaining: remaining(current: newCurrent),
                resetAfterNanoseconds: resetAfter(current: newCurrent), retryAfterNanoseconds: 0
            )
            let counters = UInt64(newCurrent) | UInt64(previous) << 24
            return Evaluation(decision: decision, newState: BucketState(generation: state.generation, counters: counters, horizon: horizon))
        }
        let untilWindowEnd = windowStart + period - now
        let retryAfter: Int64
        if budget >= 0 {
            // Denied only because of the previous window's weight (so previous > 0): wait until
            // previous × (period − elapsed − t) ≤ budget × period.
            retryAfter = untilWindowEnd - Int64(Int128(budget) * Int128(period) / Int128(previous))
        } else {
            // This window's own count is too high: in the next window it weighs as the previous one.
            // current > 0 here because current + cost > limit ≥ cost.
            let allowedWeight = Int64(Int128(limit - cost) * Int128(period) / Int128(current))
            retryAfter = untilWindowEnd + max(0, period - allowedWeight)
        }
        let decision = Decision(
            outcome: .denied, limit: limit, remaining: remaining(current: current),
            resetAfterNanoseconds: resetAfter(current: current), retryAfterNanoseconds: retryAfter
        )
        return Evaluation(decision: decision, newState: state)
    }


    func refundSlidingWindow(_ state: BucketState, cost: Int64, consumedHorizon: Int64) -> BucketState? {
        let charged = UInt64(cost)
        if state.horizon == consumedHorizon {
            let current = state.counters & Self.slidingCounterMask
            guard current > 0 else { return nil }
            let counters = (state.counters & ~Self.slidingCounterMask) | (current - min(charged, current))
            return BucketState(generation: state.generation, counters: counters, horizon: state.horizon)
        }
        if state.horizon == consumedHorizon + periodNanoseconds {
            let previous = state.counters >> 24
            guard previous > 0 else { return nil }
            let counters = (state.counters & Self.slidingCounterMask) | (previous - min(charged, previous)) << 24
            return BucketState(generation: state.generation, counters: counters, horizon: state.horizon)
        }
        return nil
    }
}
