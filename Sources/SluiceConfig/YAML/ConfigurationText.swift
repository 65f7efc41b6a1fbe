public import SluiceCore

/// Writes configuration back as text: the `policies` section as YAML (for the admin API's writes to the
/// configuration file), with every other part of the file kept as it was.
public enum ConfigurationText {
    /// A value of a configuration field, as written in YAML and JSON alike.
    public enum Value: Sendable, Hashable {
        case integer(Int64)
        case text(String)
    }

    /// `text` as a double-quoted string that is valid JSON and valid YAML alike: quotes, backslashes and every
    /// character either format may not hold raw (controls, DEL, C1 controls, U+2028, U+2029, U+FEFF) escaped.
    public static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar.value == 0x2028 || scalar.value == 0x2029
                || scalar.value == 0xFEFF:
                let hex = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }

    /// The fields that configure `policy`, in the order a file lists them, defaults left out (a token bucket's
    /// burst equal to its limit, a local scope, enforce mode); overrides are ``overrideFields(_:of:)``.
    public static func fields(of policy: Policy) -> [(name: String, value: Value)] {
        let rateLimit = policy.rateLimit
        var fields: [(name: String, value: Value)] = [
            ("algorithm", .text(rateLimit.algorithm.rawValue)), ("limit", .integer(rateLimit.limit)),
            ("period", .text(PolicyDuration.format(nanoseconds: rateLimit.periodNanoseconds))),
        ]
        if rateLimit.algorithm == .tokenBucket, rateLimit.burst != rateLimit.limit { fields.append(("burst", .integer(rateLimit.burst))) }
        if policy.mode != .enforce { fields.append(("mode", .text(policy.mode.rawValue))) }
        if let global = policy.global {
            fields.append(("scope", .text("global")))
            if global.sync != .leased { fields.append(("sync", .text(global.sync.rawValue))) }
            if global.onStoreFailure != .local { fields.append(("on_store_failure", .text(global.onStoreFailure.rawValue))) }
        }
        return fields
    }

    /// The fields of `override`, defaults left out: a burst equal to its limit, the policy's period.
    public static func overrideFields(_ override: Policy.Override, of policy: Policy) -> [(name: String, value: Value)] {
        let rateLimit = override.rateLimit
        var fields: [(name: String, value: Value)] = [("limit", .integer(rateLimit.limit))]
        if rateLimit.algorithm == .tokenBucket, rateLimit.burst != rateLimit.limit { fields.append(("burst", .integer(rateLimit.burst))) }
        if rateLimit.periodNanoseconds != policy.rateLimit.periodNanoseconds {
            fields.append(("period", .text(PolicyDuration.format(nanoseconds: rateLimit.periodNanoseconds))))
        }
        return fields
    }

    /// The `policies` section in YAML, one policy a block, each override on one line.
    public static func policiesSection(_ policies: [Policy]) -> String {
        func flow(_ fields: [(name: String, value: Value)]) -> String {
            "{ " + fields.map { "\($0.name): \(yaml($0.value))" }.joined(separator: ", ") + " }"
        }
        guard !policies.isEmpty else { return "policies: {}\n" }
        var text = "policies:\n"
        for policy in policies {
            text += "  \(quoted(policy.name)):\n"
            for field in fields(of: policy) { text += "    \(field.name): \(yaml(field.value))\n" }
            guard !policy.overrides.isEmpty else { continue }
            text += "    overrides:\n"
            for override in policy.overrides {
                text += "      \(quoted(override.pattern)): \(flow(overrideFields(override, of: policy)))\n"
            }
        }
        return text
    }

    private static func yaml(_ value: Value) -> String {
        switch value {
        case .integer(let number): String(number)
        case .text(let text): text
        }
    }

    /// `document` with its top-level `policies` section replaced by `policies`; every other line is kept as it
    /// was. The section runs from its `policies:` line to the next top-level key, less the blank and comment
    /// lines just before that key (they belong to it). Comments inside the old section are not kept. A
    /// document without the section gets it at its end.
    public static func replacingPolicies(in document: String, with policies: [Policy]) -> String {
        var lines = document.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let section = policiesSection(policies).split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        func isTopLevel(_ line: String) -> Bool {
            guard let first = line.unicodeScalars.first else { return false }
            return first != " " && first != "\t" && first != "#" && first != "\r"
        }
        guard let start = lines.firstIndex(where: { $0.hasPrefix("policies:") || $0.hasPrefix("policies :") || $0.hasPrefix("\"policies\":") }) else {
            if lines.last == "" { lines.removeLast() }
            return (lines + (lines.isEmpty ? [] : [""]) + section).joined(separator: "\n") + "\n"
        }
        var end = lines[(start + 1)...].firstIndex(where: isTopLevel) ?? lines.endIndex
        // A trailing empty string is the file's final newline, not a line of the section.
        if end == lines.endIndex, lines.last == "" { end -= 1 }
        while end > start + 1, lines[end - 1].trimmingWhitespace.isEmpty || lines[end - 1].hasPrefix("#") { end -= 1 }
        lines.replaceSubrange(start..<end, with: section)
        return lines.joined(separator: "\n")
    }
}

extension String {
    /// The string without leading and trailing spaces, tabs and carriage returns.
    var trimmingWhitespace: Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return self[first...last]
    }
}
