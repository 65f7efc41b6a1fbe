extension Policy {
    /// A different limit for one key, or for every key that starts with a prefix (`partner:*`).
    ///
    /// An exact key beats the longest matching prefix, which beats the policy's own limit. The algorithm is the
    /// policy's; an override changes the numbers only.
    public struct Override: Sendable, Hashable {
        /// The key, or a prefix followed by `*` (the only place `*` may be).
        public let pattern: String
        /// The limit for the keys it matches.
        public let rateLimit: RateLimit

        /// The longest pattern, in bytes: as long as the longest key the servers accept by default.
        public static let maximumPatternBytes = 512

        /// Creates an override of `pattern` with `rateLimit`.
        ///
        /// - Throws: ``PolicyError`` with `.invalidOverride` for an empty or too long pattern, or a `*` anywhere
        ///   but at its end.
        public init(pattern: String, rateLimit: RateLimit) throws(PolicyError) {
            let bytes = pattern.utf8
            guard !bytes.isEmpty, bytes.count <= Self.maximumPatternBytes else {
                throw PolicyError(.invalidOverride, "an override's key must be 1 to \(Self.maximumPatternBytes) bytes, got \(bytes.count)")
            }
            guard !bytes.dropLast().contains(UInt8(ascii: "*")) else {
                throw PolicyError(.invalidOverride, "'*' may only end an override's key (a prefix, as in partner:*), got '\(pattern)'")
            }
            self.pattern = pattern
            self.rateLimit = rateLimit
        }

        /// Whether the pattern is a prefix (ends with `*`).
        public var isPrefix: Bool { pattern.utf8.last == UInt8(ascii: "*") }

        /// The bytes a key must equal (exact) or start with (prefix).
        var matchBytes: [UInt8] { Array(isPrefix ? pattern.utf8.dropLast() : pattern.utf8[...]) }
    }

    /// The limit an override of this policy has when it gives `limit`, and optionally `burst` and `period`:
    /// the policy's algorithm and period unless given; a token bucket's burst is the override's limit unless
    /// given (the capacity a reply reports).
    ///
    /// - Throws: ``PolicyError`` for numbers out of range, or a burst on a window algorithm.
    public func overrideLimit(limit: Int64, burst: Int64? = nil, periodNanoseconds: Int64? = nil) throws(PolicyError) -> RateLimit {
        if burst != nil, rateLimit.algorithm != .tokenBucket {
            throw PolicyError(.invalidBurst, "burst applies only to token_bucket; this policy is \(rateLimit.algorithm.rawValue)")
        }
        return try RateLimit(
            algorithm: rateLimit.algorithm, limit: limit, periodNanoseconds: periodNanoseconds ?? rateLimit.periodNanoseconds, burst: burst
        )
    }

    /// This policy with `overrides` in place of its own.
    public func with(overrides: [Override]) throws(PolicyError) -> Policy {
        try Policy(name: name, rateLimit: rateLimit, mode: mode, scope: scope, overrides: overrides)
    }
}

/// A policy's overrides, compiled for the decision path: exact keys in an open-addressing table keyed by the
/// bucket key the check computes anyway (so a key without an override costs one probe, no extra hashing), and
/// prefixes in a byte trie walked only as far as some prefix goes.
struct OverrideTable: Sendable {
    /// The overrides, in the policy's order.
    let overrides: [Policy.Override]
    /// Each override's bucket seed: the policy's seed mixed with the override's limit, so a key's bucket
    /// starts afresh when its override changes, and the policy's other keys keep theirs.
    let seeds: [UInt64]

    // Exact keys: (primary, secondary, override index + 1), 0 marking an empty slot.
    private let exactPrimary: [UInt64]
    private let exactSecondary: [UInt64]
    private let exactIndex: [Int32]
    private let exactMask: Int
    private let hasExact: Bool

    // Prefixes: node 0 is the root; its children by byte in `rootChildren`, other nodes' edges in
    // `edgeBytes`/`edgeTargets` from `edgeStart[node]` for `edgeCount[node]`.
    private let rootChildren: [Int32]
    private let edgeStart: [Int32]
    private let edgeCount: [Int32]
    private let edgeBytes: [UInt8]
    private let edgeTargets: [Int32]
    /// The override a node's prefix ends, or -1.
    private let terminal: [Int32]
    private let hasPrefixes: Bool

