public import Logging
public import SluiceCore

/// What every server shares: the limiter, the policies, the clock, the counters and the caps.
public struct ServerContext: Sendable {
    /// Decides checks.
    public let limiter: RateLimiter
    /// The policies in force.
    public let registry: PolicyRegistry
    /// The time source (read once per batch).
    public let clock: any SluiceClock
    /// Shared counters.
    public let statistics: ServerStatistics
    /// The longest key accepted, in bytes (default 512).
    public let maximumKeyBytes: Int
    /// Where servers log.
    public let logger: Logger
    /// Decides global policies (through Redis); nil when the configuration has none.
    public let global: (any GlobalLimiter)?

    /// Creates a context.
    public init(
        limiter: RateLimiter, registry: PolicyRegistry, clock: any SluiceClock, statistics: ServerStatistics = ServerStatistics(),
        maximumKeyBytes: Int = 512, logger: Logger, global: (any GlobalLimiter)? = nil
    ) {
        self.limiter = limiter
        self.registry = registry
        self.clock = clock
        self.statistics = statistics
        self.maximumKeyBytes = maximumKeyBytes
        self.logger = logger
        self.global = global
    }
}
