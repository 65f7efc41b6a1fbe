public import SluiceCore
import Yams

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
    /// was. The section runs from its `policies:` line to the line of the next top-level key, as the YAML parser
    /// places them, less the blank and comment lines just before that key (they belong to it). Comments inside the
    /// old section are not kept. A document without the section gets it at its end. A document whose `policies`
    /// key does not begin its line, or shares a line with another top-level key (flow style, `{ policies: …,
    /// limits: … }`), or whose top-level keys are indented, is returned unchanged: its lines cannot be replaced whole, and the caller, which reads the
    /// result back, refuses the change.
    public static func replacingPolicies(in document: String, with policies: [Policy]) -> String {
        let lines = yamlLines(document)
        let section = policiesSection(policies).split(separator: "\n", omittingEmptySubsequences: true).joined(separator: "\n") + "\n"
        let span: Range<Int>
        switch policiesLines(in: document, lineCount: lines.count) {
        case .absent:
            guard let last = lines.last else { return section }
            return document + (last.end.isEmpty ? "\n\n" : "\n") + section
        case .sharedLine:
            return document
        case .lines(let lines): span = lines
        }
        var end = span.upperBound
        while end > span.lowerBound + 1 {
            let text = String(lines[end - 1].text)
            guard text.trimmingWhitespace.isEmpty || text.hasPrefix("#") else { break }
            end -= 1
        }
        let before = lines[..<span.lowerBound].map { $0.text + $0.end }.joined()
        let after = lines[end...].map { $0.text + $0.end }.joined()
        return before + section + after
    }

    /// The document's lines as YAML counts them, each with the break that ends it (empty for a last line without
    /// one): a line ends at LF, CR LF, a lone CR, NEL, LS or PS, so the parser's line numbers index this array.
    static func yamlLines(_ document: String) -> [(text: Substring, end: Substring)] {
        let scalars = document.unicodeScalars
        var lines: [(text: Substring, end: Substring)] = []
        var lineStart = scalars.startIndex
        var index = scalars.startIndex
        while index < scalars.endIndex {
            let scalar = scalars[index]
            guard scalar == "\n" || scalar == "\r" || scalar == "\u{85}" || scalar == "\u{2028}" || scalar == "\u{2029}" else {
                index = scalars.index(after: index)
                continue
            }
            var next = scalars.index(after: index)
            if scalar == "\r", next < scalars.endIndex, scalars[next] == "\n" { next = scalars.index(after: next) }
            lines.append((Substring(scalars[lineStart..<index]), Substring(scalars[index..<next])))
            lineStart = next
            index = next
        }
        if lineStart < scalars.endIndex { lines.append((Substring(scalars[lineStart...]), "")) }
        return lines
    }

    private enum PoliciesLines {
        case absent
        case sharedLine
        case lines(Range<Int>)
    }

    /// Where the top-level `policies` entry is, in 0-based lines, from the parser's marks: its key's line up to the
    /// next top-level key's line (or `lineCount`). Found by the parser, not by scanning for unindented text: a flow
    /// mapping may continue on a line that starts in the first column.
    private static func policiesLines(in document: String, lineCount: Int) -> PoliciesLines {
        guard let root = try? compose(yaml: document), let mapping = root.mapping else { return .absent }
        let keys = Array(mapping.keys)
        // Top-level keys indented (valid YAML when all are): a section written in column 1 would not fit.
        if let first = keys.first?.mark, first.column != 1 { return .sharedLine }
        guard let index = keys.firstIndex(where: { $0.string == "policies" }) else { return .absent }
        guard let keyMark = keys[index].mark, keyMark.column == 1 else { return .sharedLine }
        let start = keyMark.line - 1
        let end: Int
        if index + 1 < keys.count {
            guard let next = keys[index + 1].mark, next.line - 1 > start else { return .sharedLine }
            end = next.line - 1
        } else {
            end = lineCount
        }
        guard 0 <= start, start < end, end <= lineCount else { return .sharedLine }
        return .lines(start..<end)
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
