public import Histogram

/// What a run measured.
public struct BenchReport: Sendable {
    public let plan: BenchPlan
    public let counts: BenchCounts
    public let latencies: Histogram<UInt64>
    /// From the first connection attempt to the last reply (or to giving up).
    public let elapsedNanoseconds: Int64

    public init(plan: BenchPlan, counts: BenchCounts, latencies: Histogram<UInt64>, elapsedNanoseconds: Int64) {
        self.plan = plan
        self.counts = counts
        self.latencies = latencies
        self.elapsedNanoseconds = elapsedNanoseconds
    }

    /// Decisions (allowed and denied) per second.
    public var throughput: Double {
        elapsedNanoseconds > 0 ? Double(counts.decisions) * 1e9 / Double(elapsedNanoseconds) : 0
    }

    /// The latency at `percentile` (0 to 100) in milliseconds; 0 without replies.
    public func milliseconds(atPercentile percentile: Double) -> Double {
        latencies.totalCount == 0 ? 0 : Double(latencies.valueAtPercentile(percentile)) / 1e6
    }

    public var maximumMilliseconds: Double { latencies.totalCount == 0 ? 0 : Double(latencies.max) / 1e6 }

    /// The percentiles reported, by their JSON names.
    static let percentiles: [(name: String, label: String, value: Double)] = [
        ("p50", "50%", 50), ("p90", "90%", 90), ("p99", "99%", 99), ("p999", "99.9%", 99.9),
    ]

    /// The report for people.
    public var text: String {
        var lines: [String] = []
        let seconds = Double(elapsedNanoseconds) / 1e9
        lines.append("target       \(plan.target)  (\(describeLoad))")
        lines.append("throughput   \(Self.format(throughput, decimals: 0)) decisions/s over \(Self.format(seconds, decimals: 2)) s")
        lines.append(
            "latency ms   "
                + Self.percentiles.map { "\($0.label) \(Self.format(milliseconds(atPercentile: $0.value), decimals: 3))" }.joined(separator: "  ")
                + "  max \(Self.format(maximumMilliseconds, decimals: 3))"
        )
        lines.append("decisions    allowed \(counts.allowed)  denied \(counts.denied)")
        lines.append(
            "errors       \(counts.errors)  (error replies \(counts.errorReplies), timeouts \(counts.timeouts), "
                + "refused connections \(counts.refused), closed in flight \(counts.closed), unreadable replies \(counts.protocolErrors))"
        )
        return lines.joined(separator: "\n")
    }

    var describeLoad: String {
        var parts = ["\(plan.connections) connections", "pipeline \(plan.pipeline)"]
        switch plan.length {
        case .requests(let count): parts.append("\(count) requests")
        case .duration(let nanoseconds): parts.append("\(Self.format(Double(nanoseconds) / 1e9, decimals: 1)) s")
        }
        parts.append(plan.rate.map { "open loop at \(Self.format($0, decimals: 0))/s" } ?? "closed loop")
        parts.append("\(plan.keys) keys \(plan.distribution)")
        return parts.joined(separator: ", ")
    }

    /// The report for machines: one JSON object.
    public var json: String {
        let latency = Self.percentiles.map { "\"\($0.name)\": \(Self.number(milliseconds(atPercentile: $0.value)))" }
            + ["\"max\": \(Self.number(maximumMilliseconds))", "\"mean\": \(Self.number(latencies.totalCount == 0 ? 0 : latencies.mean / 1e6))"]
        let rate = plan.rate.map { Self.number($0) } ?? "null"
        let fields = [
            "\"target\": \(Self.quoted(plan.target.description))",
            "\"connections\": \(plan.connections)",
            "\"pipeline\": \(plan.pipeline)",
            "\"rate\": \(rate)",
            "\"keys\": \(plan.keys)",
            "\"distribution\": \(Self.quoted(plan.distribution.description))",
            "\"seconds\": \(Self.number(Double(elapsedNanoseconds) / 1e9))",
            "\"throughput\": \(Self.number(throughput))",
            "\"latency_ms\": {\(latency.joined(separator: ", "))}",
            "\"allowed\": \(counts.allowed)",
            "\"denied\": \(counts.denied)",
            "\"errors\": \(counts.errors)",
            "\"errors_by_kind\": {\"error_replies\": \(counts.errorReplies), \"timeouts\": \(counts.timeouts), "
                + "\"refused\": \(counts.refused), \"closed\": \(counts.closed), \"unreadable\": \(counts.protocolErrors)}",
        ]
        return "{" + fields.joined(separator: ", ") + "}"
    }

    /// A JSON number: finite, at most six decimals.
    static func number(_ value: Double) -> String {
        guard value.isFinite else { return "0" }
        let rounded = (value * 1e6).rounded() / 1e6
        return rounded == rounded.rounded() && abs(rounded) < 1e15 ? String(Int64(rounded)) : String(rounded)
    }

    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20: out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// `value` with `decimals` digits after the point and thousands separated by commas.
    static func format(_ value: Double, decimals: Int) -> String {
        guard value.isFinite else { return "0" }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = Int64((value * scale).rounded())
        let whole = scaled / Int64(scale)
        var digits = String(whole.magnitude)
        var grouped = ""
        while digits.count > 3 {
            grouped = "," + digits.suffix(3) + grouped
            digits.removeLast(3)
        }
        grouped = (whole < 0 || (whole == 0 && scaled < 0) ? "-" : "") + digits + grouped
        guard decimals > 0 else { return grouped }
        let fraction = String((scaled % Int64(scale)).magnitude)
        return grouped + "." + String(repeating: "0", count: decimals - fraction.count) + fraction
    }
}
