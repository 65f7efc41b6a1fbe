/// A validated limit: an algorithm, `limit` per `period`, and for the token bucket its `burst`.
///
/// Everything the decision path needs is computed once here, so deciding never divides by the period
/// except where the algorithm itself needs a window index.
public struct RateLimit: Sendable, Hashable {
    /// The largest `limit` (and `burst`) for the token bucket and the fixed window: counters are 48-bit
    /// and the token bucket's fractional time is kept exactly in units of 1/limit ns.
    public static let maximumLimit: Int64 = 4_294_967_295
    /// The largest `limit` of a sliding window, whose two counters share one 48-bit word.
    public static let maximumSlidingWindowLimit: Int64 = 16_777_215
    /// The shortest period: 1 ms.
    public static let minimumPeriodNanoseconds: Int64 = 1_000_000
    /// The longest period: 366 days.
    public static let maximumPeriodNanoseconds: Int64 = 366 * 86_400_000_000_000

    /// The longest time a full token bucket takes to refill (`burst × period / limit`): 10 years. The token
    /// bucket's arithmetic reaches `now + 2 × tau`, which must stay inside 64-bit nanoseconds since the epoch
    /// (until the year 2262 minus 2 × tau).
    public static let maximumBurstToleranceNanoseconds: Int64 = 10 * 365 * 86_400_000_000_000

    /// The algorithm that decides.
    public let algorithm: Algorithm
    /// Requests (or cost units) admitted per period; for the token bucket, the refill per period.
    public let limit: Int64
    /// The period in nanoseconds.
    public let periodNanoseconds: Int64
    /// The token bucket's capacity; equals `limit` for the window algorithms.
    public let burst: Int64

    /// Whole nanoseconds per token (token bucket): `period / limit`.
    let tokenIntervalNanoseconds: Int64
    /// The remainder of `period / limit`, in units of 1/limit ns.
    let tokenIntervalRemainder: UInt64
    /// `burst` tokens' worth of time, whole nanoseconds part.
    let burstToleranceNanoseconds: Int64
    /// `burst` tokens' worth of time, fractional part in units of 1/limit ns.
    let burstToleranceRemainder: UInt64
    /// `1 / period`, for estimating quotients that ``quotient(dividingByPeriod:)`` then makes exact.
    let inversePeriod: Double

    /// Creates a validated limit.
    ///
    /// - Parameters:
    ///   - algorithm: the algorithm.
    ///   - limit: admitted per period, 1 through ``maximumLimit`` (``maximumSlidingWindowLimit`` for the sliding window).
    ///   - periodNanoseconds: the period, 1 ms through 366 days.
    ///   - burst: the token bucket's capacity (defaults to `limit`); must be nil or equal to `limit` for the window algorithms.
    /// - Throws: ``PolicyError`` naming the field that is out of range.
    public init(algorithm: Algorithm, limit: Int64, periodNanoseconds: Int64, burst: Int64? = nil) throws(PolicyError) {
        let maximum = algorithm == .slidingWindow ? Self.maximumSlidingWindowLimit : Self.maximumLimit
        guard limit >= 1, limit <= maximum else {
            throw PolicyError(.invalidLimit, "limit must be an integer from 1 to \(maximum) for \(algorithm.rawValue), got \(limit)")
        }
        guard periodNanoseconds >= Self.minimumPeriodNanoseconds, periodNanoseconds <= Self.maximumPeriodNanoseconds else {
            throw PolicyError(.invalidPeriod, "period must be from 1ms to 366d, got \(PolicyDuration.format(nanoseconds: periodNanoseconds))")
        }
        let capacity = burst ?? limit
        if algorithm == .tokenBucket {
            guard capacity >= 1, capacity <= Self.maximumLimit else {
                throw PolicyError(.invalidBurst, "burst must be an integer from 1 to \(Self.maximumLimit), got \(capacity)")
            }
        } else if capacity != limit {
            throw PolicyError(.invalidBurst, "burst applies only to token_bucket; remove it from this \(algorithm.rawValue) policy")
        }
        self.algorithm = algorithm
        self.limit = limit
        self.periodNanoseconds = periodNanoseconds
        self.burst = capacity
        self.tokenIntervalNanoseconds = periodNanoseconds / limit
        self.tokenIntervalRemainder = UInt64(periodNanoseconds % limit)
        // burst * period / limit, split into whole ns and a remainder in 1/limit ns; fits: burst, period < 2^55, product < 2^87.
        let total = Int128(capacity) * Int128(periodNanoseconds)
        guard total / Int128(limit) <= Int128(Self.maximumBurstToleranceNanoseconds) else {
            throw PolicyError(.invalidBurst, "burst × period / limit must be at most 10 years, got burst \(capacity) with \(limit) per \(PolicyDuration.format(nanoseconds: periodNanoseconds))")
        }
        self.inversePeriod = 1 / Double(periodNanoseconds)
        self.burstToleranceNanoseconds = Int64(total / Int128(limit))
        self.burstToleranceRemainder = UInt64(total % Int128(limit))
    }

    /// `floor(dividend / period)` for `0 ≤ dividend < 2^100`, exactly.
    ///
    /// A dividend that fits in 64 bits (a span under `2^64 / limit` ns: always for 1,000 a second with
    /// periods up to 213 days) takes one 64-bit division: 2.9 ns per call here (Zen 4), against 7.1 ns for the
    /// general path (a standalone loop timing both, minimum of 15 rounds of 5M calls). Larger ones avoid the
    /// 128-by-64-bit `div` (40–90 cycles): a floating-point estimate is off by at most one here (the quotient is
    /// below 2^48), and two multiplications correct it.
    @inline(__always)
    func quotient(dividingByPeriod dividend: Int128) -> Int64 {
        if dividend >> 64 == 0 { return Int64(UInt64(truncatingIfNeeded: dividend) / UInt64(periodNanoseconds)) }
        let high = Int64(truncatingIfNeeded: dividend >> 64)
        let low = UInt64(truncatingIfNeeded: dividend)
        let estimate = (Double(high) * 18_446_744_073_709_551_616.0 + Double(low)) * inversePeriod
        var quotient = Int64(max(0, estimate))
        let period = Int128(periodNanoseconds)
        while Int128(quotient) * period > dividend { quotient -= 1 }
        while Int128(quotient + 1) * period <= dividend { quotient += 1 }
        return quotient
    }

    /// The capacity a single request's cost must not exceed: `burst` for the token bucket, `limit` otherwise.
    public var capacity: Int64 { burst }

    /// A stable 64-bit fingerprint of the algorithm and numbers; buckets of equal limits share it.
    public var fingerprint: UInt64 {
        var hasher = StableHasher(seed: 0x5EED_0F_5_1_1_CE)
        hasher.combine(UInt64(algorithm == .tokenBucket ? 1 : algorithm == .fixedWindow ? 2 : 3))
        hasher.combine(UInt64(limit))
        hasher.combine(UInt64(periodNanoseconds))
        hasher.combine(UInt64(burst))
        return hasher.finalize()
    }
}
