public import Logging
public import SluiceConfig
public import SluiceCore
import Synchronization

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
    /// Where limit events go (the live stream, webhooks); nil when the process has none.
    public let events: EventHub?
    /// The metrics (``SluiceMetrics``): counters published at each scrape and every 5 s, latency per read.
    public let metrics: SluiceMetrics

    /// Creates a context; without `metrics`, a Prometheus registry of its own.
    public init(
        limiter: RateLimiter, registry: PolicyRegistry, clock: any SluiceClock, statistics: ServerStatistics = ServerStatistics(),
        limits: SluiceConfiguration.Limits = SluiceConfiguration.Limits(), logger: Logger, rlsDecisions: OutcomeCounters? = nil,
        admin: AdminAPI? = nil, events: EventHub? = nil, metrics: SluiceMetrics? = nil
    ) {
        self.metrics = metrics ?? SluiceMetrics()
        self.rlsDecisions = rlsDecisions
        self.admin = admin
        self.events = events
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

    /// Publishes the counters' growth to the metrics backend (``SluiceMetrics/publish(_:)``).
    public func publishMetrics() {
        metrics.publish(
            SluiceMetrics.Reading(
                status: status(), policies: registry.policies.decisionCounters.snapshot(), webhooks: events?.webhooks?.status() ?? [],
                subscribers: events?.subscriberCount ?? 0, droppedEvents: events?.droppedEvents.load(ordering: .relaxed) ?? 0
            )
        )
    }
}
