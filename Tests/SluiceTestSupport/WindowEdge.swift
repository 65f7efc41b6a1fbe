import Foundation

/// Waits, when less than `margin` is left of the current window of `period`, until just past its end.
///
/// Fixed windows (Sluice's, Redis's scripts', envoyproxy/ratelimit's) are aligned to the wall clock's minutes,
/// hours and days: a count a test makes across an edge starts over halfway (seen: a third call allowed after two
/// under a limit of two per minute). A test that counts against such a window calls this first, with a margin
/// longer than it takes.
public func awayFromWindowEdge(period: Duration, margin: Duration) async throws {
    let periodSeconds = Double(period.components.seconds)
    let left = Duration.seconds(periodSeconds - Date().timeIntervalSince1970.truncatingRemainder(dividingBy: periodSeconds))
    if left < margin { try await Task.sleep(for: left + .milliseconds(200)) }
}
