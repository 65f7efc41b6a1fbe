import SluiceCore
import Yams

extension ConfigurationDecoder {
    /// A descriptor's fields: envoyproxy/ratelimit's; `detailed_metric` and `value_to_metric` only name its
    /// statistics there, and are accepted and ignored here.
    static let rlsDescriptorFields = [
        "key", "value", "rate_limit", "descriptors", "shadow_mode", "share_threshold", "detailed_metric", "value_to_metric", "quota_mode",
    ]
    /// A `rate_limit`'s fields: envoyproxy/ratelimit's, then Sluice's.
    static let rlsLimitFields = [
        "unit", "requests_per_unit", "unlimited", "name", "replaces", "algorithm", "burst", "scope", "sync", "on_store_failure",
    ]

    /// One envoyproxy/ratelimit configuration file: `domain` and its `descriptors`.
    ///
    /// Its errors are envoyproxy/ratelimit's, each located by field path and line in `file`: an empty domain or
    /// key, two siblings with the same key and value, an unknown unit, `unlimited` together with a unit, an
    /// empty or self-naming `replaces`, `share_threshold` on a value without `*`.
    func decodeRLSFile(yaml: String, file: String) throws(ConfigurationError) -> RLSDomain {
        do throws(ConfigurationError) {
            let composed: Node?
            do {
                composed = try compose(yaml: yaml)
            } catch {
                throw ConfigurationError.translating(error, yaml: yaml)
            }
            guard let root = composed else { throw ConfigurationError(.emptyConfiguration, "the file is empty; it needs a domain and descriptors") }
            let document = ConfigurationNode(node: root, path: "", line: root.mark?.line)
            var ignoredLines: [String: Int] = [:]
            let fields = try document.fields(
                allowed: ["domain", "descriptors"], expectation: "a mapping with domain and descriptors", requirement: "a file needs a domain",
                lines: &ignoredLines
            )
            let domainNode = try fields.required("domain")
            guard let domain = domainNode.scalarText, !domain.isEmpty else {
                throw domainNode.error(.invalidValue, "config file cannot have empty domain")
            }
            let descriptors = try fields["descriptors"].map { node throws(ConfigurationError) in
                try decodeRLSDescriptors(node, parents: domain)
            } ?? []
            return RLSDomain(name: domain, file: file, descriptors: descriptors)
        } catch {
            throw error.inFile(file)
        }
    }

    /// A list of sibling descriptors; `parents` names them in duplicate messages (`domain.key_value.key`).
    private func decodeRLSDescriptors(_ node: ConfigurationNode, parents: String) throws(ConfigurationError) -> [RLSDescriptor] {
        var descriptors: [RLSDescriptor] = []
        var seen = Set<String>()
        for element in try node.elements(expectation: "a list of descriptors, each a mapping with a key") {
            var ignoredLines: [String: Int] = [:]
            let fields = try element.fields(
                allowed: Self.rlsDescriptorFields, expectation: "a descriptor: a mapping with key and optionally value, rate_limit, descriptors",
                requirement: "every descriptor needs a key", lines: &ignoredLines
            )
            let keyNode = try fields.required("key")
            guard let key = keyNode.scalarText, !key.isEmpty else { throw keyNode.error(.invalidValue, "descriptor has empty key") }
            if let valueNode = fields["value"], !valueNode.isNull, valueNode.scalarText == nil {
                throw valueNode.error(.invalidValue, "must be a value to match, such as premium or \"/api/*\", got \(valueNode.shown)")
            }
            var value = fields["value"].flatMap(\.scalarText)
            if value?.isEmpty == true { value = nil }
            let compositeKey = value.map { "\(key)_\($0)" } ?? key
            guard seen.insert(compositeKey).inserted else {
                throw element.error(.duplicateKey, "duplicate descriptor composite key '\(parents).\(compositeKey)'")
            }
            if let quota = fields["quota_mode"] {
                throw quota.error(.invalidValue, "quota_mode is not supported by Sluice; remove it (the limit then applies as a plain limit)")
            }
            var descriptor = RLSDescriptor(key: key, value: value)
            descriptor.shadowMode = try fields["shadow_mode"]?.bool() ?? false
            descriptor.shareThreshold = try fields["share_threshold"]?.bool() ?? false
            if descriptor.shareThreshold, !descriptor.isWildcard, let node = fields["share_threshold"] {
                throw node.error(
                    .invalidValue, "share_threshold can only be used with wildcard values (containing '*'), but found key '\(compositeKey)'"
                )
            }
            for flag in ["detailed_metric", "value_to_metric"] { _ = try fields[flag]?.bool() }
            if let limitNode = fields["rate_limit"] { descriptor.limit = try decodeRLSLimit(limitNode) }
            if let children = fields["descriptors"] {
                descriptor.descriptors = try decodeRLSDescriptors(children, parents: "\(parents).\(compositeKey)")
            }
            descriptors.append(descriptor)
        }
        return descriptors
    }

