public import Histogram

/// Replies by what they said, and errors by kind (counted apart from denials).
public struct BenchCounts: Sendable, Equatable {
    public var allowed: Int = 0
    public var denied: Int = 0
    /// Error replies: RESP errors, HTTP statuses other than 200 and the deny status, gRPC errors.
    public var errorReplies: Int = 0
    /// Requests without a reply within the timeout (their connection is then reopened).
    public var timeouts: Int = 0
    /// Connection attempts refused or failed (not requests).
    public var refused: Int = 0
    /// Requests in flight on a connection the server closed.
    public var closed: Int = 0
    /// Replies that could not be read (their connection is dropped).
    public var protocolErrors: Int = 0

    public init() {}

    /// Every error of every kind.
    public var errors: Int { errorReplies + timeouts + refused + closed + protocolErrors }
    /// Allowed and denied: the decisions.
    public var decisions: Int { allowed + denied }

    public static func += (left: inout BenchCounts, right: BenchCounts) {
        left.allowed += right.allowed
        left.denied += right.denied
        left.errorReplies += right.errorReplies
        left.timeouts += right.timeouts
        left.refused += right.refused
        left.closed += right.closed
        left.protocolErrors += right.protocolErrors
    }
}

/// Latencies (nanoseconds, HdrHistogram with three significant digits) and counts, for the whole run and for
/// the current progress interval. Confined to one event loop (or behind a lock).
final class BenchRecorder {
    /// Latencies above this (a minute) are recorded as a minute.
    static let highestLatency: UInt64 = 60_000_000_000

    /// Latencies of the intervals taken so far; the current one is in `interval` (one record per reply).
    private var taken = BenchRecorder.histogram()
    private var interval = BenchRecorder.histogram()
    private(set) var counts = BenchCounts()
    private var intervalCounts = BenchCounts()

    static func histogram() -> Histogram<UInt64> {
        Histogram(lowestDiscernibleValue: 1, highestTrackableValue: highestLatency, numberOfSignificantValueDigits: .three)
    }

    /// A reply, `nanoseconds` after its request was sent (or, in an open-loop run, was due).
    func record(nanoseconds: Int64, _ outcome: ReplyOutcome) {
        let value = UInt64(clamping: max(nanoseconds, 1))
        _ = interval.record(min(value, Self.highestLatency))
        switch outcome {
        case .allowed: counts.allowed += 1; intervalCounts.allowed += 1
        case .denied: counts.denied += 1; intervalCounts.denied += 1
        case .errorReply: counts.errorReplies += 1; intervalCounts.errorReplies += 1
        }
    }

    /// Errors that are not replies.
    func count(_ update: (inout BenchCounts) -> Void) {
        update(&counts)
        update(&intervalCounts)
    }

    /// Every latency recorded.
    var total: Histogram<UInt64> {
        var all = taken
        all.add(interval)
        return all
    }

    /// The interval since the last call: its counts and latencies, then both start again.
    func takeInterval() -> (counts: BenchCounts, latencies: Histogram<UInt64>) {
        defer {
            taken.add(interval)
            intervalCounts = BenchCounts()
            interval.reset()
        }
        return (intervalCounts, interval)
    }
}
