import Logging
import NIOCore
import NIOHTTP1
import SluiceConfig
import SluiceCore

extension AdminAPI {
    // MARK: GET and PUT /v1/policies

    /// `GET /v1/policies`: every policy with its overrides, the body `PUT` takes; 304 when `If-None-Match`
    /// names the current ETag.
    func policies(_ current: ConfigurationState.Current, request: HTTPAPIRequest) -> HTTPAPIResponse {
        let etag = state.etag(current)
        if let condition = request.headers.first(name: "if-none-match"), Self.matches(condition, etag: etag, weak: true) {
            var response = HTTPAPIResponse(status: .notModified, body: "")
            response.addHeader(name: "ETag", value: etag)
            return response
        }
        var response = HTTPAPIResponse(status: .ok, body: Self.json(current.configuration.policies))
        response.addHeader(name: "ETag", value: etag)
        return response
    }

    /// `PUT /v1/policies`: replaces the whole set, all or nothing, written to the file before it is in force.
    func replacePolicies(_ request: HTTPAPIRequest, by actor: Actor) -> HTTPAPIResponse {
        guard let body = request.body, body.readableBytes > 0 else {
            return .error(.badRequest, code: "missing_body", "send {\"policies\": {...}} with the fields of the configuration file")
        }
        let policies: [Policy]
        switch SluiceConfiguration.policies(yaml: String(buffer: body)) {
        case .success(let read): policies = read
        case .failure(let errors): return Self.invalid(errors)
        }
        return change(request, by: actor, action: "replaced the policies") { _ in Result<[Policy], Refusal>.success(policies) } render: { current in
            Self.json(current.configuration.policies)
        }
    }

    // MARK: PUT and DELETE /v1/policies/{name}/overrides/{key}

    /// Sets (`PUT`, body `{"limit": N, "burst": N, "period": "1m"}`) or removes (`DELETE`) the override of `pattern`.
    func changeOverride(_ request: HTTPAPIRequest, policy name: String, pattern: String, remove: Bool, by actor: Actor) -> HTTPAPIResponse {
        let body = request.body.map { String(buffer: $0) } ?? ""
        if !remove, body.isEmpty {
            return .error(.badRequest, code: "missing_body", "send the override, such as {\"limit\": 1000, \"burst\": 200}")
        }
        let action = remove ? "removed the override of '\(pattern)' in \(name)" : "set the override of '\(pattern)' in \(name)"
        return change(request, by: actor, action: action) { current in
            var policies = current.configuration.policies
            guard let index = policies.firstIndex(where: { $0.name == name }) else {
                return .failure(Refusal(.error(.notFound, code: "unknown_policy", "no policy named \(excerpt(name))")))
            }
            let policy = policies[index]
            var overrides = policy.overrides
            let existing = overrides.firstIndex { $0.pattern == pattern }
            if remove {
                guard let existing else {
                    return .failure(Refusal(.error(.notFound, code: "unknown_override", "policy \(name) has no override of \(excerpt(pattern))")))
                }
                overrides.remove(at: existing)
            } else {
                switch SluiceConfiguration.override(yaml: body, pattern: pattern, of: policy) {
                case .success(let override):
                    if let existing { overrides[existing] = override } else { overrides.append(override) }
                case .failure(let errors):
                    return .failure(Refusal(Self.invalid(errors)))
                }
            }
            do throws(PolicyError) {
                policies[index] = try policy.with(overrides: overrides)
            } catch {
                return .failure(Refusal(.error(.badRequest, code: "invalid_override", error.message)))
            }
            return .success(policies)
        } render: { current in
            Self.json(current.configuration.policies.filter { $0.name == name })
        }
    }

    // MARK: Changing

