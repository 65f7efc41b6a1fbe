import SluiceCore

extension ConfigurationDecoder {
    /// The `events` section: `threshold` and `webhooks`.
    func decodeEvents(_ section: ConfigurationNode, lines: inout [String: Int]) throws(ConfigurationError) -> SluiceConfiguration.Events {
        var events = SluiceConfiguration.Events()
        for (name, field) in try section.entries(allowed: ["threshold", "webhooks"], expectation: "a mapping with threshold and webhooks") {
            lines[field.path] = field.line
            if name == "threshold" {
                guard let text = field.scalarText, let value = Double(text), value > 0, value < 1 else {
                    throw field.error(.invalidValue, "must be a number between 0 and 1, such as 0.8; got \(field.shown)")
                }
                events.threshold = value
                continue
            }
            for element in try field.elements(expectation: "a list of webhooks, each with url and secret") {
                events.webhooks.append(try decodeWebhook(element, lines: &lines))
            }
        }
        return events
    }

    private func decodeWebhook(_ element: ConfigurationNode, lines: inout [String: Int]) throws(ConfigurationError) -> SluiceConfiguration.Events.Webhook {
        let fields = try element.fields(
            allowed: ["url", "secret", "secret_file", "types", "retry", "timeout"], expectation: "a mapping with url and secret",
            requirement: "every webhook needs a url and a secret (or secret_file)", lines: &lines
        )
        let urlNode = try fields.required("url")
        guard let url = urlNode.scalarText, url.lowercased().hasPrefix("http://") || url.lowercased().hasPrefix("https://") else {
            throw urlNode.error(.invalidValue, "must be an http:// or https:// URL, got \(urlNode.shown)")
        }
        let secret: String
        switch (fields["secret"], fields["secret_file"]) {
        case (let node?, nil):
            guard let text = node.scalarText, !text.isEmpty else { throw node.error(.invalidValue, "must be a non-empty string") }
            secret = text
        case (nil, let node?):
            secret = try secretFromFile(node)
        case (_?, let node?):
            throw node.error(.invalidValue, "give secret or secret_file, not both")
        case (nil, nil):
            throw ConfigurationError(.missingField, path: element.childPath("secret"), line: element.line, "missing; every webhook needs a secret (or secret_file)")
        }
        var webhook = SluiceConfiguration.Events.Webhook(url: url, secret: secret)
        if let typesNode = fields["types"] {
            var types = Set<SluiceConfiguration.Events.EventType>()
            let known = SluiceConfiguration.Events.EventType.allCases.map(\.rawValue).joined(separator: ", ")
            for typeNode in try typesNode.elements(expectation: "a list of event types (\(known))") {
                guard let type = typeNode.scalarText.flatMap(SluiceConfiguration.Events.EventType.init(rawValue:)) else {
                    throw typeNode.error(.invalidValue, "must be one of \(known), got \(typeNode.shown)")
                }
                types.insert(type)
            }
            guard !types.isEmpty else { throw typesNode.error(.invalidValue, "must name at least one of \(known)") }
            webhook.types = types
        }
        if let retryNode = fields["retry"] {
            var delays: [Int64] = []
            for delayNode in try retryNode.elements(expectation: "a list of durations, such as [1m, 5m, 30m, 2h]") {
                delays.append(try duration(delayNode, range: 1_000_000...86_400_000_000_000, shown: "from 1ms to 1d"))
            }
            guard delays.count <= 20 else { throw retryNode.error(.invalidValue, "at most 20 delays, got \(delays.count)") }
            webhook.retryNanoseconds = delays
        }
        if let timeoutNode = fields["timeout"] {
            webhook.timeoutNanoseconds = try duration(timeoutNode, range: 1_000_000...300_000_000_000, shown: "from 1ms to 5m")
        }
        return webhook
    }

    /// A duration within `range`.
    func duration(_ node: ConfigurationNode, range: ClosedRange<Int64>, shown: String) throws(ConfigurationError) -> Int64 {
        guard let text = node.scalarText, let nanoseconds = try? PolicyDuration.parseNanoseconds(text), range.contains(nanoseconds) else {
            throw node.error(.invalidValue, "must be a duration \(shown), such as 5s; got \(node.shown)")
        }
        return nanoseconds
    }

    /// The first line of the file `node` names (relative to the configuration file's folder): a secret, never
    /// shown in a message.
    func secretFromFile(_ node: ConfigurationNode) throws(ConfigurationError) -> String {
        guard let path = node.scalarText, !path.isEmpty else { throw node.error(.invalidValue, "must be a file path, got \(node.shown)") }
        let resolved = path.hasPrefix("/") || baseDirectory == nil ? path : "\(baseDirectory ?? "")/\(path)"
        let text: String
        do {
            text = try SluiceConfiguration.readFile(resolved)
        } catch {
            // The message names the file, never its contents.
            throw node.error(.invalidValue, "cannot read the secret file '\(path)'")
        }
        guard let line = text.split(whereSeparator: \.isNewline).first, !line.isEmpty else {
            throw node.error(.invalidValue, "the secret file '\(path)' is empty")
        }
        return String(line)
    }
}
