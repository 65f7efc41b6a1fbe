extension SluiceConfiguration {
    /// The in-memory bucket store: the `store` section.
    ///
    /// The store allocates its slots up front (32 bytes each, 43 to 86 bytes per configured key), so
    /// `max_keys` decides the process's memory: about 41 MiB of slots for the default million keys, reserved at start and resident as keys arrive.
    ///
    /// ```yaml
    /// store:
    ///   max_keys: 1000000   # live buckets before the least useful are evicted
    ///   shards: 64          # a power of two; more shards, less contention on inserts
    /// ```
    public struct Store: Sendable, Hashable {
        /// The largest `max_keys`: a billion keys already takes 43 to 86 GB.
        public static let maximumMaxKeys = 1_000_000_000
        /// The largest shard count the store supports.
        public static let maximumShards = 65_536

        /// `store.max_keys`: the bound on live buckets, 1 through ``maximumMaxKeys``; default 1,000,000.
        public var maxKeys: Int
        /// `store.shards`: the number of shards, a power of two from 1 through ``maximumShards``; default 64.
        public var shards: Int

        /// Creates the store settings.
        ///
        /// - Parameters:
        ///   - maxKeys: the bound on live buckets; default 1,000,000.
        ///   - shards: a power of two; default 64.
        public init(maxKeys: Int = 1_000_000, shards: Int = 64) {
            self.maxKeys = maxKeys
            self.shards = shards
        }

        /// Each field out of range, with what is wrong; empty when valid.
        func problems() -> [(field: String, message: String)] {
            var problems: [(field: String, message: String)] = []
            if !(1...Self.maximumMaxKeys).contains(maxKeys) {
                problems.append(("max_keys", "must be an integer from 1 to \(Self.maximumMaxKeys), got \(maxKeys)"))
            }
            if !(1...Self.maximumShards).contains(shards) || shards & (shards - 1) != 0 {
                problems.append(
                    ("shards", "must be a power of two from 1 to \(Self.maximumShards) (1, 2, 4, … 64, …), got \(shards)")
                )
            }
            return problems
        }
    }
}
