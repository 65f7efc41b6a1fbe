/// A configuration that cannot be used: unreadable, not YAML, or not a valid Sluice configuration.
///
/// The ``description`` names the field and the line, then says what was wrong and what would be right:
/// `policies.api.limit (line 6): must be a positive integer, got -5`.
public struct ConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of mistake was made.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Base: String, Hashable, Sendable {
            case unreadableFile, invalidYAML, emptyConfiguration, unknownField, missingField, duplicateKey
            case invalidValue, noPolicies
        }

        let base: Base

        /// The configuration file is missing, a directory, unreadable or not UTF-8.
        public static let unreadableFile = Code(base: .unreadableFile)
        /// The text is not well-formed YAML (a syntax error), or holds more than one document.
        public static let invalidYAML = Code(base: .invalidYAML)
        /// The document is empty or holds only comments.
        public static let emptyConfiguration = Code(base: .emptyConfiguration)
        /// A section or field that Sluice does not know: usually a typo.
        public static let unknownField = Code(base: .unknownField)
        /// A required field is absent.
        public static let missingField = Code(base: .missingField)
        /// The same key appears twice in one mapping (for example, two policies with one name).
        public static let duplicateKey = Code(base: .duplicateKey)
        /// A value of the wrong type or out of range.
        public static let invalidValue = Code(base: .invalidValue)
        /// The `policies` section is missing or empty.
        public static let noPolicies = Code(base: .noPolicies)

        /// The code's name, such as `invalidValue`.
        public var description: String { base.rawValue }
    }

    /// The kind of mistake.
    public let code: Code
    /// The dotted path of the offending field (`policies.api.limit`); empty when the mistake is not in one field.
    public let path: String
    /// The 1-based line of the offending field in the YAML text, when known.
    public let line: Int?
    /// The file the mistake is in, when it is not the configuration file itself (an envoyproxy/ratelimit
    /// file named by `rls.files`).
    public private(set) var file: String?
    /// A sentence saying what was wrong and what would be right.
    public let message: String

    /// Creates an error.
    ///
    /// - Parameters:
    ///   - code: the kind of mistake.
    ///   - path: the dotted path of the field, or empty.
    ///   - line: the 1-based line, or nil.
    ///   - message: what was wrong and what would be right.
    public init(_ code: Code, path: String = "", line: Int? = nil, _ message: String) {
        self.code = code
        self.path = path
        self.line = line
        self.message = message
    }

    /// The same error, located in `file`.
    public func inFile(_ file: String) -> ConfigurationError {
        var located = self
        located.file = file
        return located
    }

    /// `path (line N): message`, leaving out whichever of path and line is unknown; prefixed with `file:` (and
    /// the line, `file:N:`) when the mistake is in another file.
    public var description: String {
        if let file {
            let place = line.map { "\(file):\($0): " } ?? "\(file): "
            return place + (path.isEmpty ? message : "\(path): \(message)")
        }
        return switch (path.isEmpty, line) {
        case (false, let line?): "\(path) (line \(line)): \(message)"
        case (false, nil): "\(path): \(message)"
        case (true, let line?): "line \(line): \(message)"
        case (true, nil): message
        }
    }
}

/// Several mistakes found at once (a configuration or a policies document checked as a whole), in the order
/// found.
public struct ConfigurationErrors: Error, Sendable, CustomStringConvertible {
    /// The mistakes; never empty.
    public let errors: [ConfigurationError]

    /// Creates the list.
    public init(errors: [ConfigurationError]) {
        self.errors = errors
    }

    public var description: String { errors.map(\.description).joined(separator: "; ") }
}
