import SluiceCore

extension ConfigurationDecoder {
    /// The `redis` section: `url` is required, the rest have defaults.
    func decodeRedis(
        _ section: ConfigurationNode, lines: inout [String: Int]
    ) throws(ConfigurationError) -> SluiceConfiguration.Redis {
        let fields = ["url", "timeout", "key_prefix", "max_leases"]
        let expectation = "a mapping with \(fields.joined(separator: ", ")), such as { url: \"redis://127.0.0.1:6379/0\" }"
        if section.isNull { throw section.error(.invalidValue, "must be \(expectation), got \(section.shown)") }
        let entries = try section.entries(allowed: fields, expectation: expectation)
        guard let urlNode = entries.first(where: { $0.name == "url" })?.value else {
            throw ConfigurationError(.missingField, path: section.childPath("url"), line: section.line, "missing; the redis section needs a url such as \"redis://127.0.0.1:6379/0\"")
        }
        lines[urlNode.path] = urlNode.line
        var redis: SluiceConfiguration.Redis
        switch SluiceConfiguration.Redis.parseURL(urlNode.scalarText ?? "") {
        case .success(let parsed): redis = parsed
        case .failure(let failure): throw urlNode.error(.invalidValue, "\(failure.reason); got \(urlNode.shown)")
        }
        for (name, field) in entries where name != "url" {
            lines[field.path] = field.line
            switch name {
            case "timeout":
                do {
                    redis.timeoutNanoseconds = try PolicyDuration.parseNanoseconds(field.scalarText ?? "")
                } catch {
                    throw field.error(.invalidValue, "must be a duration from 1ms to 10s, such as 50ms; got \(field.shown)")
                }
            case "key_prefix":
                guard let text = field.scalarText else { throw field.error(.invalidValue, "must be a string, got \(field.shown)") }
                redis.keyPrefix = text
            default: redis.maxLeases = try field.positiveInteger()
            }
        }
        return redis
    }
}
