import SluiceConfig
import Logging
import NIOCore
import NIOHTTP1
import SluiceCore

extension HTTPAPIProcessor {
    /// `/v1/forward-auth`: maps a gateway's forwarded request to checks through the configured rules.
    ///
    /// Reads `X-Forwarded-Method` and `X-Forwarded-Uri` (falling back to this request's method and `/`),
    /// the client address (see ``ForwardAuthRules/clientAddress(peer:forwardedFor:)``), `X-API-Key` or
    /// `Authorization: Bearer`, and any header a rule keys by. Allowed: 200 with the rate-limit headers.
    /// Denied: the deny status (`?deny_status=` overrides it, for nginx's `auth_request`, which passes only
    /// 2xx/401/403), the headers, `Retry-After`, and a problem JSON body.
    func forwardAuth(
        _ request: HTTPAPIRequest, snapshot: PolicyRegistry.Snapshot, now: Timestamp, counts: inout ServerStatistics.Batch
    ) throws(HTTPAPIError) -> HTTPAPIOutcome {
        let rules = snapshot.forwardAuth
        var denyStatus = rules.denyStatus
        if let text = request.query["deny_status"] {
            guard let status = Int(text), (400...499).contains(status) else {
                throw HTTPAPIError(.badRequest, code: "invalid_deny_status", "deny_status must be a 4xx status, got \(excerpt(text))")
            }
            denyStatus = status
        }
        let method = request.headers.first(name: "X-Forwarded-Method") ?? request.method.rawValue
        let uri = request.headers.first(name: "X-Forwarded-Uri") ?? "/"
        let path = ForwardAuthRules.normalizedPath(uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
        guard let rule = rules.rule(method: method, path: path[...]) else { return .response(Self.forwardAuthAllowed(headers: [])) }

        // Every X-Forwarded-For line, in order: a proxy may append its own line instead of extending the client's.
        let forwardedFor = request.headers["X-Forwarded-For"]
        let client = rules.clientAddress(
            peer: request.remoteAddress?.ipAddress, forwardedFor: forwardedFor.isEmpty ? nil : forwardedFor.joined(separator: ",")
        )
        let apiKey = ForwardAuthRules.apiKey(xAPIKey: request.headers.first(name: "X-API-Key"), authorization: request.headers.first(name: "Authorization"))
        var resolved: [ResolvedCheck] = []
        for limit in rule.limits {
            guard var key = Self.bucketKey(limit.source, client: client?.bytes, apiKey: apiKey, headers: request.headers) else { continue }
            let check = key.withUTF8 { snapshot.policies.check(policy: limit.policyIndex, key: UnsafeRawBufferPointer($0), cost: 1) }
            resolved.append(ResolvedCheck(check: check, name: snapshot.policies.policies[limit.policyIndex].name, key: key))
        }
        guard !resolved.isEmpty else { return .response(Self.forwardAuthAllowed(headers: [])) }

        let pathText = String(path)
        let clientText = client?.text
        let checks = resolved
        return try decideAll(resolved, policies: snapshot.policies, countsVerdict: true, now: now, counts: &counts) { [context, denyStatus] result, now in
            Self.forwardAuthResponse(
                result, resolved: checks, denyStatus: denyStatus, now: now, logger: context.logger, method: method, path: pathText,
                client: clientText, apiKey: apiKey
            )
        }
    }

    /// The answer to a forward-auth request once its checks are decided.
    static func forwardAuthResponse(
        _ result: RateLimiter.MultiDecision, resolved: [ResolvedCheck], denyStatus: Int, now: Timestamp, logger: Logger,
        method: String, path: String, client: String?, apiKey: String?
    ) -> HTTPAPIResponse {
        let deciding = resolved[result.decidingIndex]
        let decision = result.decisions[result.decidingIndex]
        let headers = DecisionRendering.headers(decision, deciding, now: now)
        if result.isAllowed { return Self.forwardAuthAllowed(headers: headers) }

        logger.debug(
            "forward auth denied",
            metadata: [
                "sluice.policy": "\(deciding.name)", "http.method": "\(method)", "http.path": "\(excerpt(path))",
                "client.address": "\(client ?? "-")", "sluice.api_key_prefix": "\(apiKey.map(ForwardAuthRules.apiKeyPrefix) ?? "-")",
            ]
        )
        let retry = decision.retryAfterMilliseconds
        let status = HTTPResponseStatus(statusCode: denyStatus)
        let detail = "rate limit '\(deciding.name)' exceeded" + (retry >= 0 ? "; retry in \(RoundedUp.seconds(decision.retryAfterNanoseconds)) s" : "")
        let body = "{\"type\":\"about:blank\",\"title\":\(JSONText.quoted(status.reasonPhrase)),\"status\":\(denyStatus)"
            + ",\"detail\":\(JSONText.quoted(detail)),\"policy\":\(JSONText.quoted(deciding.name)),\"retry_after_ms\":\(retry)}"
        return HTTPAPIResponse(status: status, headers: headers, body: body, contentType: "application/problem+json")
    }

    private static func forwardAuthAllowed(headers: [(name: String, value: String)]) -> HTTPAPIResponse {
        HTTPAPIResponse(status: .ok, headers: headers, body: "")
    }

    /// The bucket key for one limit: its parts joined with U+001F, or nil when a part is absent from the request.
    ///
    /// Addresses are keyed by their bytes (an IPv4-mapped IPv6 address as its IPv4 form), so one client is one
    /// bucket however the proxy spells its address; API keys by their SHA-256, never raw.
    static func bucketKey(
        _ source: SluiceConfiguration.ForwardAuth.KeySource, client: [UInt8]?, apiKey: String?, headers: HTTPHeaders
    ) -> String? {
        var parts: [String] = []
        parts.reserveCapacity(source.parts.count)
        for part in source.parts {
            switch part {
            case .ip:
                guard let client else { return nil }
                let canonical = client.count == 16 && client[0..<10].allSatisfy({ $0 == 0 }) && client[10] == 0xFF && client[11] == 0xFF
                    ? Array(client[12...]) : client
                parts.append("ip=" + canonical.map { String($0) }.joined(separator: "."))
            case .apiKey:
                guard let apiKey else { return nil }
                parts.append("key=" + ForwardAuthRules.apiKeyDigest(apiKey))
            case .header(let name):
                guard let value = headers.first(name: name), !value.isEmpty else { return nil }
                parts.append("h:" + name.lowercased() + "=" + value)
            }
        }
        return parts.joined(separator: "\u{1F}")
    }
}
