public import SluiceCore

/// One domain of Envoy's rate limit service, as an envoyproxy/ratelimit configuration file states it: a tree of
/// descriptors, some carrying a limit.
///
/// Read unchanged from envoyproxy/ratelimit's format (`domain`, `descriptors`, `key`, `value`, `rate_limit`,
/// `shadow_mode`, `share_threshold`, nested `descriptors`), with Sluice's optional fields inside `rate_limit`
/// (`algorithm`, `burst`, `scope`, `sync`, `on_store_failure`). Matching requests against it is SluiceRLS's.
public struct RLSDomain: Sendable, Hashable {
    /// The domain a request names (`RateLimitRequest.domain`).
    public var name: String
    /// The file it was read from, as written in `rls.files`.
    public var file: String
    /// The top-level descriptors, in file order.
    public var descriptors: [RLSDescriptor]

    /// Creates a domain.
    public init(name: String, file: String, descriptors: [RLSDescriptor]) {
        self.name = name
        self.file = file
        self.descriptors = descriptors
    }
}

/// One node of a domain's descriptor tree.
public struct RLSDescriptor: Sendable, Hashable {
    /// The entry key this node matches.
    public var key: String
    /// The value it matches: nil matches any value (each distinct value gets its own bucket); a `*` in it
    /// matches any run of characters.
    public var value: String?
    /// The limit of a request whose last entry lands here, if any.
    public var limit: RLSLimit?
    /// Decide and report, but always answer OK (`shadow_mode`).
    public var shadowMode: Bool
    /// Every value a wildcard matches shares one bucket (`share_threshold`), instead of one bucket per value.
    public var shareThreshold: Bool
    /// Nodes for the next entry of a request.
    public var descriptors: [RLSDescriptor]

    /// Creates a node.
    public init(
        key: String, value: String? = nil, limit: RLSLimit? = nil, shadowMode: Bool = false, shareThreshold: Bool = false,
        descriptors: [RLSDescriptor] = []
    ) {
        self.key = key
        self.value = value
        self.limit = limit
        self.shadowMode = shadowMode
        self.shareThreshold = shareThreshold
        self.descriptors = descriptors
    }

    /// Whether the value holds a wildcard.
    public var isWildcard: Bool { (value ?? "").contains("*") }
}

/// A descriptor's `rate_limit`.
public struct RLSLimit: Sendable, Hashable {
    /// The window of `requests_per_unit`, as Envoy's `RateLimitResponse.RateLimit.Unit` names it.
    public enum Unit: String, Sendable, Hashable, CaseIterable {
        case second, minute, hour, day, week, month, year

        /// Seconds in one unit: months are 30 days and years 365, as in envoyproxy/ratelimit.
        public var seconds: Int64 {
            switch self {
            case .second: 1
            case .minute: 60
            case .hour: 3_600
            case .day: 86_400
            case .week: 604_800
            case .month: 2_592_000
            case .year: 31_536_000
            }
        }

        /// The value of Envoy's `RateLimitResponse.RateLimit.Unit` enum.
        public var protoValue: Int {
            switch self {
            case .second: 1
            case .minute: 2
            case .hour: 3
            case .day: 4
            case .month: 5
            case .year: 6
            case .week: 7
            }
        }
    }

    /// The unit; nil only when unlimited.
    public var unit: Unit?
    /// Requests per unit; 0 denies every request.
    public var requestsPerUnit: Int64
    /// No limit: answered OK with `limit_remaining` 4294967295, no bucket touched.
    public var unlimited: Bool
    /// The limit's name (`current_limit.name`, and what `replaces` refers to); empty when unnamed.
    public var name: String
    /// Names of limits this one replaces in the same request.
    public var replaces: [String]
    /// How it is decided: `requests_per_unit` per unit with the configured algorithm (fixed window by default,
    /// as in envoyproxy/ratelimit); nil when unlimited or when `requests_per_unit` is 0.
    public var rateLimit: RateLimit?
    /// Local (default) or global through Redis.
    public var scope: Policy.Scope

    /// Creates a limit.
    public init(
        unit: Unit?, requestsPerUnit: Int64, unlimited: Bool = false, name: String = "", replaces: [String] = [],
        rateLimit: RateLimit?, scope: Policy.Scope = .local
    ) {
        self.unit = unit
        self.requestsPerUnit = requestsPerUnit
        self.unlimited = unlimited
        self.name = name
        self.replaces = replaces
        self.rateLimit = rateLimit
        self.scope = scope
    }
}

extension RLSDomain {
    /// Parses one envoyproxy/ratelimit configuration file's text.
    ///
    /// - Parameters:
    ///   - yaml: the file's text.
    ///   - file: its name, for errors.
    /// - Throws: ``ConfigurationError`` located in `file`, with the field's path and line.
    public static func parse(yaml: String, file: String) throws(ConfigurationError) -> RLSDomain {
        try ConfigurationDecoder().decodeRLSFile(yaml: yaml, file: file)
    }
}
