import Foundation

extension SluiceConfiguration {
    /// Parses and validates a YAML configuration.
    ///
    /// - Parameter yaml: the text of a configuration file.
    /// - Returns: the configuration, with every default filled in.
    /// - Throws: ``ConfigurationError`` for the first mistake, naming its field and line: a YAML syntax error,
    ///   an empty document, an unknown section or field, a missing or ill-typed value, a duplicate name, or no policy.
    public static func parse(yaml: String) throws(ConfigurationError) -> SluiceConfiguration {
        try ConfigurationDecoder().decode(yaml: yaml)
    }

    /// Every mistake in a YAML configuration that can be found in one pass, in the order found; empty when it is
    /// valid. (``parse(yaml:)`` throws the first of them.)
    public static func problems(yaml: String) -> [ConfigurationError] {
        let decoder = ConfigurationDecoder()
        _ = decoder.decodeReportingAll(yaml: yaml)
        return decoder.problems.errors
    }

    /// Every mistake in a configuration file, as ``problems(yaml:)``; an unreadable file is one problem.
    public static func problems(path: String) -> [ConfigurationError] {
        do {
            return problems(yaml: try readFile(path))
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
        try parse(yaml: readFile(path))
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
