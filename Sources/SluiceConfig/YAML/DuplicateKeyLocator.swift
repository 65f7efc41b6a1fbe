import Yams

/// Finds the path and line of a duplicate key that Yams rejected.
///
/// Yams refuses a mapping with a repeated key while composing, reporting only the key and its first position,
/// so there is no tree to take a path from. The locator renames that first occurrence by inserting a marker,
/// composes the text again (now without the duplicate), and looks for the marker in the tree: its mapping's
/// path, and the line of the key left with the original name, are what the user needs to see.
struct DuplicateKeyLocator {
    let yaml: String
    /// The repeated key.
    let name: String
    /// Where the first occurrence starts (line and column count from 1, columns in Unicode scalars).
    let first: Mark

    private static let marker = "sluice-duplicate-marker-"

    /// The dotted path of the repeated key and the line of its second occurrence, or nil if they cannot be found
    /// (several duplicates at once, or a key that is not a simple scalar).
    func locate() -> (path: String, line: Int)? {
        guard let marked = markedText(), let root = try? compose(yaml: marked) else { return nil }
        return find(in: root, path: "")
    }

    /// `yaml` with the marker inserted at the start of the first occurrence (inside its quotes, if quoted).
    private func markedText() -> String? {
        var scalars = Array(yaml.unicodeScalars)
        var line = 1
        var index = 0
        // libyaml counts CR LF, CR, LF, NEL, LS and PS as one line break each.
        while line < first.line, index < scalars.count {
            let scalar = scalars[index]
            index += 1
            switch scalar {
            case "\r":
                if index < scalars.count, scalars[index] == "\n" { index += 1 }
                line += 1
            case "\n", "\u{85}", "\u{2028}", "\u{2029}":
                line += 1
            default:
                break
            }
        }
        index += first.column - 1
        guard line == first.line, index >= 0, index < scalars.count else { return nil }
        if scalars[index] == "\"" || scalars[index] == "'" { index += 1 }
        scalars.insert(contentsOf: Self.marker.unicodeScalars, at: index)
        var text = String.UnicodeScalarView()
        text.append(contentsOf: scalars)
        return String(text)
    }

    private func find(in node: Node, path: String) -> (path: String, line: Int)? {
        switch node {
        case .mapping(let mapping):
            let keys = mapping.map(\.key)
            if keys.contains(where: { $0.scalar?.string == Self.marker + name }),
                let second = keys.first(where: { $0.scalar?.string == name }), let line = second.mark?.line
            {
                return (path.isEmpty ? name : "\(path).\(name)", line)
            }
            for (key, value) in mapping {
                let keyName = key.scalar?.string ?? "?"
                if let found = find(in: value, path: path.isEmpty ? keyName : "\(path).\(keyName)") { return found }
            }
            return nil
        case .sequence(let sequence):
            for (offset, element) in sequence.enumerated() {
                if let found = find(in: element, path: "\(path)[\(offset)]") { return found }
            }
            return nil
        case .scalar, .alias:
            return nil
        }
    }
}
