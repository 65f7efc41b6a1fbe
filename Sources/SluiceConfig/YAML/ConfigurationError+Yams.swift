import Yams

extension ConfigurationError {
    /// A Yams error as a configuration error, with the line libyaml reported.
    ///
    /// - Parameters:
    ///   - error: what `compose(yaml:)` threw.
    ///   - yaml: the text it was composing.
    static func translating(_ error: any Error, yaml: String) -> ConfigurationError {
        guard let yamlError = error as? YamlError else {
            return ConfigurationError(.invalidYAML, "invalid YAML: \(error)")
        }
        switch yamlError {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let message: String
            switch context {
            case .none: message = problem
            // Yams's own composer errors read as one sentence: "expected a single document …, but found another".
            case .some(let context) where problem.hasPrefix("but "): message = "\(context.text), \(problem)"
            case .some(let context): message = "\(problem) (\(context.text) at line \(context.mark.line))"
            }
            return ConfigurationError(.invalidYAML, line: mark.line, "invalid YAML: \(message)")
        case .reader(let problem, let offset, _, _):
            let problemLine = offset.map { line(atCharacterOffset: $0, in: yaml) }
            return ConfigurationError(.invalidYAML, line: problemLine, "invalid YAML: \(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            let name = duplicates.first ?? ""
            if let located = DuplicateKeyLocator(yaml: yaml, name: name, first: context.mark).locate() {
                return ConfigurationError(
                    .duplicateKey, path: located.path, line: located.line,
                    ConfigurationNode.duplicateMessage(name: name, firstLine: context.mark.line)
                )
            }
            return ConfigurationError(
                .duplicateKey, line: context.mark.line,
                "'\(name)' is defined more than once in the same mapping; each name may appear only once"
            )
        default:
            return ConfigurationError(.invalidYAML, "invalid YAML: \(yamlError)")
        }
    }

    /// The 1-based line of the character `offset` characters into `text`.
    private static func line(atCharacterOffset offset: Int, in text: String) -> Int {
        1 + text.prefix(offset).reduce(0) { count, character in count + (character.isNewline ? 1 : 0) }
    }
}
