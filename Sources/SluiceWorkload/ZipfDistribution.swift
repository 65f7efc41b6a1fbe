import Glibc

/// Ranks 0..<count with probability proportional to 1 / (rank + 1)^exponent, by inverting the cumulative sum.
public struct ZipfDistribution: Sendable {
    private let cumulative: [Double]

    /// Ranks `0..<count` (at least one) weighted by `1 / (rank + 1)^exponent`.
    public init(count: Int, exponent: Double) {
        var sum = 0.0
        cumulative = (1...count).map { rank in
            sum += 1.0 / pow(Double(rank), exponent)
            return sum
        }
    }

    /// A rank drawn from the distribution.
    public func sample(using generator: inout some RandomNumberGenerator) -> Int {
        let target = Double.random(in: 0..<cumulative[cumulative.count - 1], using: &generator)
        var low = 0
        var high = cumulative.count - 1
        while low < high {
            let middle = (low + high) / 2
            if cumulative[middle] > target { high = middle } else { low = middle + 1 }
        }
        return low
    }
}
