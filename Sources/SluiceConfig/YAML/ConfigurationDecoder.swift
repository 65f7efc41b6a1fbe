import SluiceCore
import Yams

/// Turns YAML text into a ``SluiceConfiguration`` by walking Yams's node tree, so that every error carries the
/// line of the node it is about (Codable would lose it).
struct ConfigurationDecoder {
    /// The sections Sluice reads, in the order messages list them.
    static let sections = ["listen", "policies", "store", "limits", "http", "forward_auth", "redis", "rls", "admin", "events"]
    /// The folder relative `rls.files` are read from: the configuration file's; nil for the working directory.
    var baseDirectory: String? = nil
    /// Sections reserved for later features: accepted and ignored, so a newer file still loads.
    static let reservedSections: Set<String> = []
    /// A policy's fields, in the order messages list them.
    static let policyFields = ["algorithm", "limit", "period", "burst", "mode", "scope", "sync", "on_store_failure", "overrides"]

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
        var rls: SluiceConfiguration.RLS?
        var admin = SluiceConfiguration.Admin()
        var events = SluiceConfiguration.Events()
        // Whether every policy and rule was read: the checks across sections need them all.
        var crossChecks = true
        for (name, section) in sections {
            lines[section.path] = section.line
            let before = problems.errors.count
            defer { if ["policies", "forward_auth", "rls"].contains(name), problems.errors.count > before { crossChecks = false } }
            switch name {
            case "listen": listen = attempt { () throws(ConfigurationError) in try decodeListen(section, lines: &lines) } ?? listen
            case "policies": policies = decodePolicies(section, lines: &lines)
            case "store": store = attempt { () throws(ConfigurationError) in try decodeStore(section, lines: &lines) } ?? store
            case "limits": limits = attempt { () throws(ConfigurationError) in try decodeLimits(section, lines: &lines) } ?? limits
            case "http": http = attempt { () throws(ConfigurationError) in try decodeHTTP(section, lines: &lines) } ?? http
            case "redis": redis = attempt { () throws(ConfigurationError) in try decodeRedis(section, lines: &lines) }
            case "rls": rls = attempt { () throws(ConfigurationError) in try decodeRLS(section, lines: &lines) } ?? SluiceConfiguration.RLS()
            case "admin": admin = attempt { () throws(ConfigurationError) in try decodeAdmin(section, lines: &lines) } ?? admin
            case "events": events = attempt { () throws(ConfigurationError) in try decodeEvents(section, lines: &lines) } ?? events
            default: forwardAuth = attempt { () throws(ConfigurationError) in try decodeForwardAuth(section, lines: &lines) } ?? forwardAuth
            }
        }
        // Checks across sections only when every policy and rule was read: one that could not be read would
        // otherwise be reported again, as missing.
        problems.errors += SluiceConfiguration.problems(
            listen: listen, policies: policies, store: store, limits: limits, http: http, forwardAuth: forwardAuth, redis: redis,
            rls: rls, admin: admin, events: events, lines: lines, crossChecks: crossChecks
        )
        guard problems.errors.isEmpty else { return nil }
        return attempt { () throws(ConfigurationError) in
            try SluiceConfiguration(
                listen: listen, policies: policies, store: store, limits: limits, http: http, forwardAuth: forwardAuth,
                redis: redis, rls: rls, admin: admin, events: events, lines: lines
            )
        }
    }

    /// The `listen` section; absent fields keep their defaults.
    func decodeListen(
        _ section: ConfigurationNode, lines: inout [String: Int]
    ) throws(ConfigurationError) -> SluiceConfiguration.Listen {
        var listen = SluiceConfiguration.Listen()
        for (name, field) in try section.entries(
            allowed: ["line", "http", "grpc", "admin"], expectation: "a mapping with line, http, grpc and admin"
        ) {
            lines[field.path] = field.line
            let address = try decodeAddress(field)
            switch name {
            case "line": listen.line = address
            case "http": listen.http = address
            case "grpc": listen.grpc = address
            default: listen.admin = address
            }
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
    func decodeStore(_ section: ConfigurationNode, lines: inout [String: Int]) throws(ConfigurationError) -> SluiceConfiguration.Store {
        try decodePositiveIntegers(section, into: SluiceConfiguration.Store(), fields: ["max_keys": \.maxKeys, "shards": \.shards], lines: &lines)
    }

    /// The `limits` section; absent fields keep their defaults.
    func decodeLimits(_ section: ConfigurationNode, lines: inout [String: Int]) throws(ConfigurationError) -> SluiceConfiguration.Limits {
        let fields: KeyValuePairs<String, WritableKeyPath<SluiceConfiguration.Limits, Int>> = [
            "max_key_bytes": \.maxKeyBytes, "max_line_bytes": \.maxLineBytes, "max_arguments": \.maxArguments,
            "max_frame_bytes": \.maxFrameBytes, "max_connections": \.maxConnections,
        ]
        let durations: KeyValuePairs<String, WritableKeyPath<SluiceConfiguration.Limits, Int64>> = [
            "idle_timeout": \.idleTimeoutNanoseconds, "request_timeout": \.requestTimeoutNanoseconds,
        ]
        var limits = SluiceConfiguration.Limits()
        let names = fields.map(\.key) + durations.map(\.key)
        for (name, field) in try section.entries(allowed: names, expectation: "a mapping with \(names.joined(separator: ", "))") {
            lines[field.path] = field.line
            if let keyPath = fields.first(where: { $0.key == name })?.value {
                limits[keyPath: keyPath] = try field.positiveInteger()
            } else if let keyPath = durations.first(where: { $0.key == name })?.value {
                // `idle_timeout: 0` turns it off; ranges are checked by the section's problems().
                limits[keyPath: keyPath] = field.scalarText == "0" ? 0 : try duration(field, range: 1...Int64.max, shown: "with a unit")
            }
        }
        return limits
    }

    /// The `http` section; absent fields keep their defaults.
    func decodeHTTP(_ section: ConfigurationNode, lines: inout [String: Int]) throws(ConfigurationError) -> SluiceConfiguration.HTTP {
        let fields: KeyValuePairs<String, WritableKeyPath<SluiceConfiguration.HTTP, Int>> = [
            "max_body_bytes": \.maxBodyBytes, "max_checks": \.maxChecks, "max_batch": \.maxBatch,
        ]
        return try decodePositiveIntegers(section, into: SluiceConfiguration.HTTP(), fields: fields, lines: &lines)
    }

    /// A section whose every field is a positive integer: each one present is set on `defaults`; ranges are
    /// checked by the section's own `problems()`.
    func decodePositiveIntegers<Section>(
        _ section: ConfigurationNode, into defaults: Section, fields: KeyValuePairs<String, WritableKeyPath<Section, Int>>,
        lines: inout [String: Int]
    ) throws(ConfigurationError) -> Section {
        var result = defaults
        let names = fields.map(\.key)
        for (name, field) in try section.entries(allowed: names, expectation: "a mapping with \(names.joined(separator: ", "))") {
            lines[field.path] = field.line
            guard let keyPath = fields.first(where: { $0.key == name })?.value else { continue }
            result[keyPath: keyPath] = try field.positiveInteger()
        }
        return result
    }

}
