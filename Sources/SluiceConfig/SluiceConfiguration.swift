public import SluiceCore

/// Everything one Sluice process is configured with: listeners, policies, the bucket store, input caps and the
/// forward-auth rules.
///
/// A configuration is validated once, when it is created (``init(listen:policies:store:limits:http:forwardAuth:)``)
/// or parsed
/// (``parse(yaml:)``, ``load(path:)``); a value of this type is always usable as it is. Every field but
/// `policies` has a default, so the smallest valid file is a `policies` section alone:
///
/// ```yaml
/// policies:
///   api: { algorithm: token_bucket, limit: 100, period: 1s }
/// ```
///
/// The YAML sections, each described on its type:
/// - `listen`: ``Listen``, where the line-protocol and HTTP servers listen.
/// - `policies`: the named limits, in file order (``policies``, ``policySet``).
/// - `store`: ``Store``, the in-memory bucket store.
/// - `limits`: ``Limits``, caps on the size of what clients send.
/// - `http`: ``HTTP``, caps on what the HTTP API accepts.
/// - `forward_auth`: ``ForwardAuth``, the rules that turn a gateway's forwarded request into checks.
/// - `redis`: ``Redis``, where the fleet's Redis is; required by policies with `scope: global`.
/// - `rls`: ``RLS``, Envoy's rate limit service and the envoyproxy/ratelimit files it serves.
/// - `admin`: ``Admin``, the keys of the admin API (off without them).
/// - `events`: ``Events``, the threshold of `limit.threshold` and the webhooks.
///
/// Any other top-level key is an error.
public struct SluiceConfiguration: Sendable, Equatable {
    /// Where the servers listen (`listen`).
    public let listen: Listen
    /// The policies, in the order the file lists them, as a set the decision path looks names up in.
    public let policySet: PolicySet
    /// The bucket store's size (`store`).
    public let store: Store
    /// Caps on what clients send (`limits`).
    public let limits: Limits
    /// Caps on what the HTTP API accepts (`http`).
    public let http: HTTP
    /// The forward-auth rules (`forward_auth`).
    public let forwardAuth: ForwardAuth
    /// The fleet's Redis (`redis`), or nil when every policy is local.
    public let redis: Redis?
    /// Envoy's rate limit service (`rls`), or nil when there is none.
    public let rls: RLS?
    /// The admin API's keys (`admin`); without keys the admin API is off.
    public let admin: Admin
    /// Limit events and their webhooks (`events`).
    public let events: Events

    /// The policies, in the order the file lists them.
    public var policies: [Policy] { policySet.policies }

    /// Creates a validated configuration.
    ///
    /// - Parameters:
    ///   - listen: the listeners; defaults to `127.0.0.1:7379` (line protocol) and `127.0.0.1:7380` (HTTP).
    ///   - policies: at least one policy, names distinct, in the order checks should see them.
    ///   - store: the bucket store; defaults to 1,000,000 keys in 64 shards.
    ///   - limits: input caps; defaults to 512-byte keys, 65,536-byte lines and 1,024 arguments.
    ///   - http: HTTP API caps; defaults to 1 MiB bodies, 100 checks a request and 1,000 items a batch.
    ///   - forwardAuth: the forward-auth rules, whose limits must name policies in `policies`; defaults to status
    ///     429, loopback proxies and no rules.
    ///   - redis: where the fleet's Redis is; required when a policy is global.
    ///   - rls: Envoy's rate limit service and its domains; with it, `policies` may be empty.
    ///   - admin: the admin API's keys; default none (the admin API is off).
    ///   - events: limit events and webhooks; default threshold 0.8, no webhooks.
    /// - Throws: ``ConfigurationError`` naming the first problem (without a line, as there is no file).
    public init(
        listen: Listen = Listen(), policies: [Policy], store: Store = Store(), limits: Limits = Limits(),
        http: HTTP = HTTP(), forwardAuth: ForwardAuth = ForwardAuth(), redis: Redis? = nil, rls: RLS? = nil, admin: Admin = Admin(),
        events: Events = Events()
    ) throws(ConfigurationError) {
        try self.init(
            listen: listen, policies: policies, store: store, limits: limits, http: http, forwardAuth: forwardAuth,
            redis: redis, rls: rls, admin: admin, events: events, lines: [:]
        )
    }

    /// This configuration with `policies` in place of its own, validated as a whole (forward-auth rules must
    /// still name policies, global ones need Redis).
    ///
    /// - Throws: every problem found, each with its path.
    public func replacing(policies: [Policy]) throws(ConfigurationErrors) -> SluiceConfiguration {
        let problems = Self.problems(
            listen: listen, policies: policies, store: store, limits: limits, http: http, forwardAuth: forwardAuth, redis: redis,
            rls: rls, admin: admin, events: events, lines: [:], crossChecks: true
        )
        guard problems.isEmpty else { throw ConfigurationErrors(errors: problems) }
        do {
            return try SluiceConfiguration(
                listen: listen, policies: policies, store: store, limits: limits, http: http, forwardAuth: forwardAuth, redis: redis,
                rls: rls, admin: admin, events: events
            )
        } catch {
            throw ConfigurationErrors(errors: [error])
        }
    }

