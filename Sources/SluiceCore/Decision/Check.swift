/// What one local decision took from the store, to give back exactly (see ``RateLimiter/decideHolding(_:at:consume:)``).
public struct LocalCharge: Sendable, Hashable {
    let reservation: BucketStore.Reservation
    let check: Check
}

/// One question: may `cost` be taken from `key`'s bucket under `rateLimit`?
public struct Check: Sendable, Hashable {
    /// The limit to apply.
    public var rateLimit: RateLimit
    /// Enforce, or shadow (always allowed, denials only counted).
    public var mode: Policy.Mode
    /// The policy's index in its ``PolicySet``, or -1 for an inline limit.
    public var policyIndex: Int32
    /// The bucket.
    public var key: BucketKey
    /// A positive cost.
    public var cost: Int64

    /// Creates a check.
    public init(rateLimit: RateLimit, mode: Policy.Mode = .enforce, policyIndex: Int32 = -1, key: BucketKey, cost: Int64 = 1) {
        self.rateLimit = rateLimit
        self.mode = mode
        self.policyIndex = policyIndex
        self.key = key
        self.cost = cost
    }

    /// The seed that groups inline limits: equal limits share buckets, as `THROTTLE` in redis-cell does.
    public static func inlineSeed(for rateLimit: RateLimit) -> UInt64 { rateLimit.fingerprint ^ 0x1A11_0E00_0000_0001 }
}
