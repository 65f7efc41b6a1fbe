public import SluiceConfig
public import SluiceCore

/// One entry of a request descriptor.
public struct DescriptorEntry: Sendable, Hashable {
    public var key: String
    public var value: String

    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}

/// The envoyproxy/ratelimit domains, compiled for lookups: which limit a request descriptor gets.
///
/// Matching follows envoyproxy/ratelimit exactly. Entry `i` of a descriptor is matched against level `i` of
/// the tree (under the node entry `i - 1` matched): an exact `key`+`value` first, then the first wildcard
/// value that matches (file order; each `*` matches any run of characters, the empty one included), then the
/// `key` alone. There is no backtracking: once a level picks a node, deeper entries are looked up only under
/// it. A limit applies only when the node carrying it is matched by the descriptor's **last** entry, so a
/// descriptor of N entries matches only a limit nested N levels deep.
///
/// Each limit becomes a policy of one ``PolicySet`` (named `rls:<domain>:<id>`, the id stable while the
/// descriptor's place in the tree is), so global limits go through the same all-or-nothing rule and the same
/// Redis code as every other policy, and a reload keeps the buckets of unchanged limits.
public final class DescriptorMatcher: Sendable {
    /// A compiled limit.
    public struct Limit: Sendable {
        /// As configured.
        public let configuration: RLSLimit
        /// `shadow_mode` of its descriptor.
        public let shadowMode: Bool
        /// Its policy in ``DescriptorMatcher/policies``; nil when unlimited or when `requests_per_unit` is 0.
        public let policyIndex: Int?
    }

    /// What one request descriptor matched.
    public struct Match: Sendable {
        /// The limit.
        public let limit: Limit
        /// The bucket's key: the descriptor's values joined by U+001F (a `share_threshold` wildcard contributes
        /// its pattern instead of the value, so every value it matches shares one bucket).
        public let key: [UInt8]
    }

    private struct Node: Sendable {
        var limit: Int?
        /// Children by `key` or `key_value`.
        var children: [String: Int] = [:]
        /// Children whose value holds a `*`: the pattern `key_value` split at each `*`, in file order.
        var wildcards: [(parts: [Substring], node: Int)] = []
        /// The node's value, when it is a `share_threshold` wildcard: the bucket key uses it for every value.
        var sharedValue: String?
    }

    private let roots: [String: Int]
    private let nodes: [Node]
    private let limits: [Limit]
    /// One policy per limit that consumes from a bucket.
    public let policies: PolicySet
    /// The domains, by name, for statistics.
    public let domainNames: [String]

    /// Compiles `domains`.
    ///
    /// - Throws: ``PolicyError`` if two limits' generated policy names collide (a hash collision; practically never).
    public init(domains: [RLSDomain]) throws(PolicyError) {
        var nodes: [Node] = []
        var limits: [Limit] = []
        var policies: [Policy] = []
        var roots: [String: Int] = [:]

        func compile(_ descriptors: [RLSDescriptor], into parent: Int, domain: String, path: String) throws(PolicyError) {
            for descriptor in descriptors {
                let finalKey = descriptor.value.map { "\(descriptor.key)_\($0)" } ?? descriptor.key
                let nodePath = path + "\u{1F}" + finalKey
                var node = Node()
                if descriptor.shareThreshold { node.sharedValue = descriptor.value }
                if let limit = descriptor.limit {
                    var policyIndex: Int?
                    if !limit.unlimited, let rateLimit = limit.rateLimit {
                        policyIndex = policies.count
                        policies.append(
                            try Policy(
                                name: Self.policyName(domain: domain, path: nodePath), rateLimit: rateLimit,
                                mode: descriptor.shadowMode ? .shadow : .enforce, scope: limit.scope
                            )
                        )
                    }
                    node.limit = limits.count
                    limits.append(Limit(configuration: limit, shadowMode: descriptor.shadowMode, policyIndex: policyIndex))
                }
                let index = nodes.count
                nodes.append(node)
                if descriptor.isWildcard {
                    nodes[parent].wildcards.append((finalKey.split(separator: "*", omittingEmptySubsequences: false), index))
                }
                nodes[parent].children[finalKey] = index
                try compile(descriptor.descriptors, into: index, domain: domain, path: nodePath)
            }
        }

        for domain in domains {
            let root = nodes.count
            nodes.append(Node())
            roots[domain.name] = root
            try compile(domain.descriptors, into: root, domain: domain.name, path: domain.name)
        }
        self.roots = roots
        self.nodes = nodes
        self.limits = limits
        self.policies = try PolicySet(policies)
        domainNames = domains.map(\.name)
    }