    /// A `rate_limit`: envoyproxy/ratelimit's fields, then Sluice's `algorithm`, `burst` and a global policy's fields.
    private func decodeRLSLimit(_ node: ConfigurationNode) throws(ConfigurationError) -> RLSLimit {
        var ignoredLines: [String: Int] = [:]
        let fields = try node.fields(
            allowed: Self.rlsLimitFields, expectation: "a mapping with unit and requests_per_unit, such as { unit: second, requests_per_unit: 10 }",
            requirement: "a rate_limit needs a unit", lines: &ignoredLines
        )
        let unlimited = try fields["unlimited"]?.bool() ?? false
        let units = RLSLimit.Unit.allCases.map(\.rawValue).joined(separator: ", ")
        var unit: RLSLimit.Unit?
        if let unitNode = fields["unit"] {
            unit = unitNode.scalarText.flatMap { RLSLimit.Unit(rawValue: $0.lowercased()) }
            if unlimited, unit != nil { throw unitNode.error(.invalidValue, "should not specify rate limit unit when unlimited") }
            if !unlimited, unit == nil {
                throw unitNode.error(.invalidValue, "invalid rate limit unit '\(unitNode.scalarText ?? "")'; use one of \(units)")
            }
        } else if !unlimited {
            throw ConfigurationError(.missingField, path: node.childPath("unit"), line: node.line, "invalid rate limit unit ''; use one of \(units)")
        }
        // Absent, as in envoyproxy/ratelimit, it is 0: every request is over the limit.
        let requestsPerUnit = try fields["requests_per_unit"]?.integer(in: 0...RateLimit.maximumLimit) ?? 0
        var name = ""
        if let nameNode = fields["name"] {
            guard let text = nameNode.scalarText else { throw nameNode.error(.invalidValue, "must be a name, got \(nameNode.shown)") }
            name = text
        }
        var replaces: [String] = []
        if let replacesNode = fields["replaces"] {
            for item in try replacesNode.elements(expectation: "a list of { name: ... }") {
                let entries = try item.entries(allowed: ["name"], expectation: "a mapping with name, such as { name: specific_limit }")
                guard let replaced = entries.first?.value.scalarText, !replaced.isEmpty else {
                    throw item.error(.invalidValue, "should not have an empty replaces entry")
                }
                guard replaced != name else { throw item.error(.invalidValue, "replaces should not contain name of same descriptor") }
                replaces.append(replaced)
            }
        }
        let algorithm: Algorithm
        if let algorithmNode = fields["algorithm"] {
            guard let parsed = algorithmNode.scalarText.flatMap(Algorithm.init(rawValue:)) else {
                throw algorithmNode.error(.invalidValue, "must be one of \(Algorithm.allCases.map(\.rawValue).joined(separator: ", ")), got \(algorithmNode.shown)")
            }
            algorithm = parsed
        } else {
            algorithm = .fixedWindow  // envoyproxy/ratelimit's only algorithm
        }
        var burst: Int64?
        if let burstNode = fields["burst"] {
            guard algorithm == .tokenBucket else {
                throw burstNode.error(.invalidValue, "burst applies only to algorithm: token_bucket")
            }
            burst = Int64(try burstNode.positiveInteger())
        }
        let scope = try decodeScope(fields)
        var rateLimit: RateLimit?
        if !unlimited, requestsPerUnit > 0, let unit {
            do {
                rateLimit = try RateLimit(algorithm: algorithm, limit: requestsPerUnit, periodNanoseconds: unit.seconds * 1_000_000_000, burst: burst)
            } catch {
                throw (fields["requests_per_unit"] ?? node).error(.invalidValue, error.message)
            }
        }
        return RLSLimit(unit: unit, requestsPerUnit: requestsPerUnit, unlimited: unlimited, name: name, replaces: replaces, rateLimit: rateLimit, scope: scope)
    }
}
