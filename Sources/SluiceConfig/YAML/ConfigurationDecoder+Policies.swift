import SluiceCore

extension ConfigurationDecoder {
    /// The `policies` section, in file order: every policy that could be read (each mistake is recorded and
    /// the next policy read); an empty section is rejected later, with the checks across sections.
    func decodePolicies(_ section: ConfigurationNode, lines: inout [String: Int]) -> [Policy] {
        let entries = attempt { () throws(ConfigurationError) in
            try section.entries(allowed: nil, expectation: "a mapping from policy names to policies")
        }
        var policies: [Policy] = []
        for (name, entry) in entries ?? [] {
            lines[entry.path] = entry.line
            if let policy = attempt({ () throws(ConfigurationError) in try decodePolicy(named: name, entry, lines: &lines) }) { policies.append(policy) }
        }
        return policies
    }

    /// One policy: its fields typed here, its ranges checked by ``RateLimit``.
    func decodePolicy(named name: String, _ entry: ConfigurationNode, lines: inout [String: Int]) throws(ConfigurationError) -> Policy {
        guard Policy.isValidName(name) else {
            throw entry.error(
                .invalidValue,
                "a policy name must be 1 to \(Policy.maximumNameLength) characters from A-Z a-z 0-9 _ . : -"
            )
        }
        let expectation =
            "a mapping with algorithm, limit and period, such as { algorithm: token_bucket, limit: 100, period: 1s }"
        let fields = try entry.fields(
            allowed: Self.policyFields, expectation: expectation, requirement: "every policy needs algorithm, limit and period",
            lines: &lines
        )
        let algorithmNode = try fields.required("algorithm")
        let allAlgorithms = Algorithm.allCases.map(\.rawValue).joined(separator: ", ")
        guard let algorithm = algorithmNode.scalarText.flatMap(Algorithm.init(rawValue:)) else {
            throw algorithmNode.error(.invalidValue, "must be one of \(allAlgorithms), got \(algorithmNode.shown)")
        }
        let limitNode = try fields.required("limit")
        let limit = try limitNode.positiveInteger()
        let periodNode = try fields.required("period")
        let periodNanoseconds: Int64
        do {
            periodNanoseconds = try PolicyDuration.parseNanoseconds(periodNode.scalarText ?? "")
        } catch {
            throw periodNode.error(
                .invalidValue,
                "must be a duration: a positive integer with a unit, as in 250ms, 1s, 1m, 1h or 1d; got \(periodNode.shown)"
            )
        }
        var burst: Int?
        if let burstNode = fields["burst"] {
            guard algorithm == .tokenBucket else {
                throw burstNode.error(
                    .invalidValue, "burst applies only to token_bucket; remove it from this \(algorithm.rawValue) policy"
                )
            }
            burst = try burstNode.positiveInteger()
        }
        var mode = Policy.Mode.enforce
        if let modeNode = fields["mode"] {
            guard let parsed = modeNode.scalarText.flatMap(Policy.Mode.init(rawValue:)) else {
                throw modeNode.error(.invalidValue, "must be enforce or shadow, got \(modeNode.shown)")
            }
            mode = parsed
        }
        let scope = try decodeScope(fields)

        let rateLimit: RateLimit
        do {
            rateLimit = try RateLimit(
                algorithm: algorithm, limit: Int64(limit), periodNanoseconds: periodNanoseconds, burst: burst.map { Int64($0) }
            )
        } catch {
            // RateLimit owns the ranges; put its message on the field it is about.
            let culprit: ConfigurationNode =
                switch error.code {
                case .invalidLimit: limitNode
                case .invalidPeriod, .invalidDuration: periodNode
                case .invalidBurst: fields["burst"] ?? entry
                default: entry
                }
            throw culprit.error(.invalidValue, error.message)
        }
        let policy: Policy
        do {
            policy = try Policy(name: name, rateLimit: rateLimit, mode: mode, scope: scope)
        } catch {
            throw entry.error(.invalidValue, error.message)
        }
        guard let overridesNode = fields["overrides"] else { return policy }
        return try decodeOverrides(overridesNode, of: policy, lines: &lines)
    }

