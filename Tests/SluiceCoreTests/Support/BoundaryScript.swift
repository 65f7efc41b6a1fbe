import SluiceCore

/// One scripted request: move the clock, ask, and the exact answer expected.
struct ScriptStep: Sendable {
    var advance: Int64 = 0
    var cost: Int64 = 1
    var consume = true
    var outcome: Decision.Outcome
    var remaining: Int64
    var resetAfter: Int64
    var retryAfter: Int64 = 0
}

/// A named sequence of steps against one fresh bucket, for boundary tables.
struct BoundaryScript: Sendable, CustomStringConvertible {
    var name: String
    var algorithm: Algorithm
    var limit: Int64
    var period: Int64
    var burst: Int64? = nil
    /// Where the clock starts, relative to 2026-01-01T00:00:00Z.
    var startOffset: Int64 = 0
    var steps: [ScriptStep]

    var description: String { name }

    func rateLimit() throws -> RateLimit {
        try RateLimit(algorithm: algorithm, limit: limit, periodNanoseconds: period, burst: burst)
    }

    /// Runs every step through `path`, checking each answer in full.
    func run(path: BucketDriver.Path) throws -> [(step: Int, expected: ExpectedDecision, actual: ExpectedDecision)] {
        let driver = BucketDriver(try rateLimit(), path: path, start: TestTime.start + startOffset)
        var mismatches: [(step: Int, expected: ExpectedDecision, actual: ExpectedDecision)] = []
        for (index, step) in steps.enumerated() {
            driver.advance(step.advance)
            let decision = driver.decide(cost: step.cost, consume: step.consume)
            let expected = ExpectedDecision(
                outcome: step.outcome, remaining: step.remaining,
                resetAfterNanoseconds: step.resetAfter, retryAfterNanoseconds: step.retryAfter
            )
            let actual = ExpectedDecision(decision)
            if actual != expected { mismatches.append((index, expected, actual)) }
        }
        return mismatches
    }
}

/// A limit to put through the generic boundary checks.
struct LimitCase: Sendable, CustomStringConvertible {
    var algorithm: Algorithm
    var limit: Int64
    var period: Int64
    var burst: Int64? = nil
    var startOffset: Int64 = 0

    var description: String {
        "\(algorithm.rawValue) \(limit) per \(PolicyDuration.format(nanoseconds: period))"
            + (burst.map { " burst \($0)" } ?? "") + (startOffset == 0 ? "" : " +\(startOffset)ns")
    }

    func rateLimit() throws -> RateLimit {
        try RateLimit(algorithm: algorithm, limit: limit, periodNanoseconds: period, burst: burst)
    }
}
