public import SluiceCore
import Yams

extension ConfigurationDecoder {
    /// The `admin` section: `api_keys`, a list of `{ name, sha256 }`.
    func decodeAdmin(_ section: ConfigurationNode, lines: inout [String: Int]) throws(ConfigurationError) -> SluiceConfiguration.Admin {
        var admin = SluiceConfiguration.Admin()
        for (_, field) in try section.entries(allowed: ["api_keys"], expectation: "a mapping with api_keys") {
            lines[field.path] = field.line
            for element in try field.elements(expectation: "a list of { name, sha256 } entries, as `sluice keygen` prints them") {
                let entry = try element.fields(
                    allowed: ["name", "sha256"], expectation: "a mapping with name and sha256",
                    requirement: "every key needs a name and the sha256 of the key (sluice keygen prints both)", lines: &lines
                )
                let nameNode = try entry.required("name")
                guard let name = nameNode.scalarText, !name.isEmpty, name.utf8.count <= 64 else {
                    throw nameNode.error(.invalidValue, "must be a name of 1 to 64 characters, got \(nameNode.shown)")
                }
                let digestNode = try entry.required("sha256")
                guard let hex = digestNode.scalarText, let digest = SluiceConfiguration.Admin.APIKey.digest(hex: hex) else {
                    throw digestNode.error(
                        .invalidValue,
                        "must be the SHA-256 of the key as 64 hexadecimal digits (sluice keygen prints it), not the key itself; got \(hex(digestNode))"
                    )
                }
                admin.apiKeys.append(SluiceConfiguration.Admin.APIKey(name: name, sha256: digest))
            }
        }
        return admin
    }

    /// What a wrong `sha256` value was, without echoing it: it may be a key pasted by mistake.
    private func hex(_ node: ConfigurationNode) -> String {
        guard let text = node.scalarText else { return node.shown }
        return "\(text.utf8.count) characters"
    }
}

extension SluiceConfiguration {
    /// The policies of a document holding only a `policies` section (the admin API's `PUT /v1/policies` body, in
    /// JSON, which is YAML too), each mistake with its path; checked alone, without the other sections.
    public static func policies(yaml: String) -> Result<[Policy], ConfigurationErrors> {
        let decoder = ConfigurationDecoder()
        let policies = decoder.decodePoliciesDocument(yaml: yaml)
        if !decoder.problems.errors.isEmpty { return .failure(ConfigurationErrors(errors: decoder.problems.errors)) }
        return .success(policies)
    }
}

extension SluiceConfiguration {
    /// One override of `policy` for `pattern` from `{ "limit": N, "burst": N, "period": "1m" }` (JSON or YAML),
    /// checked as the `overrides` of a file are.
    public static func override(yaml: String, pattern: String, of policy: Policy) -> Result<Policy.Override, ConfigurationErrors> {
        let decoder = ConfigurationDecoder()
        let root: Node
        do {
            guard let composed = try compose(yaml: yaml) else {
                return .failure(ConfigurationErrors(errors: [ConfigurationError(.missingField, path: "limit", "the body needs a limit")]))
            }
            root = composed
        } catch {
            return .failure(ConfigurationErrors(errors: [ConfigurationError.translating(error, yaml: yaml)]))
        }
        var lines: [String: Int] = [:]
        let entry = ConfigurationNode(node: root, path: "", line: root.mark?.line)
        guard let override = decoder.attempt({ () throws(ConfigurationError) in try decoder.decodeOverride(pattern: pattern, entry, of: policy, lines: &lines) })
        else { return .failure(ConfigurationErrors(errors: decoder.problems.errors)) }
        return .success(override)
    }
}

extension ConfigurationDecoder {
    /// `{"policies": {...}}`: every policy that could be read; mistakes go to ``problems``.
    func decodePoliciesDocument(yaml: String) -> [Policy] {
        let composed: Node?
        do {
            composed = try compose(yaml: yaml)
        } catch {
            problems.errors.append(ConfigurationError.translating(error, yaml: yaml))
            return []
        }
        guard let root = composed else {
            problems.errors.append(ConfigurationError(.missingField, path: "policies", "the body needs a policies object"))
            return []
        }
        let document = ConfigurationNode(node: root, path: "", line: root.mark?.line)
        guard
            let entries = attempt({ () throws(ConfigurationError) in
                try document.entries(allowed: ["policies"], expectation: "an object with policies, such as {\"policies\": {\"api\": {...}}}")
            })
        else { return [] }
        guard let section = entries.first(where: { $0.name == "policies" })?.value else {
            problems.errors.append(ConfigurationError(.missingField, path: "policies", "the body needs a policies object"))
            return []
        }
        var lines: [String: Int] = [:]
        return decodePolicies(section, lines: &lines)
    }
}
