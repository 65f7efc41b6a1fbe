import SluiceCore

extension ConfigurationDecoder {
    /// The `rls` section: its settings, and every file it names read and checked. A file's mistakes are
    /// recorded with its name and line, and the other files are still read.
    func decodeRLS(_ section: ConfigurationNode, lines: inout [String: Int]) throws(ConfigurationError) -> SluiceConfiguration.RLS {
        var rls = SluiceConfiguration.RLS()
        let fieldNames = ["files", "response_headers", "ietf_headers", "max_descriptors", "max_entries"]
        for (name, field) in try section.entries(allowed: fieldNames, expectation: "a mapping with \(fieldNames.joined(separator: ", "))") {
            lines[field.path] = field.line
            switch name {
            case "files":
                for element in try field.elements(expectation: "a list of envoyproxy/ratelimit files, such as [\"ratelimit/config.yaml\"]") {
                    guard let path = element.scalarText, !path.isEmpty else { throw element.error(.invalidValue, "must be a file path, got \(element.shown)") }
                    rls.files.append(path)
                }
            case "response_headers": rls.responseHeaders = try field.bool()
            case "ietf_headers": rls.ietfHeaders = try field.bool()
            case "max_descriptors": rls.maxDescriptors = try field.positiveInteger()
            default: rls.maxEntries = try field.positiveInteger()
            }
        }
        var files: [String: String] = [:]  // domain -> the file that defined it
        for file in rls.files {
            let path = file.hasPrefix("/") || baseDirectory == nil ? file : "\(baseDirectory ?? "")/\(file)"
            let read = attempt { () throws(ConfigurationError) in
                try decodeRLSFile(yaml: try SluiceConfiguration.readFile(path), file: file)
            }
            guard let domain = read else { continue }
            if let first = files[domain.name] {
                problems.errors.append(
                    ConfigurationError(.duplicateKey, path: "domain", "duplicate domain '\(domain.name)' in config file (first defined in \(first))")
                        .inFile(file)
                )
                continue
            }
            files[domain.name] = file
            rls.domains.append(domain)
        }
        return rls
    }
}
