@testable import SluiceCore
import Testing

/// `RateLimit.quotient(dividingByPeriod:)`: the 64-bit division and the estimate-and-correct path both give
/// exactly `floor(dividend / period)`, on each side of 2^64 where one hands over to the other.
struct QuotientTests {
    static let periods: [Int64] = [1_000_000, 1_000_000_000, 7 * 86_400_000_000_000, RateLimit.maximumPeriodNanoseconds]

    /// Dividends whose quotient is below 2^48, as every caller's is (whole tokens ≤ burst < 2^32, a weighted count ≤ 2^24).
    static func dividends(for period: Int64) -> [Int128] {
        let edge = Int128(1) << 64
        let divisor = Int128(period)
        var values: [Int128] = [0, 1, divisor - 1, divisor, divisor + 1, edge - 1, edge, edge + 1, edge - divisor, edge + divisor]
        // Deterministic spread: quotients of every magnitude below 2^48, remainders across the period.
        var state: UInt64 = 0x5EED
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state
        }
        for _ in 0..<2_000 {
            let quotient = Int128(next() >> 16) >> Int(next() % 48)
            let remainder = Int128(next() % UInt64(period))
            values.append(quotient * divisor + remainder)
        }
        return values.filter { $0 / divisor < Int128(1) << 48 }
    }

    @Test(arguments: periods)
    func quotientIsTheFloorOfTheDivision(period: Int64) throws {
        let limit = try RateLimit(algorithm: .tokenBucket, limit: 1, periodNanoseconds: period)
        for dividend in Self.dividends(for: period) {
            #expect(limit.quotient(dividingByPeriod: dividend) == Int64(dividend / Int128(period)), "\(dividend) / \(period)")
        }
    }
}
