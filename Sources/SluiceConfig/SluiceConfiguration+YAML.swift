import Foundation

extension SluiceConfiguration {
    /// Parses and validates a YAML configuration.
    ///
    /// - Parameter yaml: the text of a configuration file.
    /// - Returns: the configuration, with every default filled in.
    /// - Throws: ``ConfigurationError`` for the first mistake, naming its field and line: a YAML syntax error,
    ///   an empty document, an unknown section or field, a missing or ill-typed value, a duplicate name, or no policy.
    ///   Files named by `rls.files` are read relative to `baseDirectory` (the working directory when nil).
    public static func parse(yaml: String, baseDirectory: String? = nil) throws(ConfigurationError) -> SluiceConfiguration {
        try ConfigurationDecoder(baseDirectory: baseDirectory).decode(yaml: yaml)
    }

    /// Every mistake in a YAML configuration that can be found in one pass, in the order found; empty when it is
    /// valid. (``parse(yaml:)`` throws the first of them.)
    public static func problems(yaml: String, baseDirectory: String? = nil) -> [ConfigurationError] {
        let decoder = ConfigurationDecoder(baseDirectory: baseDirectory)
        _ = decoder.decodeReportingAll(yaml: yaml)
        return decoder.problems.errors
    }

    /// Every mistake in a configuration file, as ``problems(yaml:)``; an unreadable file is one problem.
    public static func problems(path: String) -> [ConfigurationError] {
        do {
            return problems(yaml: try readFile(path), baseDirectory: directory(of: path))
        } catch {
            return [error]
        }
    }

    /// Reads, parses and validates a configuration file.
    ///
    /// - Parameter path: the file's path.
    /// - Returns: the configuration.
    /// - Throws: ``ConfigurationError`` with `.unreadableFile` naming `path` when the file is missing, a directory,
    ///   unreadable or not UTF-8; otherwise as ``parse(yaml:)``.
    public static func load(path: String) throws(ConfigurationError) -> SluiceConfiguration {
        try parse(yaml: readFile(path), baseDirectory: directory(of: path))
    }

    /// Reads, parses and validates a configuration file, returning its text too (what the admin API rewrites).
    ///
    /// - Throws: as ``load(path:)``.
    public static func loadDocument(path: String) throws(ConfigurationError) -> (configuration: SluiceConfiguration, text: String) {
        let text = try readFile(path)
        return (try parse(yaml: text, baseDirectory: directory(of: path)), text)
    }

    /// Parses `yaml` as the file at `path` would be (its relative `rls.files` beside it).
    public static func parse(yaml: String, asFileAt path: String) throws(ConfigurationError) -> SluiceConfiguration {
        try parse(yaml: yaml, baseDirectory: directory(of: path))
    }

    /// The folder of `path` (`.` for a bare file name), where its relative `rls.files` are.
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// The text of the file at `path`, or why it cannot be read.
    static func readFile(_ path: String) throws(ConfigurationError) -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ConfigurationError(.unreadableFile, "cannot read configuration file '\(path)': no such file")
        }
        guard !isDirectory.boolValue else {
            throw ConfigurationError(.unreadableFile, "cannot read configuration file '\(path)': it is a directory")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError(.unreadableFile, "cannot read configuration file '\(path)': permission denied or read error")
        }
        guard let yaml = String(validating: data, as: UTF8.self) else {
            throw ConfigurationError(.unreadableFile, "cannot read configuration file '\(path)': it is not UTF-8 text")
        }
        return yaml
    }
}