    /// `overrides`: a mapping from a key (or a prefix ending in `*`) to `{ limit, burst, period }`.
    func decodeOverrides(_ section: ConfigurationNode, of policy: Policy, lines: inout [String: Int]) throws(ConfigurationError) -> Policy {
        var overrides: [Policy.Override] = []
        let expectation = "a mapping from keys (or prefixes ending in *) to limits, such as \"user:vip\": { limit: 1000 }"
        for (pattern, entry) in try section.entries(allowed: nil, expectation: expectation) {
            lines[entry.path] = entry.line
            overrides.append(try decodeOverride(pattern: pattern, entry, of: policy, lines: &lines))
        }
        do {
            return try policy.with(overrides: overrides)
        } catch {
            throw section.error(.invalidValue, error.message)
        }
    }

    /// One override: `{ limit, burst, period }` for `pattern`.
    func decodeOverride(
        pattern: String, _ entry: ConfigurationNode, of policy: Policy, lines: inout [String: Int]
    ) throws(ConfigurationError) -> Policy.Override {
        let fields = try entry.fields(
            allowed: ["limit", "burst", "period"], expectation: "a mapping with limit, and optionally burst and period",
            requirement: "every override needs a limit", lines: &lines
        )
        let limitNode = try fields.required("limit")
        let limit = try limitNode.positiveInteger()
        let burst = try fields["burst"].map { node throws(ConfigurationError) in try node.positiveInteger() }
        var period: Int64?
        if let periodNode = fields["period"] {
            do {
                period = try PolicyDuration.parseNanoseconds(periodNode.scalarText ?? "")
            } catch {
                throw periodNode.error(.invalidValue, "must be a duration such as 1s, 1m or 1h; got \(periodNode.shown)")
            }
        }
        do {
            let rateLimit = try policy.overrideLimit(limit: Int64(limit), burst: burst.map { Int64($0) }, periodNanoseconds: period)
            return try Policy.Override(pattern: pattern, rateLimit: rateLimit)
        } catch {
            let culprit: ConfigurationNode =
                switch error.code {
                case .invalidLimit: limitNode
                case .invalidBurst: fields["burst"] ?? entry
                case .invalidPeriod: fields["period"] ?? entry
                default: entry
                }
            throw culprit.error(.invalidValue, error.message)
        }
    }

    /// `scope`, and for a global policy `sync` and `on_store_failure` (refused on a local one, where they would do nothing).
    func decodeScope(_ fields: ConfigurationFields) throws(ConfigurationError) -> Policy.Scope {
        var isGlobal = false
        if let scopeNode = fields["scope"] {
            switch scopeNode.scalarText {
            case "local": isGlobal = false
            case "global": isGlobal = true
            default: throw scopeNode.error(.invalidValue, "must be local or global, got \(scopeNode.shown)")
            }
        }
        guard isGlobal else {
            if let stray = fields["sync"] ?? fields["on_store_failure"] {
                throw stray.error(.invalidValue, "applies only to a global policy; add scope: global or remove it")
            }
            return .local
        }
        var global = Policy.Global()
        if let syncNode = fields["sync"] {
            guard let sync = syncNode.scalarText.flatMap(Policy.Global.Sync.init(rawValue:)) else {
                throw syncNode.error(.invalidValue, "must be leased or strict, got \(syncNode.shown)")
            }
            global.sync = sync
        }
        if let failureNode = fields["on_store_failure"] {
            guard let failure = failureNode.scalarText.flatMap(Policy.Global.StoreFailure.init(rawValue:)) else {
                throw failureNode.error(.invalidValue, "must be local, allow or deny, got \(failureNode.shown)")
            }
            global.onStoreFailure = failure
        }
        return .global(global)
    }
}