    /// Compiles `overrides` of the policy whose buckets are seeded with `policySeed`.
    init(_ overrides: [Policy.Override], policySeed: UInt64) {
        self.overrides = overrides
        seeds = overrides.map { override in
            var hasher = StableHasher(seed: policySeed)
            hasher.combine(override.rateLimit.fingerprint)
            return hasher.finalize()
        }

        let exact = overrides.indices.filter { !overrides[$0].isPrefix }
        var capacity = 8
        while capacity < exact.count * 2 { capacity *= 2 }
        var primary = [UInt64](repeating: 0, count: capacity)
        var secondary = [UInt64](repeating: 0, count: capacity)
        var index = [Int32](repeating: 0, count: capacity)
        for position in exact {
            var bytes = overrides[position].matchBytes
            let key = bytes.withUnsafeMutableBytes { BucketKey(seed: policySeed, bytes: UnsafeRawBufferPointer($0)) }
            var slot = Int(truncatingIfNeeded: key.primary) & (capacity - 1)
            while index[slot] != 0 { slot = (slot + 1) & (capacity - 1) }
            (primary[slot], secondary[slot], index[slot]) = (key.primary, key.secondary, Int32(position + 1))
        }
        (exactPrimary, exactSecondary, exactIndex, exactMask, hasExact) = (primary, secondary, index, capacity - 1, !exact.isEmpty)

        // The trie, built with dictionaries, then flattened.
        var children: [[UInt8: Int32]] = [[:]]
        var ends: [Int32] = [-1]
        for position in overrides.indices where overrides[position].isPrefix {
            var node = 0
            for byte in overrides[position].matchBytes {
                if let next = children[node][byte] {
                    node = Int(next)
                } else {
                    children.append([:])
                    ends.append(-1)
                    children[node][byte] = Int32(children.count - 1)
                    node = children.count - 1
                }
            }
            if ends[node] < 0 { ends[node] = Int32(position) }
        }
        var root = [Int32](repeating: -1, count: 256)
        for (byte, child) in children[0] { root[Int(byte)] = child }
        var starts = [Int32](repeating: 0, count: children.count)
        var counts = [Int32](repeating: 0, count: children.count)
        var bytes: [UInt8] = []
        var targets: [Int32] = []
        for node in children.indices.dropFirst() {
            starts[node] = Int32(bytes.count)
            counts[node] = Int32(children[node].count)
            for (byte, child) in children[node].sorted(by: { $0.key < $1.key }) {
                bytes.append(byte)
                targets.append(child)
            }
        }
        (rootChildren, edgeStart, edgeCount, edgeBytes, edgeTargets, terminal) = (root, starts, counts, bytes, targets, ends)
        hasPrefixes = ends.contains { $0 >= 0 }
    }

    /// The index of the override that applies to `key` (whose bucket key under the policy's seed is
    /// `bucket`): its exact override, else its longest matching prefix; nil when none does.
    @inline(__always)
    func match(key: UnsafeRawBufferPointer, bucket: BucketKey) -> Int? {
        if hasExact {
            var slot = Int(truncatingIfNeeded: bucket.primary) & exactMask
            while exactIndex[slot] != 0 {
                if exactPrimary[slot] == bucket.primary, exactSecondary[slot] == bucket.secondary { return Int(exactIndex[slot] - 1) }
                slot = (slot + 1) & exactMask
            }
        }
        return hasPrefixes ? longestPrefix(of: key) : nil
    }

    private func longestPrefix(of key: UnsafeRawBufferPointer) -> Int? {
        var best = terminal[0]
        guard let first = key.first else { return best >= 0 ? Int(best) : nil }
        var node = rootChildren[Int(first)]
        var position = 1
        while node >= 0 {
            if terminal[Int(node)] >= 0 { best = terminal[Int(node)] }
            guard position < key.count else { break }
            let byte = key[position]
            position += 1
            let start = Int(edgeStart[Int(node)])
            var next: Int32 = -1
            for edge in start..<start + Int(edgeCount[Int(node)]) where edgeBytes[edge] == byte {
                next = edgeTargets[edge]
                break
            }
            node = next
        }
        return best >= 0 ? Int(best) : nil
    }
}
