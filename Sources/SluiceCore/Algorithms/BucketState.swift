import Synchronization

/// The 128 bits one bucket occupies in the store, as the algorithms see them.
///
/// - `generation` (16 bits): bumped each time the store gives the slot to another key, so a decision
///   racing with an eviction notices the change in its compare-and-exchange.
/// - `counters` (48 bits): the token bucket's fractional time (units of 1/limit ns); the fixed window's
///   count; the sliding window's current count (low 24 bits) and previous count (high 24 bits).
/// - `horizon` (64 bits): the instant (ns since the epoch) after which the bucket is certainly full
///   again: the token bucket's theoretical arrival time, the fixed window's end, and the end of the
///   window after the sliding window's current one. The store evicts by comparing it with now, without
///   knowing the algorithm.
public struct BucketState: Sendable, Hashable {
    static let counterMask: UInt64 = (1 << 48) - 1

    /// The slot generation (16 bits).
    public var generation: UInt16
    /// Algorithm counters (48 bits).
    public var counters: UInt64
    /// When the bucket is full again at the latest.
    public var horizon: Int64

    /// A full (fresh) bucket.
    public static var full: BucketState { BucketState(generation: 0, counters: 0, horizon: 0) }


    public init(generation: UInt16, counters: UInt64, horizon: Int64) {
        self.generation = generation
        self.counters = counters & Self.counterMask
        self.horizon = horizon
    }


    init(_ words: WordPair) {
        generation = UInt16(truncatingIfNeeded: UInt64(words.first) >> 48)
        counters = UInt64(words.first) & Self.counterMask
        horizon = Int64(truncatingIfNeeded: words.second)
    }


    var words: WordPair {
        WordPair(first: UInt(UInt64(generation) << 48 | counters), second: UInt(bitPattern: Int(horizon)))
    }

    /// The same bucket contents with `generation` taken from `other`.
    func with(generation: UInt16) -> BucketState {
        var copy = self
        copy.generation = generation
        return copy
    }
}
