/// Parsing and printing of the durations that appear in configuration and on the wire (`250ms`, `1s`, `1m`, `1h`, `1d`).
public enum PolicyDuration {
    /// The units a duration may carry, in nanoseconds.
    static let units: [(suffix: String, nanoseconds: Int64)] = [
        ("ms", 1_000_000), ("s", 1_000_000_000), ("m", 60_000_000_000), ("h", 3_600_000_000_000),
        ("d", 86_400_000_000_000),
    ]

    /// Parses a duration such as `250ms`, `1s`, `10m`, `1h` or `1d`.
    ///
    /// - Parameter text: a positive integer followed by one of `ms`, `s`, `m`, `h`, `d`.
    /// - Returns: the duration in nanoseconds.
    /// - Throws: ``PolicyError`` with code `.invalidDuration` for anything else (no unit, a fraction, a sign, zero, overflow).
    public static func parseNanoseconds(_ text: String) throws(PolicyError) -> Int64 {
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        let suffix = text.dropFirst(digits.count)
        // All ASCII digits that Int64 cannot hold: an overflow, not a malformed duration.
        if !digits.isEmpty, units.contains(where: { $0.suffix == suffix }), Int64(digits) == nil {
            throw PolicyError(.invalidDuration, "'\(text)' is too long a duration")
        }
        guard !digits.isEmpty, let unit = units.first(where: { $0.suffix == suffix }), let value = Int64(digits), value > 0
        else {
            throw PolicyError(
                .invalidDuration,
                "'\(text)' is not a duration; use a positive integer with a unit: 250ms, 1s, 1m, 1h or 1d"
            )
        }
        let (nanoseconds, overflow) = value.multipliedReportingOverflow(by: unit.nanoseconds)
        guard !overflow else { throw PolicyError(.invalidDuration, "'\(text)' is too long a duration") }
        return nanoseconds
    }

    /// Renders nanoseconds in the largest unit that divides them exactly (`60000000000` → `1m`).
    public static func format(nanoseconds: Int64) -> String {
        for unit in units.reversed() where nanoseconds % unit.nanoseconds == 0 {
            return "\(nanoseconds / unit.nanoseconds)\(unit.suffix)"
        }
        return "\(nanoseconds)ns"
    }
}
