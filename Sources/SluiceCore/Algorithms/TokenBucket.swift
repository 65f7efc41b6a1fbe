/// The token bucket, as the generic cell rate algorithm (GCRA) in exact rational arithmetic.
///
/// Semantics, with `T = period / limit` (the time one token takes to refill) and `tau = burst × T`:
/// - The state is the theoretical arrival time `TAT`; the bucket holds `(now + tau − max(now, TAT)) / T` tokens.
/// - A request of `cost` is allowed iff `max(now, TAT) + cost × T ≤ now + tau`; then `TAT` becomes that sum.
/// - `remaining` is the whole tokens left after the request (rounded down).
/// - `retryAfter` is exactly the time until `cost` tokens are present: `max(now, TAT) + cost × T − (now + tau)`,
///   rounded up to the nanosecond. Waiting it makes the same request pass.
/// - `resetAfter` is the time until the bucket holds `burst` tokens again: `TAT − now`, rounded up.
/// - A cost above `burst` can never pass: ``Decision/Outcome/exceedsCapacity`` with `retryAfter` −1.
///
/// `T` is kept as whole nanoseconds plus a remainder in units of 1/limit ns, so there is no rounding
/// drift however many decisions are made: 10^9 requests of 1 advance `TAT` by exactly 10^9 × T.
extension RateLimit {
    /// `TAT` as (whole ns, fraction in 1/limit ns); compares lexicographically.
    struct ExactTime: Comparable {
        var nanoseconds: Int64
        var fraction: UInt64

        init(nanoseconds: Int64, fraction: UInt64) {
            self.nanoseconds = nanoseconds
            self.fraction = fraction
        }

        static func < (lhs: ExactTime, rhs: ExactTime) -> Bool {
            lhs.nanoseconds < rhs.nanoseconds || (lhs.nanoseconds == rhs.nanoseconds && lhs.fraction < rhs.fraction)
        }

        /// Rounded up to whole nanoseconds.
        var ceiling: Int64 { fraction > 0 ? nanoseconds + 1 : nanoseconds }
    }


    func adding(_ time: ExactTime, nanoseconds: Int64, fraction: UInt64) -> ExactTime {
        var sum = ExactTime(nanoseconds: time.nanoseconds + nanoseconds, fraction: time.fraction + fraction)
        let divisor = UInt64(limit)
        if sum.fraction >= divisor {
            sum.nanoseconds += 1
            sum.fraction -= divisor
        }
        return sum
    }


    func subtracting(_ time: ExactTime, _ other: ExactTime) -> ExactTime {
        if time.fraction >= other.fraction {
            return ExactTime(nanoseconds: time.nanoseconds - other.nanoseconds, fraction: time.fraction - other.fraction)
        }
        return ExactTime(
            nanoseconds: time.nanoseconds - other.nanoseconds - 1,
            fraction: time.fraction + UInt64(limit) - other.fraction
        )
    }

    /// `cost × T` as exact time. `cost ≤ burst < 2^32` and the remainder `< limit ≤ 2^32` keep the product in 64 bits.
    @inline(__always)
    func tokenTime(cost: Int64) -> ExactTime {
        if tokenIntervalRemainder == 0 {
            return ExactTime(nanoseconds: cost &* tokenIntervalNanoseconds, fraction: 0)
        }
        let fractional = UInt64(cost) &* tokenIntervalRemainder
        let divisor = UInt64(limit)
        if fractional < divisor {  // always for a cost of 1: no division needed
            return ExactTime(nanoseconds: cost &* tokenIntervalNanoseconds, fraction: fractional)
        }
        return ExactTime(
            nanoseconds: cost &* tokenIntervalNanoseconds + Int64(fractional / divisor),
            fraction: fractional % divisor
        )
    }

    /// Whole tokens in `span` of time: floor(span / T) = floor((ns × limit + fraction) / period).
    @inline(__always)
    func wholeTokens(in span: ExactTime) -> Int64 {
        guard span.nanoseconds >= 0 else { return 0 }
        // span ≤ tau < 2^62 ns and limit < 2^32, so the dividend stays below 2^94.
        return quotient(dividingByPeriod: Int128(span.nanoseconds) * Int128(limit) + Int128(span.fraction))
    }

    @inline(__always)
    func evaluateTokenBucket(_ state: BucketState, now: Int64, cost: Int64) -> Evaluation {
        let stored = ExactTime(nanoseconds: state.horizon, fraction: state.counters)
        let current = ExactTime(nanoseconds: now, fraction: 0)
        let base = max(current, stored)
        let ceilingTime = adding(current, nanoseconds: burstToleranceNanoseconds, fraction: burstToleranceRemainder)
        // Whole tokens before the request: only a refusal reports them (an allowed one reports what is left).
        var available: Int64 { base < ceilingTime ? wholeTokens(in: subtracting(ceilingTime, base)) : 0 }
        guard cost <= burst else {
            let decision = Decision(
                outcome: .exceedsCapacity, limit: burst, remaining: available,
                resetAfterNanoseconds: max(0, base.ceiling - now), retryAfterNanoseconds: -1
            )
            return Evaluation(decision: decision, newState: state)
        }
        let charge = tokenTime(cost: cost)
        let arrival = adding(base, nanoseconds: charge.nanoseconds, fraction: charge.fraction)
        if arrival <= ceilingTime {
            let decision = Decision(
                outcome: .allowed, limit: burst, remaining: wholeTokens(in: subtracting(ceilingTime, arrival)),
                resetAfterNanoseconds: arrival.ceiling - now, retryAfterNanoseconds: 0
            )
            let newState = BucketState(generation: state.generation, counters: arrival.fraction, horizon: arrival.nanoseconds)
            return Evaluation(decision: decision, newState: newState)
        }
        let decision = Decision(
            outcome: .denied, limit: burst, remaining: available,
            resetAfterNanoseconds: max(0, base.ceiling - now),
            retryAfterNanoseconds: subtracting(arrival, ceilingTime).ceiling
        )
        return Evaluation(decision: decision, newState: state)
    }


    /// Refunds only when the bucket still holds exactly the arrival time the charge wrote. A later charge
    /// may have started from a refilled bucket rather than on top of this one, and subtracting this charge
    /// would then erase that one (over-admitting); telling the two apart needs the clock of every charge.
    /// So under contention a refund can be skipped, and the error stays on the side of denying.
    func refundTokenBucket(_ state: BucketState, cost: Int64, charged: BucketState) -> BucketState? {
        guard state.horizon == charged.horizon, state.counters == charged.counters else { return nil }
        let refunded = subtracting(ExactTime(nanoseconds: state.horizon, fraction: state.counters), tokenTime(cost: cost))
        // A TAT in the past already means "full"; clamp so the horizon stays meaningful to the store.
        let clamped = refunded.nanoseconds < 0 ? ExactTime(nanoseconds: 0, fraction: 0) : refunded
        return BucketState(generation: state.generation, counters: clamped.fraction, horizon: clamped.nanoseconds)
    }
}
