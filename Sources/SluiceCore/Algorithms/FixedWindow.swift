/// The fixed window counter.
///
/// Semantics: windows are `[k × period, (k + 1) × period)` in nanoseconds since the Unix epoch (so a
/// `1m` window starts on the wall-clock minute and a `1d` window at 00:00 UTC). Each window admits
/// requests while the sum of their costs stays at or below `limit`.
/// - `remaining` is `limit` minus the window's count after this request.
/// - `resetAfter` is the time until the window ends when it has counted anything, else 0 (already full).
/// - `retryAfter` (denied) is the time until the window ends: the next window admits any cost ≤ `limit`.
/// - A cost above `limit` can never pass: ``Decision/Outcome/exceedsCapacity``.
///
/// The state keeps the window's end as the horizon, so a counter from an earlier window reads as zero.
/// A request timed before the stored window began (its clock was read just before a window edge, and a
/// request from the next window got in first) is judged in the stored window, never rewinding it.
extension RateLimit {

    func evaluateFixedWindow(_ state: BucketState, now: Int64, cost: Int64) -> Evaluation {
        // Rewinding to an earlier window would overwrite the later window's count and let it admit more than `limit`.
        let windowEnd = max((now / periodNanoseconds + 1) * periodNanoseconds, state.horizon)
        let count = state.horizon == windowEnd ? Int64(state.counters) : 0
        let untilEnd = windowEnd - now
        guard cost <= limit else {
            let decision = Decision(
                outcome: .exceedsCapacity, limit: limit, remaining: limit - count,
                resetAfterNanoseconds: count > 0 ? untilEnd : 0, retryAfterNanoseconds: -1
            )
            return Evaluation(decision: decision, newState: state)
        }
        if count + cost <= limit {
            let decision = Decision(
                outcome: .allowed, limit: limit, remaining: limit - count - cost,
                resetAfterNanoseconds: untilEnd, retryAfterNanoseconds: 0
            )
            let newState = BucketState(generation: state.generation, counters: UInt64(count + cost), horizon: windowEnd)
            return Evaluation(decision: decision, newState: newState)
        }
        let decision = Decision(
            outcome: .denied, limit: limit, remaining: limit - count,
            resetAfterNanoseconds: untilEnd, retryAfterNanoseconds: untilEnd
        )
        return Evaluation(decision: decision, newState: state)
    }


    func refundFixedWindow(_ state: BucketState, cost: Int64, consumedHorizon: Int64) -> BucketState? {
        guard state.horizon == consumedHorizon, state.counters > 0 else { return nil }
        return BucketState(
            generation: state.generation, counters: state.counters - min(UInt64(cost), state.counters),
            horizon: state.horizon
        )
    }
}
