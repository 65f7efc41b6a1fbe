/// What a global limiter reports about itself.
public struct GlobalLimiterStatus: Sendable, Hashable {
    /// Whether Redis answers now.
    public var isConnected: Bool
    /// Where Redis is, as `host:port/db`.
    public var endpoint: String
    /// Global decisions answered without waiting for Redis (from a lease or a known exhaustion).
    public var localDecisions: Int
    /// Global decisions that waited for Redis (no lease yet, or a strict policy).
    public var redisDecisions: Int
    /// Decisions made by a policy's `on_store_failure` because Redis was down, slow or refusing.
    public var fallbackDecisions: Int
    /// Lease requests sent (first leases and renewals).
    public var leaseRequests: Int
    /// Script calls for strict policies.
    public var strictCalls: Int
    /// Commands that failed: timeouts, dropped connections, error replies.
    public var errors: Int
    /// Successful connections after the first.
    public var reconnections: Int
    /// Buckets holding a lease now.
    public var leases: Int
    /// Whether Redis refused the credentials at the last attempt.
    public var authenticationFailed: Bool

    /// Creates a status.
    public init(
        isConnected: Bool, endpoint: String, localDecisions: Int, redisDecisions: Int, fallbackDecisions: Int,
        leaseRequests: Int, strictCalls: Int, errors: Int, reconnections: Int, leases: Int, authenticationFailed: Bool = false
    ) {
        self.authenticationFailed = authenticationFailed
        self.isConnected = isConnected
        self.endpoint = endpoint
        self.localDecisions = localDecisions
        self.redisDecisions = redisDecisions
        self.fallbackDecisions = fallbackDecisions
        self.leaseRequests = leaseRequests
        self.strictCalls = strictCalls
        self.errors = errors
        self.reconnections = reconnections
        self.leases = leases
    }
}
