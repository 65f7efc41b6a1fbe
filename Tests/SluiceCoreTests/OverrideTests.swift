import SluiceCore
import SluiceWorkload
import Testing

/// Per-key overrides: an exact key beats the longest matching prefix, which beats the policy.
struct OverrideTests {
    static func tokenBucket(_ limit: Int64, burst: Int64? = nil) throws -> RateLimit {
        try RateLimit(algorithm: .tokenBucket, limit: limit, periodNanoseconds: TestTime.second, burst: burst)
    }

    static func policy(_ overrides: [(String, Int64)]) throws -> Policy {
        let base = try Policy(name: "api", rateLimit: tokenBucket(100))
        return try base.with(overrides: overrides.map { pattern, limit in
            try Policy.Override(pattern: pattern, rateLimit: try base.overrideLimit(limit: limit))
        })
    }

    /// The limit a check of `key` gets.
    static func limit(_ set: PolicySet, _ key: String) -> Int64 {
        var key = key
        return key.withUTF8 { set.check(policy: 0, key: UnsafeRawBufferPointer($0), cost: 1).rateLimit.limit }
    }

    @Test func exactBeatsTheLongestPrefixWhichBeatsThePolicy() throws {
        let set = try PolicySet([Self.policy([("partner:*", 500), ("partner:acme:*", 700), ("partner:acme:vip", 900), ("user:vip", 1000), ("*", 5)])])
        #expect(Self.limit(set, "partner:acme:vip") == 900)
        #expect(Self.limit(set, "partner:acme:vipx") == 700)
        #expect(Self.limit(set, "partner:acme:") == 700)
        #expect(Self.limit(set, "partner:acme") == 500)
        #expect(Self.limit(set, "partner:") == 500)
        #expect(Self.limit(set, "partner") == 5, "'*' alone matches every key")
        #expect(Self.limit(set, "user:vip") == 1000)
        #expect(Self.limit(set, "user:vip2") == 5)
        let plain = try PolicySet([Self.policy([("partner:*", 500), ("user:vip", 1000)])])
        #expect(Self.limit(plain, "user:42") == 100)
        #expect(Self.limit(plain, "p") == 100)
        #expect(Self.limit(plain, "") == 100)
    }

    @Test func anOverriddenKeyHasABucketOfItsOwnAndThePolicySeedIsUnchanged() throws {
        let without = try PolicySet([Self.policy([])])
        let with = try PolicySet([Self.policy([("user:vip", 1000)])])
        #expect(without.seeds == with.seeds, "adding an override keeps every other key's bucket")
        var key = "user:vip"
        let (plain, overridden) = key.withUTF8 { bytes in
            (without.check(policy: 0, key: UnsafeRawBufferPointer(bytes), cost: 1), with.check(policy: 0, key: UnsafeRawBufferPointer(bytes), cost: 1))
        }
        #expect(plain.key != overridden.key)
        #expect(overridden.rateLimit.burst == 1000, "a token bucket override of limit only has that limit as its burst")
        var other = "user:1"
        let (a, b) = other.withUTF8 { bytes in
            (without.check(policy: 0, key: UnsafeRawBufferPointer(bytes), cost: 1), with.check(policy: 0, key: UnsafeRawBufferPointer(bytes), cost: 1))
        }
        #expect(a == b)
        #expect(with.override(policy: 0, key: "user:vip")?.pattern == "user:vip")
        #expect(with.override(policy: 0, key: "user:1") == nil)
    }

    @Test(arguments: [
        ("", "1 to 512 bytes"), ("a*b", "'*' may only end"), ("**", "'*' may only end"), (String(repeating: "k", count: 513), "1 to 512 bytes"),
    ])
    func badPatternsAreRefused(pattern: String, message: String) throws {
        #expect {
            try Policy.Override(pattern: pattern, rateLimit: try Self.tokenBucket(1))
        } throws: { ($0 as? PolicyError)?.code == .invalidOverride && "\($0)".contains(message) }
    }

    @Test func anOverrideOfAnotherAlgorithmTwiceOrWithABurstOnAWindowIsRefused() throws {
        let base = try Policy(name: "api", rateLimit: Self.tokenBucket(100))
        let window = try Policy.Override(pattern: "k", rateLimit: RateLimit(algorithm: .fixedWindow, limit: 5, periodNanoseconds: TestTime.second))
        #expect(throws: PolicyError.self) { try base.with(overrides: [window]) }
        let twice = try Policy.Override(pattern: "k", rateLimit: Self.tokenBucket(5))
        #expect(throws: PolicyError.self) { try base.with(overrides: [twice, twice]) }
        let fixed = try Policy(name: "w", rateLimit: RateLimit(algorithm: .fixedWindow, limit: 5, periodNanoseconds: TestTime.second))
        #expect(throws: PolicyError.self) { try fixed.overrideLimit(limit: 10, burst: 20) }
        #expect(try fixed.overrideLimit(limit: 10, periodNanoseconds: 60 * TestTime.second).periodNanoseconds == 60 * TestTime.second)
    }

    @Test("1,000 random overrides agree with the rule read literally")
    func randomOverridesMatchTheReference() throws {
        var random = SplitMix64(seed: 42)
        let alphabet = Array("ab:".utf8)
        func word(_ length: Int) -> String {
            String(decoding: (0..<length).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] }, as: UTF8.self)
        }
        var patterns: [(String, Int64)] = []
        var seen = Set<String>()
        while patterns.count < 1_000 {
            let pattern = word(1 + Int(random.next() % 7)) + (random.next() % 2 == 0 ? "*" : "")
            if seen.insert(pattern).inserted { patterns.append((pattern, Int64(patterns.count + 1))) }
        }
        let set = try PolicySet([Self.policy(patterns)])
        for _ in 0..<5_000 {
            let key = word(Int(random.next() % 9))
            let exact = patterns.first { $0.0 == key }
            let prefix = patterns.filter { $0.0.hasSuffix("*") && key.hasPrefix(String($0.0.dropLast())) }.max { $0.0.count < $1.0.count }
            let expected = exact?.1 ?? prefix?.1 ?? 100
            #expect(Self.limit(set, key) == expected, "key '\(key)'")
        }
    }
}
