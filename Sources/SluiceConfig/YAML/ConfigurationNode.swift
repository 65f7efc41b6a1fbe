import Yams

/// A YAML node together with the dotted path and the line it was found at, so every error can name both.
struct ConfigurationNode {
    let node: Node
    /// The dotted path, such as `policies.api.limit`; empty for the document.
    let path: String
    /// The 1-based line of the key that introduced the node (of the node itself for the document).
    let line: Int?

    /// An error about this node.
    func error(_ code: ConfigurationError.Code, _ message: String) -> ConfigurationError {
        ConfigurationError(code, path: path, line: line, message)
    }

    /// The path of a child named `name`.
    func childPath(_ name: String) -> String {
        path.isEmpty ? name : "\(path).\(name)"
    }

    /// The node's resolved tag (`int`, `str`, `null`, ...); Yams exposes it only as its raw value.
    var tagName: Tag.Name { Tag.Name(rawValue: node.tag.rawValue) }

    /// Whether the node is an explicit or empty null (`key:` with nothing after it, `~`, `null`).
    var isNull: Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain || scalar.style == .any else { return false }
        return tagName == .null
    }

    /// The node as a user would recognise it after "got": `-5`, `"abc"`, `a mapping`.
    var shown: String {
        switch node {
        case .scalar(let scalar):
            if isNull { return "an empty value" }
            return tagName == .str ? "\"\(scalar.string)\"" : scalar.string
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    /// The text of a non-null scalar, or nil.
    var scalarText: String? {
        guard case .scalar(let scalar) = node, !isNull else { return nil }
        return scalar.string
    }

    /// The entries of a mapping, in file order, each with its own path and line.
    ///
    /// A null node (a section left empty) has no entries.
    ///
    /// - Parameters:
    ///   - allowed: the keys that may appear, in the order error messages list them; nil for any key.
    ///   - ignored: keys that are accepted but skipped (reserved for later features).
    ///   - noun: what a key is called in the unknown-key message (`field`, `section`).
    ///   - expectation: what this node should be, for the message when it is not a mapping.
    /// - Throws: ``ConfigurationError`` for a node that is not a mapping, a key that is not a scalar,
    ///   an unknown key, or a key given twice.
    func entries(
        allowed: [String]?, ignored: Set<String> = [], noun: String = "field", expectation: String
    ) throws(ConfigurationError) -> [(name: String, value: ConfigurationNode)] {
        if isNull { return [] }
        guard case .mapping(let mapping) = node else {
            throw error(.invalidValue, "must be \(expectation), got \(shown)")
        }
        var result: [(name: String, value: ConfigurationNode)] = []
        var seen: [String: Int?] = [:]
        for (key, value) in mapping {
            let keyLine = key.mark?.line
            guard case .scalar(let keyScalar) = key else {
                let shownKey = ConfigurationNode(node: key, path: path, line: keyLine).shown
                throw ConfigurationError(.invalidValue, path: path, line: keyLine, "keys must be plain names, got \(shownKey)")
            }
            let name = keyScalar.string
            let child = ConfigurationNode(node: value, path: childPath(name), line: keyLine ?? value.mark?.line)
            // Yams rejects keys that are equal as YAML values; `1` and `"1"` differ there but name the same thing here.
            if let firstLine = seen[name] {
                throw child.error(.duplicateKey, Self.duplicateMessage(name: name, firstLine: firstLine))
            }
            seen[name] = .some(keyLine)  // keep the entry even when the line is unknown
            if ignored.contains(name) { continue }
            if let allowed, !allowed.contains(name) {
                throw child.error(
                    .unknownField, "unknown \(noun); expected one of \(allowed.joined(separator: ", "))"
                )
            }
            result.append((name, child))
        }
        return result
    }

    /// The elements of a sequence, in file order, each with its path (`rules[0]`) and its own line.
    ///
    /// A null node (a list left empty, or with every element commented out) has no elements.
    ///
    /// - Parameter expectation: what this node should be, for the message when it is not a list.
    /// - Throws: ``ConfigurationError`` for a node that is not a list.
    func elements(expectation: String) throws(ConfigurationError) -> [ConfigurationNode] {
        if isNull { return [] }
        guard case .sequence(let sequence) = node else {
            throw error(.invalidValue, "must be \(expectation), got \(shown)")
        }
        return sequence.enumerated().map { index, element in
            ConfigurationNode(node: element, path: "\(path)[\(index)]", line: element.mark?.line ?? line)
        }
    }

    /// The message for a key given twice.
    static func duplicateMessage(name: String, firstLine: Int?) -> String {
        let first = firstLine.map { " (first at line \($0))" } ?? ""
        return "'\(name)' is defined more than once\(first); each name may appear only once here"
    }

    /// The node as a positive decimal integer.
    ///
    /// Only a plain decimal integer is accepted (`100`, `1_000_000`): not a quoted string, a float, or YAML 1.1's
    /// octal, hexadecimal and base-60 forms, which are more often mistakes than intent.
    ///
    /// - Throws: ``ConfigurationError`` with `.invalidValue` saying what was found instead.
    func positiveInteger() throws(ConfigurationError) -> Int {
        guard case .scalar(let scalar) = node, scalar.style == .plain || scalar.style == .any, tagName == .int
        else {
            throw error(.invalidValue, "must be a positive integer, got \(shown)")
        }
        var digits = Substring(scalar.string)
        if digits.first == "+" { digits = digits.dropFirst() }
        guard let first = digits.first, first.isASCII, first.isNumber,
            digits.allSatisfy({ $0 == "_" || ($0.isASCII && $0.isNumber) })
        else {
            throw error(.invalidValue, "must be a positive integer, got \(shown)")
        }
        guard first != "0" || digits.count == 1 else {
            throw error(.invalidValue, "must be a positive integer without leading zeros, got \(shown)")
        }
        guard let value = Int(digits.filter { $0 != "_" }) else {
            throw error(.invalidValue, "must be a positive integer no larger than \(Int.max), got \(shown)")
        }
        guard value > 0 else {
            throw error(.invalidValue, "must be a positive integer, got \(shown)")
        }
        return value
    }
}

/// The fields of one mapping by name, for things whose fields depend on one another (a policy, a rule, a limit).
struct ConfigurationFields {
    let node: ConfigurationNode
    let values: [String: ConfigurationNode]
    /// What every such mapping needs, for the message of a missing field ("every rule needs path_prefix and limits").
    let requirement: String

    subscript(name: String) -> ConfigurationNode? { values[name] }

    /// Field `name`, or a `missingField` error at the mapping's line.
    func required(_ name: String) throws(ConfigurationError) -> ConfigurationNode {
        guard let value = values[name] else {
            throw ConfigurationError(.missingField, path: node.childPath(name), line: node.line, "missing; \(requirement)")
        }
        return value
    }
}

extension ConfigurationNode {
    /// This node's fields by name; a null node (an empty mapping) is an error here, as such a mapping needs fields.
    ///
    /// - Parameters:
    ///   - allowed: the field names, in the order messages list them.
    ///   - expectation: what this node should be, for the message when it is not.
    ///   - requirement: what a missing required field's message says.
    ///   - lines: where each field's line is recorded.
    func fields(
        allowed: [String], expectation: String, requirement: String, lines: inout [String: Int]
    ) throws(ConfigurationError) -> ConfigurationFields {
        if isNull { throw error(.invalidValue, "must be \(expectation), got \(shown)") }
        var values: [String: ConfigurationNode] = [:]
        for (name, value) in try entries(allowed: allowed, expectation: expectation) {
            lines[value.path] = value.line
            values[name] = value
        }
        return ConfigurationFields(node: self, values: values, requirement: requirement)
    }
}

extension ConfigurationNode {
    /// The node as a YAML boolean (`true` or `false`).
    func bool() throws(ConfigurationError) -> Bool {
        guard case .scalar(let scalar) = node, tagName == .bool, let value = Bool(scalar.string.lowercased()) else {
            throw error(.invalidValue, "must be true or false, got \(shown)")
        }
        return value
    }

    /// The node as a decimal integer from 0 through `maximum`.
    func integer(in range: ClosedRange<Int64>) throws(ConfigurationError) -> Int64 {
        guard case .scalar(let scalar) = node, tagName == .int, let value = Int64(scalar.string.filter { $0 != "_" }), range.contains(value)
        else {
            throw error(.invalidValue, "must be an integer from \(range.lowerBound) to \(range.upperBound), got \(shown)")
        }
        return value
    }
}
