import SluiceCore

extension ConfigurationDecoder {
    static let redisFields = [
        "url", "cluster", "sentinel", "username", "password", "password_file", "timeout", "key_prefix", "max_leases",
    ]

    /// The `redis` section: exactly one of `url`, `cluster` and `sentinel`; the rest have defaults.
    func decodeRedis(
        _ section: ConfigurationNode, lines: inout [String: Int]
    ) throws(ConfigurationError) -> SluiceConfiguration.Redis {
        let expectation = "a mapping with url, cluster or sentinel, and optionally username, password, password_file, timeout, key_prefix, max_leases"
        let fields = try section.fields(
            allowed: Self.redisFields, expectation: expectation,
            requirement: "the redis section needs one of url, cluster or sentinel, such as url: \"redis://127.0.0.1:6379/0\"", lines: &lines
        )
        let given = ["url", "cluster", "sentinel"].filter { fields[$0] != nil }
        guard let kind = given.first else {
            throw ConfigurationError(
                .missingField, path: section.childPath("url"), line: section.line,
                "missing; the redis section needs one of url, cluster or sentinel, such as url: \"redis://127.0.0.1:6379/0\""
            )
        }
        let location = try fields.required(kind)
        if given.count > 1, let second = fields[given[1]] {
            throw second.error(.invalidValue, "use exactly one of url, cluster and sentinel; got \(given.joined(separator: " and "))")
        }
        var redis = SluiceConfiguration.Redis()
        switch kind {
        case "url":
            switch SluiceConfiguration.Redis.parseURL(location.scalarText ?? "") {
            case .success(let parsed): redis = parsed
            case .failure(let failure): throw location.error(.invalidValue, "\(failure.reason); got \(location.shown)")
            }
        case "cluster":
            let seeds = try decodeNodes(location, expectation: "a list of seed nodes, such as [\"10.0.0.1:6379\", \"10.0.0.2:6379\"]")
            redis.deployment = .cluster(seeds: seeds)
        default:
            let sentinel = try location.fields(
                allowed: ["master", "nodes", "sentinel_password"], expectation: "a mapping with master and nodes",
                requirement: "sentinel needs master and nodes, such as { master: mymaster, nodes: [\"10.0.0.9:26379\"] }", lines: &lines
            )
            let masterNode = try sentinel.required("master")
            guard let master = masterNode.scalarText, !master.isEmpty else {
                throw masterNode.error(.invalidValue, "must be the master's name as Sentinel knows it, got \(masterNode.shown)")
            }
            let nodes = try decodeNodes(try sentinel.required("nodes"), expectation: "a list of sentinels, such as [\"10.0.0.9:26379\"]")
            redis.deployment = .sentinel(master: master, sentinels: nodes, password: try sentinel["sentinel_password"].map(secret))
        }
        if let user = fields["username"] {
            guard let text = user.scalarText, !text.isEmpty else { throw user.error(.invalidValue, "must be a user name, got \(user.shown)") }
            if redis.username != nil { throw user.error(.invalidValue, "the url already names a user; give it in one place") }
            redis.username = text
        }
        if let password = fields["password"] {
            if fields["password_file"] != nil { throw password.error(.invalidValue, "give password or password_file, not both") }
            if redis.password != nil { throw password.error(.invalidValue, "the url already holds a password; give it in one place") }
            redis.password = try secret(password)
        }
        if let file = fields["password_file"] {
            if redis.password != nil { throw file.error(.invalidValue, "the url already holds a password; give it in one place") }
            redis.password = try secretFromFile(file)
        }
        if let timeout = fields["timeout"] {
            do {
                redis.timeoutNanoseconds = try PolicyDuration.parseNanoseconds(timeout.scalarText ?? "")
            } catch {
                throw timeout.error(.invalidValue, "must be a duration from 1ms to 10s, such as 50ms; got \(timeout.shown)")
            }
        }
        if let prefix = fields["key_prefix"] {
            guard let text = prefix.scalarText else { throw prefix.error(.invalidValue, "must be a string, got \(prefix.shown)") }
            redis.keyPrefix = text
        }
        if let leases = fields["max_leases"] { redis.maxLeases = try leases.positiveInteger() }
        return redis
    }

    /// A list of `host:port` addresses, at least one.
    private func decodeNodes(_ node: ConfigurationNode, expectation: String) throws(ConfigurationError) -> [SluiceConfiguration.Redis.Node] {
        var nodes: [SluiceConfiguration.Redis.Node] = []
        for element in try node.elements(expectation: expectation) {
            guard let text = element.scalarText else { throw element.error(.invalidValue, "must be host:port, got \(element.shown)") }
            switch SluiceConfiguration.Redis.Node.parse(text) {
            case .success(let parsed): nodes.append(parsed)
            case .failure(let failure): throw element.error(.invalidValue, "\(failure.reason); got \(element.shown)")
            }
        }
        guard !nodes.isEmpty else { throw node.error(.invalidValue, "must list at least one node, as in \(expectation.drop { $0 != "[" })") }
        return nodes
    }

    /// A password as written; the message of a mistake never shows it.
    private func secret(_ node: ConfigurationNode) throws(ConfigurationError) -> String {
        guard let text = node.scalarText, !text.isEmpty else {
            throw node.error(.invalidValue, "must be a non-empty string")
        }
        return text
    }
}
