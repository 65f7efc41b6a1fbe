/// An immutable set of named policies, looked up by name on the decision path.
public final class PolicySet: Sendable {
    /// The policies, in configuration order.
    public let policies: [Policy]
    /// Each policy's bucket seed, by index.
    public let seeds: [UInt64]
    private let nameBytes: [[UInt8]]
    /// Whether each policy, by index, is global: the one test the decision path makes before deciding locally.
    public let isGlobal: [Bool]
    /// Whether any policy is global.
    public let hasGlobal: Bool

    /// Creates a set.
    ///
    /// - Parameter policies: policies with distinct names.
    /// - Throws: ``PolicyError`` with `.invalidName` for a duplicate name.
    public init(_ policies: [Policy]) throws(PolicyError) {
        var seen = Set<String>()
        for policy in policies where !seen.insert(policy.name).inserted {
            throw PolicyError(.invalidName, "policy '\(policy.name)' is defined twice")
        }
        self.policies = policies
        self.seeds = policies.map(\.bucketSeed)
        self.nameBytes = policies.map { Array($0.name.utf8) }
        self.isGlobal = policies.map { $0.global != nil }
        self.hasGlobal = isGlobal.contains(true)
    }

    /// The index of the policy named by `bytes`, or nil.
    ///
    /// - Complexity: O(n) in the number of policies, comparing lengths first; a handful of policies is the
    ///   common case, where this beats hashing the name.
    public func index(ofName bytes: UnsafeRawBufferPointer) -> Int? {
        for (index, name) in nameBytes.enumerated() where name.count == bytes.count {
            if name.withUnsafeBytes({ $0.elementsEqual(bytes) }) { return index }
        }
        return nil
    }

    /// The index of the policy named `name`, or nil.
    public func index(ofName name: String) -> Int? {
        var name = name
        return name.withUTF8 { index(ofName: UnsafeRawBufferPointer($0)) }
    }

    /// A check of `cost` against policy `index` for `key`'s bytes.
    public func check(policy index: Int, key: UnsafeRawBufferPointer, cost: Int64) -> Check {
        let policy = policies[index]
        return Check(
            rateLimit: policy.rateLimit, mode: policy.mode, policyIndex: Int32(index),
            key: BucketKey(seed: seeds[index], bytes: key), cost: cost
        )
    }
}
