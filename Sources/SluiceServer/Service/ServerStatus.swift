public import SluiceCore

/// One reading of everything Sluice reports about itself: `INFO` and `/metrics` both render it, so the
/// two never disagree about what a counter means.
public struct ServerStatus: Sendable, Hashable {
    /// The bucket store's size and evictions.
    public struct Store: Sendable, Hashable {
        public var keys: Int
        public var maximumKeys: Int
        public var shards: Int
        public var idleEvictions: Int
        public var pressureEvictions: Int

        init(_ store: BucketStore) {
            keys = store.keyCount
            maximumKeys = store.maximumKeys
            shards = store.shardCount
            idleEvictions = store.idleEvictions
            pressureEvictions = store.pressureEvictions
        }
    }

    /// The servers' counters.
    public var statistics: ServerStatistics.Snapshot
    /// The store.
    public var store: Store
    /// Policies in force.
    public var policies: Int
    /// The shared store's state, when global policies are possible.
    public var global: GlobalLimiterStatus?
    /// Envoy rate limit service decisions by domain: allowed (OK) and denied (OVER_LIMIT).
    public var rls: [OutcomeCounters.Counts]

    /// The share of global decisions answered without waiting for Redis, as `0.1234`.
    var globalLocalShare: String {
        guard let global else { return "0.0000" }
        let served = global.localDecisions + global.redisDecisions
        return served == 0 ? "0.0000" : String(Double(global.localDecisions) / Double(served))
    }
}
