import SluiceCore
import Yams

/// Turns YAML text into a ``SluiceConfiguration`` by walking Yams's node tree, so that every error carries the
/// line of the node it is about (Codable would lose it).
struct ConfigurationDecoder {
    /// The sections Sluice reads, in the order messages list them.
    static let sections = ["listen", "policies", "store", "limits", "http", "forward_auth", "redis"]
    /// Sections reserved for later features: accepted and ignored, so a newer file still loads.
    static let reservedSections: Set<String> = ["admin"]
    /// A policy's fields, in the order messages list them.
    static let policyFields = ["algorithm", "limit", "period", "burst", "mode", "scope", "sync", "on_store_failure"]

    /// The error for a document with nothing in it.
    static let emptyConfiguration = ConfigurationError(
        .emptyConfiguration, "the configuration is empty; it needs at least a `policies` section"
    )

    /// Mistakes found so far. Decoding goes on past each one it can (a bad section, a bad policy, a bad rule),
    /// so `sluice validate` reports them all at once.
    final class Problems {
        var errors: [ConfigurationError] = []
    }

    let problems = Problems()

    /// Runs `body`; a mistake it throws is recorded and nil returned, so decoding goes on.
    func attempt<Value>(_ body: () throws(ConfigurationError) -> Value) -> Value? {
        do {
            return try body()
        } catch {
            problems.errors.append(error)
            return nil
        }
    }

    /// Decodes `yaml`.
    ///
    /// - Parameter yaml: the whole configuration file.
    /// - Returns: the validated configuration.
    /// - Throws: ``ConfigurationError`` for the first mistake found, with its path and line.
    func decode(yaml: String) throws(ConfigurationError) -> SluiceConfiguration {
        let configuration = decodeReportingAll(yaml: yaml)
        if let first = problems.errors.first { throw first }
        guard let configuration else { throw Self.emptyConfiguration }  // unreachable: no problem means a configuration
        return configuration
    }

    /// Decodes `yaml`, recording every mistake it can find in ``problems``; the configuration when there are none.
    func decodeReportingAll(yaml: String) -> SluiceConfiguration? {
        let composed: Node?
        do {
            composed = try compose(yaml: yaml)
        } catch {
            problems.errors.append(ConfigurationError.translating(error, yaml: yaml))
            return nil
        }
        // A document of only comments composes to nothing; one holding just `~` to a null.
        guard let root = composed else {
            problems.errors.append(Self.emptyConfiguration)
            return nil
        }
        let document = ConfigurationNode(node: root, path: "", line: root.mark?.line)
        if document.isNull {
            problems.errors.append(Self.emptyConfiguration)
            return nil
        }
        let entries = attempt { () throws(ConfigurationError) in
            try document.entries(
                allowed: Self.sections, ignored: Self.reservedSections, noun: "section",
                expectation: "a mapping of sections (\(Self.sections.joined(separator: ", ")))"
            )
        }
        guard let sections = entries else { return nil }

        var lines: [String: Int] = [:]
        var listen = SluiceConfiguration.Listen()
        var policies: [Policy] = []
        var store = SluiceConfiguration.Store()
        var limits = SluiceConfiguration.Limits()
        var http = SluiceConfiguration.HTTP()
        var forwardAuth = SluiceConfiguration.ForwardAuth()
        var redis: SluiceConfiguration.Redis?
        // Whether every policy and rule was read: the checks across sections need them all.
        var crossChecks = true
        for (name, section) in sections {
            lines[section.path] = section.line
            let before = problems.errors.count
            defer { if name == "policies" || name == "forward_auth", problems.errors.count > before { crossChecks = false } }
            switch name {
            case "listen": listen = attempt { () throws(ConfigurationError) in try decodeListen(section, lines: &lines) } ?? listen
            case "policies": policies = decodePolicies(section, lines: &lines)
            case "store": store = attempt { () throws(ConfigurationError) in try decodeStore(section, lines: &lines) } ?? store
            case "limits": limits = attempt { () throws(ConfigurationError) in try decodeLimits(section, lines: &lines) } ?? limits
            case "http": http = attempt { () throws(ConfigurationError) in try decodeHTTP(section, lines: &lines) } ?? http
            case "redis": redis = attempt { () throws(ConfigurationError) in try decodeRedis(section, lines: &lines) }
            default: forwardAuth = attempt { () throws(ConfigurationError) in try decodeForwardAuth(section, lines: &lines) } ?? forwardAuth
            }
        }
        // Checks across sections only when every policy and rule was read: one that could not be read would
        // otherwise be reported again, as missing.
        problems.errors += SluiceConfiguration.problems(
            listen: listen, policies: policies, store: store, limits: limits, http: http, forwardAuth: forwardAuth, redis: redis,
            lines: lines, crossChecks: crossChecks
        )
        guard problems.errors.isEmpty else { return nil }
        return attempt { () throws(ConfigurationError) in
            try SluiceConfiguration(
                listen: listen, policies: policies, store: store, limits: limits, http: http, forwardAuth: forwardAuth,
                redis: redis, lines: lines
            )
        }
    }

