import Synchronization

/// Decisions counted by a label and their outcome, for reporting: RLS decisions by domain. The labels come
/// from configuration, so their number is bounded; the caller maps anything else to one shared label.
public final class OutcomeCounters: Sendable {
    /// One label's counts.
    public struct Counts: Sendable, Hashable {
        public var label: String
        public var allowed: Int
        public var denied: Int
    }

    private let counts = Locked<[String: (allowed: Int, denied: Int)]>([:])

    /// Creates empty counters.
    public init() {}

    /// Counts one decision under `label`.
    public func count(_ label: String, allowed: Bool) {
        counts.withLock { counts in
            var entry = counts[label] ?? (0, 0)
            if allowed { entry.allowed += 1 } else { entry.denied += 1 }
            counts[label] = entry
        }
    }

    /// Every label's counts, sorted by label.
    public func snapshot() -> [Counts] {
        counts.withLock { counts in
            counts.map { Counts(label: $0.key, allowed: $0.value.allowed, denied: $0.value.denied) }.sorted { $0.label < $1.label }
        }
    }
}
