public import Logging
public import SluiceConfig
public import SluiceCore

/// What every server shares: the limiter, the policies, the clock, the counters and the caps.
public struct ServerContext: Sendable {
    /// Decides checks, local and global.
    public let limiter: RateLimiter
    /// The policies in force.
    public let registry: PolicyRegistry
    /// The time source (read once per batch).
    public let clock: any SluiceClock
    /// Shared counters.
    public let statistics: ServerStatistics
    /// Caps on what clients send (the configuration's `limits` section).
    public let limits: SluiceConfiguration.Limits
    /// Where servers log.
    public let logger: Logger
    /// Envoy rate limit service decisions by domain and outcome, reported by `INFO` and `/metrics`.
    public let rlsDecisions: OutcomeCounters?
    /// The admin API, when the process keeps a ``ConfigurationState`` (it answers 404 without admin keys).
    public let admin: AdminAPI?

    /// Creates a context.
    public init(
        limiter: RateLimiter, registry: PolicyRegistry, clock: any SluiceClock, statistics: ServerStatistics = ServerStatistics(),
        limits: SluiceConfiguration.Limits = SluiceConfiguration.Limits(), logger: Logger, rlsDecisions: OutcomeCounters? = nil,
        admin: AdminAPI? = nil
    ) {
        self.rlsDecisions = rlsDecisions
        self.admin = admin
        self.limiter = limiter
        self.registry = registry
        self.clock = clock
        self.statistics = statistics
        self.limits = limits
        self.logger = logger
    }

    /// The longest key accepted, in bytes.
    var maximumKeyBytes: Int { limits.maxKeyBytes }

    /// Everything `INFO` and `/metrics` report, read once.
    func status() -> ServerStatus {
        ServerStatus(
            statistics: statistics.snapshot(), store: ServerStatus.Store(limiter.store), policies: registry.policies.policies.count,
            global: limiter.global?.status(), rls: rlsDecisions?.snapshot() ?? []
        )
    }
}