    /// The `listen` section; absent fields keep their defaults.
    func decodeListen(
        _ section: ConfigurationNode, lines: inout [String: Int]
    ) throws(ConfigurationError) -> SluiceConfiguration.Listen {
        var listen = SluiceConfiguration.Listen()
        for (name, field) in try section.entries(allowed: ["line", "http"], expectation: "a mapping with line and http") {
            lines[field.path] = field.line
            let address = try decodeAddress(field)
            if name == "line" { listen.line = address } else { listen.http = address }
        }
        return listen
    }

    /// One `host:port` value.
    func decodeAddress(_ field: ConfigurationNode) throws(ConfigurationError) -> ListenAddress {
        if case .sequence = field.node {
            // `[::1]:7379` unquoted starts a YAML flow list.
            throw field.error(
                .invalidValue, "must be a \"host:port\" string (quote a bracketed IPv6 address: \"[::1]:7379\"), got a list"
            )
        }
        guard let text = field.scalarText else {
            throw field.error(
                .invalidValue, "must be a \"host:port\" string such as \"127.0.0.1:7379\", got \(field.shown)"
            )
        }
        switch ListenAddress.parse(text) {
        case .success(let address): return address
        case .failure(let failure): throw field.error(.invalidValue, "\(failure.reason); got \(field.shown)")
        }
    }

    /// The `store` section; absent fields keep their defaults.
    func decodeStore(
        _ section: ConfigurationNode, lines: inout [String: Int]
    ) throws(ConfigurationError) -> SluiceConfiguration.Store {
        var store = SluiceConfiguration.Store()
        let fields = try section.entries(allowed: ["max_keys", "shards"], expectation: "a mapping with max_keys and shards")
        for (name, field) in fields {
            lines[field.path] = field.line
            let value = try field.positiveInteger()
            if name == "max_keys" { store.maxKeys = value } else { store.shards = value }
        }
        return store
    }

    /// The `limits` section; absent fields keep their defaults.
    func decodeLimits(
        _ section: ConfigurationNode, lines: inout [String: Int]
    ) throws(ConfigurationError) -> SluiceConfiguration.Limits {
        var limits = SluiceConfiguration.Limits()
        let fields = ["max_key_bytes", "max_line_bytes", "max_arguments", "max_frame_bytes"]
        let expectation = "a mapping with \(fields.joined(separator: ", "))"
        for (name, field) in try section.entries(allowed: fields, expectation: expectation) {
            lines[field.path] = field.line
            let value = try field.positiveInteger()
            switch name {
            case "max_key_bytes": limits.maxKeyBytes = value
            case "max_line_bytes": limits.maxLineBytes = value
            case "max_arguments": limits.maxArguments = value
            default: limits.maxFrameBytes = value
            }
        }
        return limits
    }

    /// The `http` section; absent fields keep their defaults.
    func decodeHTTP(
        _ section: ConfigurationNode, lines: inout [String: Int]
    ) throws(ConfigurationError) -> SluiceConfiguration.HTTP {
        var http = SluiceConfiguration.HTTP()
        let fields = ["max_body_bytes", "max_checks", "max_batch"]
        let expectation = "a mapping with \(fields.joined(separator: ", "))"
        for (name, field) in try section.entries(allowed: fields, expectation: expectation) {
            lines[field.path] = field.line
            let value = try field.positiveInteger()
            switch name {
            case "max_body_bytes": http.maxBodyBytes = value
            case "max_checks": http.maxChecks = value
            default: http.maxBatch = value
            }
        }
        return http
    }

