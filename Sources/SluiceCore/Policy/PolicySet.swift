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
    /// Each policy's overrides, compiled; nil for a policy without any, which then costs nothing more.
    let overrideTables: [OverrideTable?]
    /// What ``check(policy:key:cost:)`` reads of a policy, by index, apart from the policies themselves: read
    /// from `policies`, the whole policy (and an override table) was copied to the stack on every check.
    private let rateLimits: [RateLimit]
    private let modes: [Policy.Mode]
    private let hasOverrides: [Bool]
    /// Each policy's decision counters (``PolicyCounters``), by index, then the inline limits' cell; unretained, so
    /// that counting retains and releases no cell per decision: ``decisionCounters``, which this set holds, keeps
    /// every cell it made for its own life.
    private let counters: [Unmanaged<PolicyCounters.Cell>]
    /// Where ``counters`` come from (``PolicyCounters/shared`` unless a test gives its own), for reporting.
    public let decisionCounters: PolicyCounters

    /// Creates a set.
    ///
    /// - Parameters:
    ///   - policies: policies with distinct names.
    ///   - counters: where decisions are counted by policy name.
    /// - Throws: ``PolicyError`` with `.invalidName` for a duplicate name.
    public init(_ policies: [Policy], counters: PolicyCounters = .shared) throws(PolicyError) {
        var seen = Set<String>()
        for policy in policies where !seen.insert(policy.name).inserted {
            throw PolicyError(.invalidName, "policy '\(policy.name)' is defined twice")
        }
        self.policies = policies
        self.seeds = policies.map(\.bucketSeed)
        self.nameBytes = policies.map { Array($0.name.utf8) }
        self.isGlobal = policies.map { $0.global != nil }
        self.hasGlobal = isGlobal.contains(true)
        self.overrideTables = zip(policies, seeds).map { policy, seed in
            policy.overrides.isEmpty ? nil : OverrideTable(policy.overrides, policySeed: seed)
        }
        self.rateLimits = policies.map(\.rateLimit)
        self.modes = policies.map(\.mode)
        self.hasOverrides = policies.map { !$0.overrides.isEmpty }
        self.decisionCounters = counters
        self.counters = (policies.map { counters.cell($0.name) } + [counters.inline]).map { Unmanaged.passUnretained($0) }
    }

    /// Counts `decision` under its policy (an inline limit's under ``PolicyCounters/inlineName``).
    @inline(__always)
    public func count(_ decision: Decision) {
        let index = Int(decision.policyIndex)
        let cell = counters[index >= 0 && index < policies.count ? index : policies.count]
        cell._withUnsafeGuaranteedRef { $0.count(decision) }
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

    /// A check of `cost` against policy `index` for `key`'s bytes, under the override for `key` if the policy
    /// has one (its limit, and a bucket of its own).
    @inline(__always)
    public func check(policy index: Int, key: UnsafeRawBufferPointer, cost: Int64) -> Check {
        let bucket = BucketKey(seed: seeds[index], bytes: key)
        if hasOverrides[index], let overridden = overriddenCheck(policy: index, key: key, bucket: bucket, cost: cost) {
            return overridden
        }
        return Check(rateLimit: rateLimits[index], mode: modes[index], policyIndex: Int32(index), key: bucket, cost: cost)
    }

    /// The check under the override that `key` matches, if any.
    @inline(never)
    private func overriddenCheck(policy index: Int, key: UnsafeRawBufferPointer, bucket: BucketKey, cost: Int64) -> Check? {
        guard let table = overrideTables[index], let match = table.match(key: key, bucket: bucket) else { return nil }
        return Check(
            rateLimit: table.overrides[match].rateLimit, mode: modes[index], policyIndex: Int32(index),
            key: BucketKey(seed: table.seeds[match], bytes: key), cost: cost
        )
    }

    /// The override that applies to `key` under policy `index`, if any (for the admin API and tests).
    public func override(policy index: Int, key: String) -> Policy.Override? {
        guard let table = overrideTables[index] else { return nil }
        var key = key
        return key.withUTF8 { bytes in
            let raw = UnsafeRawBufferPointer(bytes)
            return table.match(key: raw, bucket: BucketKey(seed: seeds[index], bytes: raw)).map { table.overrides[$0] }
        }
    }
}
