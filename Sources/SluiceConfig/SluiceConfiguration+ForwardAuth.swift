extension SluiceConfiguration {
    /// How `/v1/forward-auth` turns a request forwarded by a gateway into checks: the `forward_auth` section.
    ///
    /// The rules are tried in order and the first whose path prefix and methods match decides; its limits are
    /// checked together, all or nothing. A request no rule matches is allowed without a check. A limit whose key
    /// source is absent from the request (no API key, no such header) is skipped.
    ///
    /// ```yaml
    /// forward_auth:
    ///   deny_status: 429                                # 400 to 499; 403 for nginx auth_request
    ///   trusted_proxies: ["127.0.0.1/32", "::1/128"]    # peers whose X-Forwarded-For is believed
    ///   rules:
    ///     - path_prefix: /login
    ///       methods: [POST]
    ///       limits:
    ///         - { policy: login_ip,   by: ip }
    ///         - { policy: login_acct, by: "header:X-Account" }
    ///     - path_prefix: /
    ///       limits:
    ///         - { policy: api, by: api_key }
    /// ```
    public struct ForwardAuth: Sendable, Hashable {
        /// The default `trusted_proxies`: loopback only, `127.0.0.1/32` and `::1/128`.
        public static let defaultTrustedProxies: [IPNetwork] = [
            IPNetwork(address: [127, 0, 0, 1], prefixLength: 32),
            IPNetwork(address: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], prefixLength: 128),
        ]

        /// `forward_auth.deny_status`: the HTTP status of a denial, 400 through 499; default 429.
        ///
        /// nginx's `auth_request` passes only 401 and 403 on to the client, so use 403 (or 401) behind nginx.
        public var denyStatus: Int
        /// `forward_auth.trusted_proxies`: the peers whose `X-Forwarded-For` names the client; default
        /// ``defaultTrustedProxies``. From any other peer the connection's own address is the client's. An empty
        /// list trusts no peer.
        public var trustedProxies: [IPNetwork]
        /// `forward_auth.rules`: the rules, in the order they are tried; the first match wins. Default: none, so
        /// every forwarded request is allowed.
        public var rules: [Rule]

        /// Creates the forward-auth settings; ``SluiceConfiguration``'s initializer checks them.
        ///
        /// - Parameters:
        ///   - denyStatus: the status of a denial, 400 through 499; default 429.
        ///   - trustedProxies: the peers whose `X-Forwarded-For` is believed; default loopback.
        ///   - rules: the rules, first match wins; each limit's policy must be defined. Default: none.
        public init(
            denyStatus: Int = 429, trustedProxies: [IPNetwork] = ForwardAuth.defaultTrustedProxies, rules: [Rule] = []
        ) {
            self.denyStatus = denyStatus
            self.trustedProxies = trustedProxies
            self.rules = rules
        }

        /// One route: the requests it matches and the limits they are checked against (`forward_auth.rules[i]`).
        public struct Rule: Sendable, Hashable {
            /// `path_prefix`: the rule matches a request whose path starts with this text, which starts with `/`.
            /// `/` matches every path. Required.
            public var pathPrefix: String
            /// `methods`: the HTTP methods the rule matches, uppercase letters A-Z (`GET`, `POST`); nil, the default,
            /// for any method. When given, at least one.
            public var methods: Set<String>?
            /// `limits`: the limits a matching request is checked against, all or nothing. Required, at least one.
            public var limits: [Limit]

            /// Creates a rule.
            ///
            /// - Parameters:
            ///   - pathPrefix: the path prefix, starting with `/`.
            ///   - methods: the methods, in any case (stored uppercased); nil for any method.
            ///   - limits: at least one limit.
            public init(pathPrefix: String, methods: Set<String>? = nil, limits: [Limit]) {
                self.pathPrefix = pathPrefix
                self.methods = methods.map { Set($0.map { $0.uppercased() }) }
                self.limits = limits
            }

            /// Whether `method` is a valid method as stored: one or more uppercase letters A-Z.
            static func isValidMethod(_ method: String) -> Bool {
                !method.isEmpty && method.utf8.allSatisfy { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) }
            }
        }

        /// One check a matching request makes: a policy, and where its bucket key comes from
        /// (`forward_auth.rules[i].limits[j]`).
        public struct Limit: Sendable, Hashable {
            /// `policy`: the name of a policy defined under `policies`.
            public var policy: String
            /// `by`: how the bucket key is taken from the request.
            public var by: KeySource

            /// Creates a limit.
            ///
            /// - Parameters:
            ///   - policy: a policy name defined in the same configuration.
            ///   - by: the key source.
            public init(policy: String, by: KeySource) {
                self.policy = policy
                self.by = by
            }
        }

        /// Each field out of range, with its path inside the section (`rules[0].limits[1].policy`) and what is
        /// wrong; empty when valid.
        ///
        /// - Parameter policyNames: the policies defined, in file order, which limits must name.
        func problems(policyNames: [String]) -> [(field: String, message: String)] {
            var problems: [(field: String, message: String)] = []
            if !(400...499).contains(denyStatus) {
                problems.append(
                    ("deny_status", "must be a 4xx status from 400 to 499, such as 429 or 403; got \(denyStatus)")
                )
            }
            let known = Set(policyNames)
            for (ruleIndex, rule) in rules.enumerated() {
                let rulePath = "rules[\(ruleIndex)]"
                if !rule.pathPrefix.hasPrefix("/") {
                    let message = "must start with /, as in /login or / for every path; got \"\(rule.pathPrefix)\""
                    problems.append(("\(rulePath).path_prefix", message))
                }
                if let methods = rule.methods {
                    if methods.isEmpty {
                        problems.append(
                            ("\(rulePath).methods", "must list at least one method, or be left out to match any method")
                        )
                    } else if let method = methods.sorted().first(where: { !Rule.isValidMethod($0) }) {
                        let message = "a method must be uppercase letters A-Z, such as GET or POST; got \"\(method)\""
                        problems.append(("\(rulePath).methods", message))
                    }
                }
                if rule.limits.isEmpty {
                    problems.append(
                        ("\(rulePath).limits", "must list at least one limit, such as { policy: api, by: api_key }")
                    )
                }
                for (limitIndex, limit) in rule.limits.enumerated() {
                    let limitPath = "\(rulePath).limits[\(limitIndex)]"
                    if !known.contains(limit.policy) {
                        problems.append(
                            (
                                "\(limitPath).policy",
                                "unknown policy '\(limit.policy)'; defined: \(policyNames.joined(separator: ", "))"
                            )
                        )
                    }
                    if let problem = limit.by.problem() {
                        problems.append(("\(limitPath).by", problem))
                    }
                }
            }
            return problems
        }
    }
}