    /// The `redis` section: `url` is required, the rest have defaults.
    func decodeRedis(
        _ section: ConfigurationNode, lines: inout [String: Int]
    ) throws(ConfigurationError) -> SluiceConfiguration.Redis {
        let fields = ["url", "timeout", "key_prefix", "max_leases"]
        let expectation = "a mapping with \(fields.joined(separator: ", ")), such as { url: \"redis://127.0.0.1:6379/0\" }"
        if section.isNull { throw section.error(.invalidValue, "must be \(expectation), got \(section.shown)") }
        let entries = try section.entries(allowed: fields, expectation: expectation)
        guard let urlNode = entries.first(where: { $0.name == "url" })?.value else {
            throw ConfigurationError(.missingField, path: section.childPath("url"), line: section.line, "missing; the redis section needs a url such as \"redis://127.0.0.1:6379/0\"")
        }
        lines[urlNode.path] = urlNode.line
        var redis: SluiceConfiguration.Redis
        switch SluiceConfiguration.Redis.parseURL(urlNode.scalarText ?? "") {
        case .success(let parsed): redis = parsed
        case .failure(let failure): throw urlNode.error(.invalidValue, "\(failure.reason); got \(urlNode.shown)")
        }
        for (name, field) in entries where name != "url" {
            lines[field.path] = field.line
            switch name {
            case "timeout":
                do {
                    redis.timeoutNanoseconds = try PolicyDuration.parseNanoseconds(field.scalarText ?? "")
                } catch {
                    throw field.error(.invalidValue, "must be a duration from 1ms to 10s, such as 50ms; got \(field.shown)")
                }
            case "key_prefix":
                guard let text = field.scalarText else { throw field.error(.invalidValue, "must be a string, got \(field.shown)") }
                redis.keyPrefix = text
            default: redis.maxLeases = try field.positiveInteger()
            }
        }
        return redis
    }

    /// The `policies` section, in file order: every policy that could be read (each mistake is recorded and
    /// the next policy read); an empty section is rejected later, with the checks across sections.
    func decodePolicies(_ section: ConfigurationNode, lines: inout [String: Int]) -> [Policy] {
        let entries = attempt { () throws(ConfigurationError) in
            try section.entries(allowed: nil, expectation: "a mapping from policy names to policies")
        }
        var policies: [Policy] = []
        for (name, entry) in entries ?? [] {
            lines[entry.path] = entry.line
            if let policy = attempt({ () throws(ConfigurationError) in try decodePolicy(named: name, entry) }) { policies.append(policy) }
        }
        return policies
    }

    /// One policy: its fields typed here, its ranges checked by ``RateLimit``.
    func decodePolicy(named name: String, _ entry: ConfigurationNode) throws(ConfigurationError) -> Policy {
        guard Policy.isValidName(name) else {
            throw entry.error(
                .invalidValue,
                "a policy name must be 1 to \(Policy.maximumNameLength) characters from A-Z a-z 0-9 _ . : -"
            )
        }
        let expectation =
            "a mapping with algorithm, limit and period, such as { algorithm: token_bucket, limit: 100, period: 1s }"
        if entry.isNull { throw entry.error(.invalidValue, "must be \(expectation), got \(entry.shown)") }
        var fields: [String: ConfigurationNode] = [:]
        for (field, value) in try entry.entries(allowed: Self.policyFields, expectation: expectation) {
            fields[field] = value
        }
        func required(_ field: String) throws(ConfigurationError) -> ConfigurationNode {
            guard let value = fields[field] else {
                throw ConfigurationError(
                    .missingField, path: entry.childPath(field), line: entry.line,
                    "missing; every policy needs algorithm, limit and period"
                )
            }
            return value
        }

        let algorithmNode = try required("algorithm")
        let allAlgorithms = Algorithm.allCases.map(\.rawValue).joined(separator: ", ")
        guard let algorithm = algorithmNode.scalarText.flatMap(Algorithm.init(rawValue:)) else {
            throw algorithmNode.error(.invalidValue, "must be one of \(allAlgorithms), got \(algorithmNode.shown)")
        }
        let limitNode = try required("limit")
        let limit = try limitNode.positiveInteger()
        let periodNode = try required("period")
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
        do {
            return try Policy(name: name, rateLimit: rateLimit, mode: mode, scope: scope)
        } catch {
            throw entry.error(.invalidValue, error.message)
        }
    }

    /// `scope`, and for a global policy `sync` and `on_store_failure` (refused on a local one, where they would do nothing).
    func decodeScope(_ fields: [String: ConfigurationNode]) throws(ConfigurationError) -> Policy.Scope {
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
