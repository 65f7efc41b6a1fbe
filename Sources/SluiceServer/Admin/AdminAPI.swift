public import Logging
import NIOCore
import NIOHTTP1
import SluiceConfig
import SluiceCore

/// The admin API: the policies and their per-key overrides, read and changed at run time and written back to the
/// configuration file; one bucket's state, and its reset.
///
/// Routes (each needs an admin key, `Authorization: Bearer sk_…` or `X-API-Key: sk_…`):
/// - `GET /v1/policies` (strong `ETag`; `If-None-Match` answers 304), `PUT /v1/policies` (`{"policies": {...}}`,
///   the file's fields; `If-Match` answers 412 when stale);
/// - `PUT`/`DELETE /v1/policies/{name}/overrides/{key}` (`{"limit": N, "burst": N, "period": "1m"}`);
/// - `GET`/`DELETE /v1/buckets/{policy}/{key}`;
/// - `GET /v1/events`: the live stream of limit events (``EventStream``).
///
/// Without keys in the configuration every admin route answers 404: never open by default. A client address
/// whose key is missing or wrong 10 times in a minute gets 429 until the minute ends, whatever it sends.
public final class AdminAPI: Sendable {
    let state: ConfigurationState
    let logger: Logger
    /// Failed authentications by client address, in a store of their own.
    private let failures = RateLimiter(store: BucketStore(maximumKeys: 16_384, shardCount: 4))
    /// Failed authentications allowed per client address and minute.
    static let failuresPerMinute: Int64 = 10
    private let failureLimit: RateLimit

    /// Creates the admin API over `state`.
    public init(state: ConfigurationState, logger: Logger) {
        self.state = state
        self.logger = logger
        do {
            failureLimit = try RateLimit(algorithm: .fixedWindow, limit: Self.failuresPerMinute, periodNanoseconds: 60_000_000_000)
        } catch {
            preconditionFailure("ten a minute is a valid limit: \(error)")
        }
    }

    /// Whether `path` is one of the admin API's.
    static func isAdminPath(_ path: Substring) -> Bool {
        let bytes = path.utf8
        return bytes.elementsEqual("/v1/policies".utf8) || bytes.starts(with: "/v1/policies/".utf8) || bytes.starts(with: "/v1/buckets/".utf8)
            || bytes.elementsEqual("/v1/events".utf8)
    }

    /// Answers an admin request.
    func respond(to request: HTTPAPIRequest, now: Timestamp, context: ServerContext) -> HTTPAPIOutcome {
        let current = state.snapshot
        let keys = current.configuration.admin.apiKeys
        guard !keys.isEmpty else {
            return .response(.error(.notFound, code: "not_found", "the admin API is off: the configuration lists no admin.api_keys"))
        }
        let key: SluiceConfiguration.Admin.APIKey
        switch authenticate(request, keys: keys, now: now) {
        case .success(let found): key = found
        case .failure(let refusal): return .response(refusal.response)
        }
        let segments = Self.segments(of: request.path)
        let actor = Actor(key: key.name, client: Self.clientAddress(request))
        switch (request.method, segments.count) {
        case (.GET, 2) where segments[1] == "events":
            guard let hub = context.events else { return .response(.error(.notFound, code: "not_found", "this server has no event stream")) }
            let resume = request.headers.first(name: "last-event-id").flatMap { UInt64($0.trimmed(of: " \t")) }
            return .stream(hub, lastEventID: resume)
        case (_, 2) where segments[1] == "events":
            return .response(HTTPAPIProcessor.methodNotAllowed(allow: "GET"))
        case (.GET, 2) where segments[1] == "policies", (.HEAD, 2) where segments[1] == "policies":
            return .response(policies(current, request: request))
        case (.PUT, 2) where segments[1] == "policies":
            return .deferred { self.replacePolicies(request, by: actor) }
        case (_, 2) where segments[1] == "policies":
            return .response(HTTPAPIProcessor.methodNotAllowed(allow: "GET, PUT"))
        case (.PUT, 5) where segments[1] == "policies" && segments[3] == "overrides",
            (.DELETE, 5) where segments[1] == "policies" && segments[3] == "overrides":
            guard let name = segments[2], let pattern = segments[4], !pattern.isEmpty else { return .response(Self.badSegment) }
            guard pattern.utf8.count <= Policy.Override.maximumPatternBytes else { return .response(Self.longKey(Policy.Override.maximumPatternBytes)) }
            let remove = request.method == .DELETE
            return .deferred { self.changeOverride(request, policy: name, pattern: pattern, remove: remove, by: actor) }
        case (_, 5) where segments[1] == "policies" && segments[3] == "overrides":
            return .response(HTTPAPIProcessor.methodNotAllowed(allow: "PUT, DELETE"))
        case (.GET, 4) where segments[1] == "buckets", (.DELETE, 4) where segments[1] == "buckets":
            guard let name = segments[2], let bucketKey = segments[3], !bucketKey.isEmpty else { return .response(Self.badSegment) }
            guard bucketKey.utf8.count <= context.maximumKeyBytes else { return .response(Self.longKey(context.maximumKeyBytes)) }
            return request.method == .GET
                ? bucket(policy: name, key: bucketKey, now: now, context: context)
                : resetBucket(policy: name, key: bucketKey, now: now, context: context, by: actor)
        case (_, 4) where segments[1] == "buckets":
            return .response(HTTPAPIProcessor.methodNotAllowed(allow: "GET, DELETE"))
        default:
            return .response(
                .error(
                    .notFound, code: "not_found",
                    "no admin route for \(excerpt(String(request.path))); see /v1/policies, /v1/policies/{name}/overrides/{key}, /v1/buckets/{policy}/{key}"
                )
            )
        }
    }

