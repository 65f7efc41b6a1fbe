extension ConfigurationDecoder {
    /// The `forward_auth` section's fields, in the order messages list them.
    static let forwardAuthFields = ["deny_status", "trusted_proxies", "rules"]
    /// A rule's fields, in the order messages list them.
    static let ruleFields = ["path_prefix", "methods", "limits"]
    /// A limit's fields, in the order messages list them.
    static let limitFields = ["policy", "by"]

    /// The `forward_auth` section; absent fields keep their defaults. Ranges, and whether each limit names a
    /// policy, are checked by the configuration's init, which knows every policy whatever the sections' order.
    func decodeForwardAuth(
        _ section: ConfigurationNode, lines: inout [String: Int]
    ) throws(ConfigurationError) -> SluiceConfiguration.ForwardAuth {
        var forwardAuth = SluiceConfiguration.ForwardAuth()
        let expectation = "a mapping with \(Self.forwardAuthFields.joined(separator: ", "))"
        for (name, field) in try section.entries(allowed: Self.forwardAuthFields, expectation: expectation) {
            lines[field.path] = field.line
            switch name {
            case "deny_status": forwardAuth.denyStatus = try field.positiveInteger()
            case "trusted_proxies": forwardAuth.trustedProxies = try decodeTrustedProxies(field, lines: &lines)
            default: forwardAuth.rules = try decodeRules(field, lines: &lines)
            }
        }
        return forwardAuth
    }

    /// `trusted_proxies`: a list of addresses and CIDR blocks; an empty list trusts no peer.
    func decodeTrustedProxies(
        _ field: ConfigurationNode, lines: inout [String: Int]
    ) throws(ConfigurationError) -> [SluiceConfiguration.IPNetwork] {
        var networks: [SluiceConfiguration.IPNetwork] = []
        let expectation = "a list of addresses and CIDR blocks, such as [\"10.0.0.0/8\", \"::1\"]"
        for element in try field.elements(expectation: expectation) {
            lines[element.path] = element.line
            guard let text = element.scalarText else {
                throw element.error(
                    .invalidValue, "must be an IP address or a CIDR block such as \"10.0.0.0/8\", got \(element.shown)"
                )
            }
            switch SluiceConfiguration.IPNetwork.parse(text) {
            case .success(let network): networks.append(network)
            case .failure(let failure): throw element.error(.invalidValue, "\(failure.reason); got \(element.shown)")
            }
        }
        return networks
    }

    /// `rules`: a list of rules, in the order they are tried.
    func decodeRules(
        _ field: ConfigurationNode, lines: inout [String: Int]
    ) throws(ConfigurationError) -> [SluiceConfiguration.ForwardAuth.Rule] {
        var rules: [SluiceConfiguration.ForwardAuth.Rule] = []
        let expectation = "a list of rules, each a mapping with path_prefix, limits and optionally methods"
        for element in try field.elements(expectation: expectation) {
            lines[element.path] = element.line
            // Each rule on its own: a mistake in one is recorded, and the next rule is read.
            if let rule = attempt({ () throws(ConfigurationError) in try decodeRule(element, lines: &lines) }) { rules.append(rule) }
        }
        return rules
    }

    /// One rule; its path prefix and limits are required.
    func decodeRule(
        _ element: ConfigurationNode, lines: inout [String: Int]
    ) throws(ConfigurationError) -> SluiceConfiguration.ForwardAuth.Rule {
        let expectation =
            "a mapping with path_prefix, limits and optionally methods, such as"
            + " { path_prefix: /, limits: [{ policy: api, by: api_key }] }"
        let fields = try element.fields(
            allowed: Self.ruleFields, expectation: expectation, requirement: "every rule needs path_prefix and limits", lines: &lines
        )
        let prefixNode = try fields.required("path_prefix")
        guard let pathPrefix = prefixNode.scalarText else {
            throw prefixNode.error(.invalidValue, "must be a path prefix such as /login or /, got \(prefixNode.shown)")
        }
        var methods: Set<String>?
        if let methodsNode = fields["methods"] {
            methods = try decodeMethods(methodsNode, lines: &lines)
        }
        let limitsNode = try fields.required("limits")
        var limits: [SluiceConfiguration.ForwardAuth.Limit] = []
        let limitsExpectation = "a list of limits, such as [{ policy: api, by: api_key }]"
        for limitNode in try limitsNode.elements(expectation: limitsExpectation) {
            lines[limitNode.path] = limitNode.line
            limits.append(try decodeLimit(limitNode, lines: &lines))
        }
        return SluiceConfiguration.ForwardAuth.Rule(pathPrefix: pathPrefix, methods: methods, limits: limits)
    }

    /// `methods`: HTTP method names in any case, stored uppercased; each is checked here, where its line is known.
    func decodeMethods(_ field: ConfigurationNode, lines: inout [String: Int]) throws(ConfigurationError) -> Set<String> {
        var methods = Set<String>()
        for element in try field.elements(expectation: "a list of methods, such as [GET, POST]") {
            lines[element.path] = element.line
            let method = element.scalarText.map { $0.uppercased() } ?? ""
            guard SluiceConfiguration.ForwardAuth.Rule.isValidMethod(method) else {
                throw element.error(.invalidValue, "a method must be letters A-Z, such as GET or POST; got \(element.shown)")
            }
            methods.insert(method)
        }
        return methods
    }

    /// One limit: a policy name, checked against the policies later, and a key source, parsed here.
    func decodeLimit(
        _ element: ConfigurationNode, lines: inout [String: Int]
    ) throws(ConfigurationError) -> SluiceConfiguration.ForwardAuth.Limit {
        let expectation = "a mapping with policy and by, such as { policy: api, by: api_key }"
        let fields = try element.fields(
            allowed: Self.limitFields, expectation: expectation,
            requirement: "every limit needs policy and by, as in { policy: api, by: api_key }", lines: &lines
        )
        let policyNode = try fields.required("policy")
        guard let policy = policyNode.scalarText else {
            throw policyNode.error(.invalidValue, "must be the name of a policy, got \(policyNode.shown)")
        }
        let byNode = try fields.required("by")
        let keySourceExpectation = SluiceConfiguration.ForwardAuth.KeySource.expectation
        guard let byText = byNode.scalarText else {
            throw byNode.error(.invalidValue, "must be \(keySourceExpectation); got \(byNode.shown)")
        }
        switch SluiceConfiguration.ForwardAuth.KeySource.parse(byText) {
        case .success(let by): return SluiceConfiguration.ForwardAuth.Limit(policy: policy, by: by)
        case .failure(let failure): throw byNode.error(.invalidValue, "\(failure.reason); got \(byNode.shown)")
        }
    }
}