    /// Whether `domain` is configured.
    public func hasDomain(_ domain: String) -> Bool { roots[domain] != nil }

    /// The limit `entries` get in `domain`, or nil: an unknown domain, no entries, no matching node, or a
    /// matching node without a limit.
    ///
    /// - Complexity: O(entries × (1 + wildcards per level)), one dictionary lookup or two per entry.
    public func match(domain: String, entries: [DescriptorEntry]) -> Match? {
        guard var parent = roots[domain], !entries.isEmpty else { return nil }
        var key: [UInt8] = []
        key.reserveCapacity(entries.reduce(0) { $0 + $1.value.utf8.count + 1 })
        for (position, entry) in entries.enumerated() {
            let finalKey = "\(entry.key)_\(entry.value)"
            let level = nodes[parent]
            guard let matched = level.children[finalKey] ?? Self.firstWildcard(level.wildcards, matching: finalKey) ?? level.children[entry.key] else {
                return nil
            }
            if position > 0 { key.append(0x1F) }
            key.append(contentsOf: (nodes[matched].sharedValue ?? entry.value).utf8)
            if position == entries.count - 1 {
                return nodes[matched].limit.map { Match(limit: limits[$0], key: key) }
            }
            parent = matched
        }
        return nil
    }

    /// The first pattern (in file order) that `text` matches.
    private static func firstWildcard(_ wildcards: [(parts: [Substring], node: Int)], matching text: String) -> Int? {
        wildcards.first { globMatches($0.parts, text) }?.node
    }

    /// Whether `text` is the pattern whose literal parts are `parts`, each `*` between them matching any run of
    /// characters (the empty run included): it starts with the first part, ends with the last, and holds the
    /// middle ones in order, leftmost first, without overlapping.
    static func globMatches(_ parts: [Substring], _ text: String) -> Bool {
        guard let first = parts.first, let last = parts.last else { return false }
        let bytes = Array(text.utf8)
        guard parts.count > 1 else { return bytes.elementsEqual(first.utf8) }
        let head = Array(first.utf8)
        let tail = Array(last.utf8)
        guard bytes.count >= head.count + tail.count, bytes.starts(with: head), bytes.suffix(tail.count).elementsEqual(tail) else {
            return false
        }
        var position = head.count
        let end = bytes.count - tail.count
        for middle in parts.dropFirst().dropLast() where !middle.isEmpty {
            let needle = Array(middle.utf8)
            guard let found = firstIndex(of: needle, in: bytes, from: position, before: end) else { return false }
            position = found + needle.count
        }
        return true
    }

    private static func firstIndex(of needle: [UInt8], in haystack: [UInt8], from start: Int, before end: Int) -> Int? {
        guard needle.count <= end - start else { return nil }
        for candidate in start...(end - needle.count) where haystack[candidate..<(candidate + needle.count)].elementsEqual(needle) {
            return candidate
        }
        return nil
    }

    /// `rls:<domain, up to 32 characters, others as _>:<12 hex digits of the descriptor's path>`: a valid policy
    /// name, readable in logs and Redis keys, the same for the same place in the same domain.
    static func policyName(domain: String, path: String) -> String {
        let shown = String(
            domain.unicodeScalars.prefix(32).map { scalar in
                scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(Character(scalar)) || "_.-".unicodeScalars.contains(scalar))
                    ? Character(scalar) : "_"
            }
        )
        var hasher = StableHasher(seed: 0x5EED_0F_E0)
        hasher.combine(bytes: path.utf8)
        let digest = String(hasher.finalize(), radix: 16)
        let padded = String(repeating: "0", count: max(0, 16 - digest.count)) + digest
        return "rls:\(shown.isEmpty ? "_" : shown):\(padded.prefix(12))"
    }
}
