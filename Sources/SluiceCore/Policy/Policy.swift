/// A named limit from the configuration.
public struct Policy: Sendable, Hashable {
    /// Whether a policy's denials are enforced or only reported.
    public enum Mode: String, Sendable, Hashable {
        /// Denied requests are denied.
        case enforce
        /// Decide and count, but always allow: for trying a policy on live traffic.
        case shadow
    }

    /// Where a policy's budget lives.
    public enum Scope: Sendable, Hashable {
        /// In this process: every sidecar has the whole limit for itself.
        case local
        /// Shared by every sidecar on the same Redis: the limit holds for the fleet.
        case global(Global)
    }

    /// How a global policy shares its budget, and what it does when Redis cannot answer.
    public struct Global: Sendable, Hashable {
        /// How decisions reach Redis.
        public enum Sync: String, Sendable, Hashable, CaseIterable {
            /// Sidecars lease slices of the budget and decide locally; Redis is asked only to renew a lease.
            case leased
            /// Every decision is one script call in Redis: exact across the fleet, one round trip each.
            case strict
        }

        /// What a global policy does while Redis is down, slow or refusing.
        public enum StoreFailure: String, Sendable, Hashable, CaseIterable {
            /// Decide on this sidecar's own state, as a local policy would (each sidecar gets the whole limit).
            case local
            /// Allow every request (fail open).
            case allow
            /// Deny every request (fail closed).
            case deny
        }

        /// Leased (default) or strict.
        public var sync: Sync
        /// The behaviour while Redis is unavailable; default `local`.
        public var onStoreFailure: StoreFailure

        /// Creates global settings.
        public init(sync: Sync = .leased, onStoreFailure: StoreFailure = .local) {
            self.sync = sync
            self.onStoreFailure = onStoreFailure
        }
    }

    /// The longest policy name.
    public static let maximumNameLength = 64

    /// The name used in checks (`TAKE api user:42`).
    public let name: String
    /// The limit it enforces.
    public let rateLimit: RateLimit
    /// Enforce or shadow.
    public let mode: Mode
    /// Local (default) or global.
    public let scope: Scope
    /// Other limits for some keys (see ``Override``), in the order given.
    public let overrides: [Override]

    /// The global settings, or nil for a local policy.
    public var global: Global? {
        if case .global(let global) = scope { return global }
        return nil
    }

    /// Creates a policy.
    ///
    /// - Parameters:
    ///   - name: 1 to 64 characters from `[A-Za-z0-9_.:-]`.
    ///   - rateLimit: the limit.
    ///   - mode: enforce (default) or shadow.
    ///   - scope: local (default) or global.
    ///   - overrides: other limits for some keys; each of this policy's algorithm, no pattern twice.
    /// - Throws: ``PolicyError`` with `.invalidName` for a bad name, `.invalidOverride` for an override of another
    ///   algorithm or a pattern given twice.
    public init(name: String, rateLimit: RateLimit, mode: Mode = .enforce, scope: Scope = .local, overrides: [Override] = []) throws(PolicyError) {
        guard Self.isValidName(name) else {
            throw PolicyError(
                .invalidName,
                "policy name '\(name)' must be 1 to \(Self.maximumNameLength) characters from A-Z a-z 0-9 _ . : -"
            )
        }
        var patterns = Set<String>()
        for override in overrides {
            guard override.rateLimit.algorithm == rateLimit.algorithm else {
                throw PolicyError(.invalidOverride, "the override of '\(override.pattern)' must use the policy's algorithm, \(rateLimit.algorithm.rawValue)")
            }
            guard patterns.insert(override.pattern).inserted else {
                throw PolicyError(.invalidOverride, "the override of '\(override.pattern)' is given twice")
            }
        }
        self.name = name
        self.rateLimit = rateLimit
        self.mode = mode
        self.scope = scope
        self.overrides = overrides
    }

    /// Whether `name` is a valid policy name.
    public static func isValidName(_ name: String) -> Bool {
        let utf8 = name.utf8
        return !utf8.isEmpty && utf8.count <= maximumNameLength
            && utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                    || byte == 0x5F || byte == 0x2E || byte == 0x3A || byte == 0x2D
            }
    }

    /// The seed that places this policy's buckets: changes whenever the name or the limit changes,
    /// so a reload keeps the state of unchanged policies and starts changed ones afresh. Overrides do not
    /// change it: adding one starts only its keys' buckets afresh (``OverrideTable``).
    public var bucketSeed: UInt64 {
        var hasher = StableHasher(seed: rateLimit.fingerprint)
        hasher.combine(bytes: name.utf8)
        return hasher.finalize()
    }
}
