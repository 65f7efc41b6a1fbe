/// The rate-limiting algorithms Sluice implements.
///
/// The raw values are the names used in configuration files and on the wire.
public enum Algorithm: String, Sendable, Hashable, CaseIterable {
    /// A bucket of `burst` tokens refilled at `limit` per `period` (GCRA, exact rational arithmetic).
    case tokenBucket = "token_bucket"
    /// The weighted two-window counter: the previous window counts in proportion to its overlap.
    case slidingWindow = "sliding_window"
    /// Windows aligned to multiples of `period` since the Unix epoch, each admitting `limit`.
    case fixedWindow = "fixed_window"
}
