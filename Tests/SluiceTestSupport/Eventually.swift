/// Polls `condition` every `interval` until it holds or `limit` of wall time has passed; returns whether it held.
/// The limit is wall time, not a count of polls: on a starved machine each sleep may last far longer than asked.
@discardableResult
public func eventually(_ limit: Duration = .seconds(10), every interval: Duration = .milliseconds(100), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: interval)
    }
    return condition()
}