    /// Creates a validated configuration, reporting a field's problem at `lines[path]`.
    init(
        listen: Listen, policies: [Policy], store: Store, limits: Limits, http: HTTP, forwardAuth: ForwardAuth,
        redis: Redis?, rls: RLS?, admin: Admin, events: Events, lines: [String: Int]
    ) throws(ConfigurationError) {
        let problems = Self.problems(
            listen: listen, policies: policies, store: store, limits: limits, http: http, forwardAuth: forwardAuth, redis: redis,
            rls: rls, admin: admin, events: events, lines: lines, crossChecks: true
        )
        if let first = problems.first { throw first }
        do {
            self.policySet = try PolicySet(policies)
        } catch {
            // Names were checked distinct above, which is all PolicySet validates; kept for a future rule.
            throw ConfigurationError(.invalidValue, path: "policies", line: lines["policies"], error.message)
        }
        self.listen = listen
        self.store = store
        self.limits = limits
        self.http = http
        self.forwardAuth = forwardAuth
        self.redis = redis
        self.rls = rls
        self.admin = admin
        self.events = events
    }

    /// Every problem of these sections, each at `section.field` and its line, in section order.
    ///
    /// - Parameter crossChecks: whether to check what spans sections (policies present and distinct, forward-auth
    ///   limits naming policies, global policies needing Redis). Off when some policy or rule could not even be
    ///   read, so a mistake is not reported twice over (once where it is, once as a missing policy).
    static func problems(
        listen: Listen, policies: [Policy], store: Store, limits: Limits, http: HTTP, forwardAuth: ForwardAuth, redis: Redis?,
        rls: RLS?, admin: Admin, events: Events, lines: [String: Int], crossChecks: Bool
    ) -> [ConfigurationError] {
        func located(_ section: String, _ problems: [(field: String, message: String)]) -> [ConfigurationError] {
            problems.map { problem in
                let path = "\(section).\(problem.field)"
                return ConfigurationError(.invalidValue, path: path, line: lines[path], problem.message)
            }
        }
        var errors =
            located("listen", listen.problems()) + located("store", store.problems()) + located("limits", limits.problems())
            + located("http", http.problems()) + located("redis", redis?.problems() ?? []) + located("rls", rls?.problems() ?? [])
            + located("admin", admin.problems()) + located("events", events.problems())
        guard crossChecks else { return errors }
        if policies.isEmpty, rls == nil {
            errors.append(
                ConfigurationError(
                    .noPolicies, path: "policies", line: lines["policies"],
                    "at least one policy is required (or an `rls` section), such as `api: { algorithm: token_bucket, limit: 100, period: 1s }`"
                )
            )
        }
        var seen = Set<String>()
        for policy in policies where !seen.insert(policy.name).inserted {
            let path = "policies.\(policy.name)"
            errors.append(ConfigurationError(.duplicateKey, path: path, line: lines[path], "policy '\(policy.name)' is defined more than once"))
        }
        if redis == nil, let rls, rls.hasGlobalLimit {
            errors.append(
                ConfigurationError(
                    .invalidValue, path: "rls.files", line: lines["rls.files"],
                    "a rate_limit with scope: global needs a `redis` section saying where the fleet's Redis is"
                )
            )
        }
        if redis == nil {
            for global in policies where global.global != nil {
                let path = "policies.\(global.name).scope"
                errors.append(
                    ConfigurationError(
                        .invalidValue, path: path, line: lines[path] ?? lines["policies.\(global.name)"],
                        "scope: global needs a `redis` section saying where the fleet's Redis is, such as redis: { url: \"redis://127.0.0.1:6379/0\" }"
                    )
                )
            }
        }
        // Limits name policies, so forward_auth is checked against the policies whatever the sections' order.
        errors += located("forward_auth", forwardAuth.problems(policyNames: policies.map(\.name)))
        return errors
    }

    /// Whether two configurations have equal settings and equal policies in the same order.
    public static func == (lhs: SluiceConfiguration, rhs: SluiceConfiguration) -> Bool {
        lhs.listen == rhs.listen && lhs.policies == rhs.policies && lhs.store == rhs.store && lhs.limits == rhs.limits
            && lhs.http == rhs.http && lhs.forwardAuth == rhs.forwardAuth && lhs.redis == rhs.redis && lhs.rls == rhs.rls
    }
}
