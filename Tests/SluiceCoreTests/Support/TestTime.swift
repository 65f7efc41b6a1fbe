/// Time constants for tests, in nanoseconds.
enum TestTime {
    /// The `ManualClock` default start: 2026-01-01T00:00:00Z.
    static let start: Int64 = 1_767_225_600_000_000_000
    static let millisecond: Int64 = 1_000_000
    static let second: Int64 = 1_000_000_000
    static let minute: Int64 = 60 * second
    static let hour: Int64 = 60 * minute
    static let day: Int64 = 24 * hour
}