    /// Applies what `accept` makes of the policies in force (after checking `If-Match`), through the
    /// ``ConfigurationState``: validated with the rest of the configuration, written to the file, then put in
    /// force. Logs the change, or why it was not made.
    private func change(
        _ request: HTTPAPIRequest, by actor: Actor, action: String,
        accept: (ConfigurationState.Current) -> Result<[Policy], Refusal>,
        render: (ConfigurationState.Current) -> String
    ) -> HTTPAPIResponse {
        let condition = request.headers.first(name: "if-match")
        let outcome = state.change { (current: ConfigurationState.Current) -> Result<[Policy], Refusal> in
            let etag = state.etag(current)
            if let condition, !Self.matches(condition, etag: etag, weak: false) {
                return .failure(
                    Refusal(.error(.preconditionFailed, code: "stale_etag", "the policies changed since \(excerpt(condition)) (now \(etag)); GET them again"))
                )
            }
            return accept(current)
        }
        switch outcome {
        case .success(let current):
            let etag = state.etag(current)
            logger.notice(
                "admin: \(action)",
                metadata: ["admin.key": "\(actor.key)", "client.address": "\(actor.client)", "sluice.revision": "\(etag)"]
            )
            var response = HTTPAPIResponse(status: .ok, body: render(current))
            response.addHeader(name: "ETag", value: etag)
            return response
        case .failure(.refused(let refusal)):
            return refusal.response
        case .failure(.failed(let failure)):
            let response = Self.response(failure, path: state.path)
            logger.warning(
                "admin: not \(action)",
                metadata: ["admin.key": "\(actor.key)", "client.address": "\(actor.client)", "error": "\(response.body)"]
            )
            return response
        }
    }

    private static func response(_ failure: ConfigurationState.ChangeError, path: String?) -> HTTPAPIResponse {
        switch failure {
        case .invalid(let errors):
            return invalid(errors)
        case .noFile:
            return .error(
                .conflict, code: "no_configuration_file",
                "Sluice runs on its embedded default configuration: there is no file to keep the change in; start it with --config"
            )
        case .changedOnDisk:
            return .error(
                .conflict, code: "file_changed",
                "\(path ?? "the configuration file") changed on disk since Sluice last read it; reload it (SIGHUP) or merge the change, then try again"
            )
        case .file(let message):
            return .error(.internalServerError, code: "file_not_written", message)
        }
    }

    /// 400 listing every mistake: `{"error": {"code", "message", "problems": [{"path", "line", "message"}]}}`.
    static func invalid(_ errors: ConfigurationErrors) -> HTTPAPIResponse {
        let problems = errors.errors.map { error in
            "{\"path\":\(JSONText.quoted(error.path)),\"line\":\(error.line.map(String.init) ?? "null"),\"message\":\(JSONText.quoted(error.message))}"
        }
        let message = errors.errors.count == 1 ? errors.errors[0].description : "\(errors.errors.count) mistakes: \(errors)"
        return HTTPAPIResponse(
            status: .badRequest,
            body: "{\"error\":{\"code\":\"invalid_policies\",\"message\":\(JSONText.quoted(message)),\"problems\":[\(problems.joined(separator: ","))]}}"
        )
    }

    // MARK: ETags and JSON

    /// Whether an `If-Match` / `If-None-Match` value names `etag`: `*`, or one of a comma-separated list. A weak
    /// tag (`W/"…"`) matches only in the weak comparison (`If-None-Match`).
    static func matches(_ condition: String, etag: String, weak: Bool) -> Bool {
        for candidate in condition.split(separator: ",") {
            var tag = String(candidate).trimmed(of: " \t")
            if tag == "*" { return true }
            if tag.hasPrefix("W/") {
                guard weak else { continue }
                tag.removeFirst(2)
            }
            if tag == etag { return true }
        }
        return false
    }

    /// `{"policies": {name: {fields..., "overrides": {key: {fields...}}}}}`: what `PUT /v1/policies` takes.
    static func json(_ policies: [Policy]) -> String {
        func object(_ fields: [(name: String, value: ConfigurationText.Value)]) -> String {
            "{" + fields.map { field in
                let value: String =
                    switch field.value {
                    case .integer(let number): String(number)
                    case .text(let text): JSONText.quoted(text)
                    }
                return "\(JSONText.quoted(field.name)):\(value)"
            }.joined(separator: ",") + "}"
        }
        let entries = policies.map { policy in
            var body = object(ConfigurationText.fields(of: policy))
            if !policy.overrides.isEmpty {
                body.removeLast()
                let overrides = policy.overrides.map { "\(JSONText.quoted($0.pattern)):\(object(ConfigurationText.overrideFields($0, of: policy)))" }
                body += ",\"overrides\":{" + overrides.joined(separator: ",") + "}}"
            }
            return "\(JSONText.quoted(policy.name)):\(body)"
        }
        return "{\"policies\":{" + entries.joined(separator: ",") + "}}"
    }
}