    /// Who made a change, for the log.
    struct Actor {
        let key: String
        let client: String
    }

    // MARK: Authentication

    /// The admin key the request carries, or the response refusing it: 401 for a missing or wrong key, 429
    /// once the client address has failed ``failuresPerMinute`` times this minute.
    private func authenticate(
        _ request: HTTPAPIRequest, keys: [SluiceConfiguration.Admin.APIKey], now: Timestamp
    ) -> Result<SluiceConfiguration.Admin.APIKey, Refusal> {
        let client = Self.clientAddress(request)
        var clientKey = client
        let check = clientKey.withUTF8 { Check(rateLimit: failureLimit, key: BucketKey(seed: 0xAD31_0000, bytes: UnsafeRawBufferPointer($0))) }
        let standing = failures.decide(check, at: now, consume: false)
        guard standing.isAllowed else {
            var response = HTTPAPIResponse.error(
                .tooManyRequests, code: "too_many_failures",
                "more than \(Self.failuresPerMinute) failed admin authentications from \(client) this minute; try again later"
            )
            response.addHeader(name: "Retry-After", value: String(max(1, RoundedUp.seconds(standing.retryAfterNanoseconds))))
            return .failure(Refusal(response))
        }
        let presented = Self.presentedKey(request)
        if let presented, let key = AdminKeys.match(presented, among: keys) { return .success(key) }
        _ = failures.decide(check, at: now)
        logger.warning(
            "admin authentication failed",
            metadata: ["admin.key_prefix": "\(presented.map(AdminKeys.logPrefix) ?? "(none)")", "client.address": "\(client)"]
        )
        var response = HTTPAPIResponse.error(
            .unauthorized, code: presented == nil ? "missing_api_key" : "invalid_api_key",
            presented == nil
                ? "the admin API needs a key: send Authorization: Bearer <key> or X-API-Key: <key>"
                : "the admin key is not valid"
        )
        response.addHeader(name: "WWW-Authenticate", value: "Bearer realm=\"sluice-admin\"")
        return .failure(Refusal(response))
    }

    /// `Authorization: Bearer <key>`, else `X-API-Key: <key>`.
    static func presentedKey(_ request: HTTPAPIRequest) -> String? {
        if let authorization = request.headers.first(name: "authorization") {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" {
                let key = String(parts[1]).trimmed(of: " \t")
                if !key.isEmpty { return key }
            }
        }
        if let key = request.headers.first(name: "x-api-key")?.trimmed(of: " \t"), !key.isEmpty { return key }
        return nil
    }

    /// The client's address, without the port.
    static func clientAddress(_ request: HTTPAPIRequest) -> String { request.remoteAddress?.ipAddress ?? "unknown" }

    // MARK: Paths

    /// The path's segments after the first `/`, each percent-decoded (nil for a malformed escape); `+` is a plus.
    static func segments(of path: Substring) -> [String?] {
        path.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map { HTTPAPIRequest.percentDecoded($0, plusIsSpace: false) }
    }

    static let badSegment = HTTPAPIResponse.error(
        .badRequest, code: "invalid_path", "a path segment is empty or has a malformed %-escape; percent-encode keys (a prefix's * as %2A)"
    )

    /// A response that ends a change before it is made.
    struct Refusal: Error {
        let response: HTTPAPIResponse
        init(_ response: HTTPAPIResponse) { self.response = response }
    }

    static func longKey(_ maximum: Int) -> HTTPAPIResponse {
        .error(.badRequest, code: "key_too_long", "the key is longer than \(maximum) bytes")
    }
}

extension String {
    /// The string without leading and trailing characters of `set`.
    func trimmed(of set: String) -> String {
        let drop = Set(set)
        guard let first = firstIndex(where: { !drop.contains($0) }), let last = lastIndex(where: { !drop.contains($0) }) else { return "" }
        return String(self[first...last])
    }
}
