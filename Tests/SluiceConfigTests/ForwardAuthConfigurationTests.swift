import SluiceConfig
import SluiceCore
import Testing

/// Two policies on lines 1 to 3, for forward-auth rules to name; what is appended starts at line 4.
let twoPolicies = """
    policies:
      api: { algorithm: token_bucket, limit: 100, period: 1s }
      login: { algorithm: sliding_window, limit: 5, period: 1m }

    """

struct ForwardAuthConfigurationTests {
    typealias ForwardAuth = SluiceConfiguration.ForwardAuth
    typealias Rule = ForwardAuth.Rule
    typealias Limit = ForwardAuth.Limit
    typealias KeySource = ForwardAuth.KeySource
    typealias IPNetwork = SluiceConfiguration.IPNetwork

    /// A YAML text and the exact error it must produce.
    struct Case: CustomTestStringConvertible, Sendable {
        let yaml: String
        let code: ConfigurationError.Code
        let description: String
        var testDescription: String { description }

        init(_ yaml: String, _ code: ConfigurationError.Code, _ description: String) {
            self.yaml = yaml
            self.code = code
            self.description = description
        }

        /// A case whose error is `.invalidValue`, the most common code.
        init(_ yaml: String, _ description: String) {
            self.init(yaml, .invalidValue, description)
        }
    }

    @Test func exampleParsesToExactValues() throws {
        let configuration = try SluiceConfiguration.parse(
            yaml: """
                policies:
                  login_ip: { algorithm: sliding_window, limit: 5, period: 1m }
                  login_acct: { algorithm: sliding_window, limit: 10, period: 1h }
                  api: { algorithm: token_bucket, limit: 100, period: 1s }
                http:
                  max_body_bytes: 1048576
                  max_checks: 100
                  max_batch: 1000
                forward_auth:
                  deny_status: 429
                  trusted_proxies: ["127.0.0.1/32", "::1/128"]
                  rules:
                    - path_prefix: /login
                      methods: [POST]
                      limits:
                        - { policy: login_ip,   by: ip }
                        - { policy: login_acct, by: "header:X-Account" }
                    - path_prefix: /
                      limits:
                        - { policy: api, by: api_key }
                """
        )
        #expect(configuration.http == SluiceConfiguration.HTTP(maxBodyBytes: 1_048_576, maxChecks: 100, maxBatch: 1000))
        let expected = ForwardAuth(
            denyStatus: 429,
            trustedProxies: [try #require(IPNetwork("127.0.0.1/32")), try #require(IPNetwork("::1/128"))],
            rules: [
                Rule(
                    pathPrefix: "/login", methods: ["POST"],
                    limits: [
                        Limit(policy: "login_ip", by: KeySource(parts: [.ip])),
                        Limit(policy: "login_acct", by: KeySource(parts: [.header("X-Account")])),
                    ]
                ),
                Rule(pathPrefix: "/", limits: [Limit(policy: "api", by: KeySource(parts: [.apiKey]))]),
            ]
        )
        #expect(configuration.forwardAuth == expected)
        #expect(configuration.forwardAuth.rules[1].methods == nil)
        #expect(configuration.forwardAuth.trustedProxies == ForwardAuth.defaultTrustedProxies)
    }

    @Test func sectionsTakeDefaultsWhenAbsent() throws {
        let configuration = try SluiceConfiguration.parse(yaml: onePolicy)
        #expect(configuration.http == SluiceConfiguration.HTTP())
        #expect(configuration.http.maxBodyBytes == 1_048_576)
        #expect(configuration.http.maxChecks == 100)
        #expect(configuration.http.maxBatch == 1000)
        #expect(configuration.forwardAuth == ForwardAuth())
        #expect(configuration.forwardAuth.denyStatus == 429)
        #expect(configuration.forwardAuth.trustedProxies.map(\.description) == ["127.0.0.1/32", "::1/128"])
        #expect(configuration.forwardAuth.rules.isEmpty)
    }

    @Test func emptySectionsAndListsTakeDefaultsOrNothing() throws {
        let empty = try SluiceConfiguration.parse(yaml: onePolicy + "\nhttp:\nforward_auth:\n")
        #expect(empty.http == SluiceConfiguration.HTTP())
        #expect(empty.forwardAuth == ForwardAuth())
        // A list left empty, or with every element commented out, is an empty list: no proxy is trusted.
        let noProxies = try SluiceConfiguration.parse(
            yaml: onePolicy + "\nforward_auth:\n  trusted_proxies:\n  #  - 10.0.0.0/8\n  rules: []\n"
        )
        #expect(noProxies.forwardAuth.trustedProxies.isEmpty)
        #expect(noProxies.forwardAuth.rules.isEmpty)
        #expect(noProxies.forwardAuth.denyStatus == 429)
    }

    @Test func httpFieldsAreReadOneByOne() throws {
        let configuration = try SluiceConfiguration.parse(
            yaml: onePolicy + "\nhttp:\n  max_checks: 10_000\n  max_body_bytes: 67108864\n"
        )
        #expect(configuration.http == SluiceConfiguration.HTTP(maxBodyBytes: 64 * 1024 * 1024, maxChecks: 10_000))
        let batch = try SluiceConfiguration.parse(yaml: onePolicy + "\nhttp: { max_batch: 100000 }\n")
        #expect(batch.http == SluiceConfiguration.HTTP(maxBatch: 100_000))
    }

    static let httpErrors: [Case] = [
        Case(
            twoPolicies + "http:\n  max_body_bytes: 100000000\n",
            "http.max_body_bytes (line 5): must be an integer from 1 to 67108864, got 100000000"
        ),
        Case(twoPolicies + "http:\n  max_checks: 10001\n", "http.max_checks (line 5): must be an integer from 1 to 10000, got 10001"),
        Case(
            twoPolicies + "http:\n  max_checks: 10\n  max_batch: 100001\n",
            "http.max_batch (line 6): must be an integer from 1 to 100000, got 100001"
        ),
        Case(twoPolicies + "http:\n  max_batch: 0\n", "http.max_batch (line 5): must be a positive integer, got 0"),
        Case(twoPolicies + "http:\n  max_body_bytes: 1MiB\n", "http.max_body_bytes (line 5): must be a positive integer, got \"1MiB\""),
        Case(
            twoPolicies + "http:\n  max_body: 10\n", .unknownField,
            "http.max_body (line 5): unknown field; expected one of max_body_bytes, max_checks, max_batch"
        ),
        Case(twoPolicies + "http: 12\n", "http (line 4): must be a mapping with max_body_bytes, max_checks, max_batch, got 12"),
    ]

    @Test(arguments: httpErrors)
    func httpError(_ testCase: Case) throws {
        let error = try #require(parseError(testCase.yaml))
        #expect(error.description == testCase.description)
        #expect(error.code == testCase.code)
    }

    static let forwardAuthErrors: [Case] = [
        // The section
        Case(
            twoPolicies + "forward_auth:\n  status: 403\n", .unknownField,
            "forward_auth.status (line 5): unknown field; expected one of deny_status, trusted_proxies, rules"
        ),
        Case(
            twoPolicies + "forward_auth: 5\n",
            "forward_auth (line 4): must be a mapping with deny_status, trusted_proxies, rules, got 5"
        ),
        Case(
            twoPolicies + "forward_auth:\n  deny_status: 503\n",
            "forward_auth.deny_status (line 5): must be a 4xx status from 400 to 499, such as 429 or 403; got 503"
        ),
        Case(
            twoPolicies + "forward_auth:\n  rules: []\n  deny_status: 200\n",
            "forward_auth.deny_status (line 6): must be a 4xx status from 400 to 499, such as 429 or 403; got 200"
        ),
        Case(
            twoPolicies + "forward_auth:\n  deny_status: \"429\"\n",
            "forward_auth.deny_status (line 5): must be a positive integer, got \"429\""
        ),
        // trusted_proxies
        Case(
            twoPolicies + "forward_auth:\n  trusted_proxies: [\"127.0.0.1/32\", \"10.0.0.0/33\"]\n",
            "forward_auth.trusted_proxies[1] (line 5): the prefix length of an IPv4 network must be an integer from 0 to 32; got \"10.0.0.0/33\""
        ),
        Case(
            twoPolicies + "forward_auth:\n  trusted_proxies:\n    - 10.0.0.0/8\n    - 1.2.3\n",
            "forward_auth.trusted_proxies[1] (line 7): must be an IP address or a CIDR block, as in \"10.0.0.0/8\", \"127.0.0.1\" or \"fd00::/8\"; got \"1.2.3\""
        ),
        Case(
            twoPolicies + "forward_auth:\n  trusted_proxies:\n    - \"fe80::1/129\"\n",
            "forward_auth.trusted_proxies[0] (line 6): the prefix length of an IPv6 network must be an integer from 0 to 128; got \"fe80::1/129\""
        ),
        Case(
            twoPolicies + "forward_auth:\n  trusted_proxies: [\"::g\"]\n",
            "forward_auth.trusted_proxies[0] (line 5): must be an IP address or a CIDR block, as in \"10.0.0.0/8\", \"127.0.0.1\" or \"fd00::/8\"; got \"::g\""
        ),
        Case(
            twoPolicies + "forward_auth:\n  trusted_proxies: 10.0.0.0/8\n",
            "forward_auth.trusted_proxies (line 5): must be a list of addresses and CIDR blocks, such as [\"10.0.0.0/8\", \"::1\"], got \"10.0.0.0/8\""
        ),
        Case(
            twoPolicies + "forward_auth:\n  trusted_proxies:\n    - { cidr: 10.0.0.0/8 }\n",
            "forward_auth.trusted_proxies[0] (line 6): must be an IP address or a CIDR block such as \"10.0.0.0/8\", got a mapping"
        ),
        // rules
        Case(
            twoPolicies + "forward_auth:\n  rules: { path_prefix: / }\n",
            "forward_auth.rules (line 5): must be a list of rules, each a mapping with path_prefix, limits and optionally methods, got a mapping"
        ),
        Case(
            twoPolicies + "forward_auth:\n  rules:\n    - /login\n",
            "forward_auth.rules[0] (line 6): must be a mapping with path_prefix, limits and optionally methods, such as { path_prefix: /, limits: [{ policy: api, by: api_key }] }, got \"/login\""
        ),
        Case(
            twoPolicies + "forward_auth:\n  rules:\n    - prefix: /login\n      limits: [{ policy: login, by: ip }]\n",
            .unknownField,
            "forward_auth.rules[0].prefix (line 6): unknown field; expected one of path_prefix, methods, limits"
        ),
        Case(
            twoPolicies + """
                forward_auth:
                  rules:
                    - path_prefix: /login
                      limits: [{ policy: login, by: ip }]
                    - methods: [GET]
                      limits: [{ policy: api, by: api_key }]
                """,
            .missingField, "forward_auth.rules[1].path_prefix (line 8): missing; every rule needs path_prefix and limits"
        ),
        Case(
            twoPolicies + "forward_auth:\n  rules:\n    - path_prefix: /login\n      methods: [POST]\n",
            .missingField, "forward_auth.rules[0].limits (line 6): missing; every rule needs path_prefix and limits"
        ),
        Case(
            twoPolicies + "forward_auth:\n  rules:\n    - path_prefix: /login\n      limits: []\n",
            "forward_auth.rules[0].limits (line 7): must list at least one limit, such as { policy: api, by: api_key }"
        ),
        Case(
            twoPolicies + "forward_auth:\n  rules:\n    - path_prefix: /login\n      limits:\n",
            "forward_auth.rules[0].limits (line 7): must list at least one limit, such as { policy: api, by: api_key }"
        ),
        Case(
            twoPolicies + "forward_auth:\n  rules:\n    - path_prefix: /login\n      limits: { policy: login, by: ip }\n",
            "forward_auth.rules[0].limits (line 7): must be a list of limits, such as [{ policy: api, by: api_key }], got a mapping"
        ),
        Case(
            twoPolicies + "forward_auth:\n  rules:\n    - path_prefix: login\n      limits: [{ policy: login, by: ip }]\n",
            "forward_auth.rules[0].path_prefix (line 6): must start with /, as in /login or / for every path; got \"login\""
        ),
        Case(
            twoPolicies + "forward_auth:\n  rules:\n    - path_prefix: \"\"\n      limits: [{ policy: login, by: ip }]\n",
            "forward_auth.rules[0].path_prefix (line 6): must start with /, as in /login or / for every path; got \"\""
        ),
        Case(
            twoPolicies + "forward_auth:\n  rules:\n    - path_prefix: [/a, /b]\n      limits: [{ policy: login, by: ip }]\n",
            "forward_auth.rules[0].path_prefix (line 6): must be a path prefix such as /login or /, got a list"
        ),
        Case(
            twoPolicies + "forward_auth:\n  rules:\n    - path_prefix:\n      limits: [{ policy: login, by: ip }]\n",
            "forward_auth.rules[0].path_prefix (line 6): must be a path prefix such as /login or /, got an empty value"
        ),
        // methods
        Case(
            twoPolicies + "forward_auth:\n  rules:\n    - path_prefix: /login\n      methods: [POST, P0ST]\n      limits: [{ policy: login, by: ip }]\n",
            "forward_auth.rules[0].methods[1] (line 7): a method must be letters A-Z, such as GET or POST; got \"P0ST\""
        ),
        Case(
            twoPolicies + "forward_auth:\n  rules:\n    - path_prefix: /\n      methods:\n        - GET\n        - M-SEARCH\n      limits: [{ policy: api, by: api_key }]\n",
            "forward_auth.rules[0].methods[1] (line 9): a method must be letters A-Z, such as GET or POST; got \"M-SEARCH\""
        ),
        Case(
            twoPolicies + "forward_auth:\n  rules:\n    - path_prefix: /\n      methods: [\"\"]\n      limits: [{ policy: api, by: api_key }]\n",
            "forward_auth.rules[0].methods[0] (line 7): a method must be letters A-Z, such as GET or POST; got \"\""
        ),
        Case(
            twoPolicies + "forward_auth:\n  rules:\n    - path_prefix: /\n      methods: [[GET]]\n      limits: [{ policy: api, by: api_key }]\n",
            "forward_auth.rules[0].methods[0] (line 7): a method must be letters A-Z, such as GET or POST; got a list"
        ),
        Case(
            twoPolicies + "forward_auth:\n  rules:\n    - path_prefix: /login\n      methods: []\n      limits: [{ policy: login, by: ip }]\n",
            "forward_auth.rules[0].methods (line 7): must list at least one method, or be left out to match any method"
        ),
        Case(
            twoPolicies + "forward_auth:\n  rules:\n    - path_prefix: /login\n      methods: POST\n      limits: [{ policy: login, by: ip }]\n",
            "forward_auth.rules[0].methods (line 7): must be a list of methods, such as [GET, POST], got \"POST\""
        ),
        // limits
        Case(
            twoPolicies + """
                forward_auth:
                  deny_status: 403
                  trusted_proxies:
                    - 10.0.0.0/8
                    - "::1/128"
                  rules:
                    - path_prefix: /login
                      methods: [POST]
                      limits:
                        - { policy: login, by: ip }
                        - { policy: x, by: "ip+header:X-Account" }
                """,
            "forward_auth.rules[0].limits[1].policy (line 14): unknown policy 'x'; defined: api, login"
        ),
        Case(
            twoPolicies + "forward_auth:\n  rules:\n    - path_prefix: /\n      limits: [{ policy: login, by: ip }]\n    - path_prefix: /api\n      limits:\n        - policy: API\n          by: api_key\n",
            "forward_auth.rules[1].limits[0].policy (line 10): unknown policy 'API'; defined: api, login"
        ),
        Case(
            twoPolicies + "forward_auth:\n  rules:\n    - path_prefix: /login\n      limits: [{ policy: login, by: ip, cost: 2 }]\n",
            .unknownField, "forward_auth.rules[0].limits[0].cost (line 7): unknown field; expected one of policy, by"
        ),
        Case(
            twoPolicies + "forward_auth:\n  rules:\n    - path_prefix: /login\n      limits: [login]\n",
            "forward_auth.rules[0].limits[0] (line 7): must be a mapping with policy and by, such as { policy: api, by: api_key }, got \"login\""
        ),
        Case(
            twoPolicies + "forward_auth:\n  rules:\n    - path_prefix: /login\n      limits: [{ policy: login }]\n",
            .missingField,
            "forward_auth.rules[0].limits[0].by (line 7): missing; every limit needs policy and by, as in { policy: api, by: api_key }"
        ),
        Case(
            twoPolicies + "forward_auth:\n  rules:\n    - path_prefix: /login\n      limits:\n        - by: ip\n",
            .missingField,
            "forward_auth.rules[0].limits[0].policy (line 8): missing; every limit needs policy and by, as in { policy: api, by: api_key }"
        ),
        Case(
            twoPolicies + "forward_auth:\n  rules:\n    - path_prefix: /login\n      limits: [{ policy: [login], by: ip }]\n",
            "forward_auth.rules[0].limits[0].policy (line 7): must be the name of a policy, got a list"
        ),
        // by
        Case(
            twoPolicies + "forward_auth:\n  rules:\n    - path_prefix: /login\n      limits: [{ policy: login, by: cookie }]\n",
            "forward_auth.rules[0].limits[0].by (line 7): must be ip, api_key or header:NAME, or several joined by + (as in ip+header:X-Account); got \"cookie\""
        ),
        Case(
            twoPolicies + "forward_auth:\n  rules:\n    - path_prefix: /login\n      limits:\n        - policy: login\n          by: \"header:\"\n",
            "forward_auth.rules[0].limits[0].by (line 9): header: must be followed by a header name made of letters, digits and ! # $ % & ' * - . ^ _ ` | ~, as in header:X-Account; got \"header:\""
        ),
        Case(
            twoPolicies + "forward_auth:\n  rules:\n    - path_prefix: /login\n      limits: [{ policy: login, by: \"header:X Account\" }]\n",
            "forward_auth.rules[0].limits[0].by (line 7): header: must be followed by a header name made of letters, digits and ! # $ % & ' * - . ^ _ ` | ~, as in header:X-Account; got \"header:X Account\""
        ),
        Case(
            twoPolicies + "forward_auth:\n  rules:\n    - path_prefix: /login\n      limits: [{ policy: login, by: ip+ip }]\n",
            "forward_auth.rules[0].limits[0].by (line 7): each source may appear only once in a key; got \"ip+ip\""
        ),
        Case(
            twoPolicies + "forward_auth:\n  rules:\n    - path_prefix: /login\n      limits: [{ policy: login, by: \"ip+\" }]\n",
            "forward_auth.rules[0].limits[0].by (line 7): must be ip, api_key or header:NAME, or several joined by + (as in ip+header:X-Account); got \"ip+\""
        ),
        Case(
            twoPolicies + "forward_auth:\n  rules:\n    - path_prefix: /login\n      limits: [{ policy: login, by: [ip, api_key] }]\n",
            "forward_auth.rules[0].limits[0].by (line 7): must be ip, api_key or header:NAME, or several joined by + (as in ip+header:X-Account); got a list"
        ),
        Case(
            twoPolicies + "forward_auth:\n  rules:\n    - path_prefix: /login\n      limits: [{ policy: login, by: }]\n",
            "forward_auth.rules[0].limits[0].by (line 7): must be ip, api_key or header:NAME, or several joined by + (as in ip+header:X-Account); got an empty value"
        ),
    ]

    @Test(arguments: forwardAuthErrors)
    func forwardAuthError(_ testCase: Case) throws {
        let error = try #require(parseError(testCase.yaml))
        #expect(error.description == testCase.description)
        #expect(error.code == testCase.code)
    }

    @Test func policiesMayComeAfterTheRules() throws {
        let yaml = """
            forward_auth:
              rules:
                - { path_prefix: /, limits: [{ policy: api, by: api_key }] }
            policies:
              api: { algorithm: token_bucket, limit: 100, period: 1s }
            """
        let configuration = try SluiceConfiguration.parse(yaml: yaml)
        #expect(configuration.forwardAuth.rules.map(\.pathPrefix) == ["/"])
        let error = try #require(parseError(yaml.replacingPolicyName("api", with: "apis")))
        #expect(error.description == "forward_auth.rules[0].limits[0].policy (line 3): unknown policy 'api'; defined: apis")
    }

    @Test func policyErrorsComeBeforeRuleErrors() throws {
        // Without policies, the rules cannot be checked: the missing policies are the mistake to report.
        let error = try #require(
            parseError("forward_auth:\n  rules:\n    - { path_prefix: /, limits: [{ policy: api, by: api_key }] }\n")
        )
        #expect(error.code == .noPolicies)
    }

    @Test func methodsAreUppercasedAndDeduplicated() throws {
        let configuration = try SluiceConfiguration.parse(
            yaml: twoPolicies + """
                forward_auth:
                  rules:
                    - path_prefix: /login
                      methods: [post, Post, GET, patch]
                      limits: [{ policy: login, by: ip }]
                """
        )
        #expect(configuration.forwardAuth.rules.first?.methods == ["POST", "GET", "PATCH"])
        #expect(Rule(pathPrefix: "/", methods: ["get", "Delete"], limits: []).methods == ["GET", "DELETE"])
        #expect(Rule(pathPrefix: "/", limits: []).methods == nil)
    }

    @Test func compositeAndHeaderKeySources() throws {
        let configuration = try SluiceConfiguration.parse(
            yaml: twoPolicies + """
                forward_auth:
                  trusted_proxies: [10.0.0.0/8, "fd00::/8", 192.168.1.7]
                  rules:
                    - path_prefix: /login
                      limits:
                        - policy: login
                          by: ip+header:X-Account
                        - { policy: api, by: "api_key+header:x-tenant_id" }
                """
        )
        let limits = try #require(configuration.forwardAuth.rules.first).limits
        #expect(limits.map(\.by) == [
            KeySource(parts: [.ip, .header("X-Account")]), KeySource(parts: [.apiKey, .header("x-tenant_id")]),
        ])
        #expect(configuration.forwardAuth.trustedProxies.map(\.description) == ["10.0.0.0/8", "fd00::/8", "192.168.1.7/32"])
    }

    @Test func yamlPitfallsInLists() throws {
        // An unquoted IPv6 block in a flow list is not YAML (`[::1` reads as a mapping key); quoted, or in a block
        // list, it is fine.
        let flow = try #require(parseError(twoPolicies + "forward_auth:\n  trusted_proxies: [::1/128]\n"))
        #expect(flow.code == .invalidYAML)
        #expect(flow.line == 5)
        let block = try SluiceConfiguration.parse(yaml: twoPolicies + "forward_auth:\n  trusted_proxies:\n    - ::1/128\n")
        #expect(block.forwardAuth.trustedProxies.map(\.description) == ["::1/128"])
        // An element left empty is named by its index and its line.
        let emptyRule = try #require(
            parseError(twoPolicies + "forward_auth:\n  rules:\n    -\n    - { path_prefix: /, limits: [{ policy: api, by: ip }] }\n")
        )
        #expect(emptyRule.path == "forward_auth.rules[0]")
        #expect(emptyRule.line == 6)
        #expect(emptyRule.message.hasSuffix("got an empty value"))
        let emptyLimit = try #require(
            parseError(twoPolicies + "forward_auth:\n  rules:\n    - path_prefix: /\n      limits:\n        - { policy: api, by: ip }\n        -\n")
        )
        #expect(
            emptyLimit.description
                == "forward_auth.rules[0].limits[1] (line 9): must be a mapping with policy and by, such as { policy: api, by: api_key }, got an empty value"
        )
    }

    @Test func duplicateKeysInARuleNameTheElement() throws {
        let error = try #require(
            parseError(twoPolicies + "forward_auth:\n  rules:\n    - path_prefix: /a\n      path_prefix: /b\n      limits: [{ policy: api, by: ip }]\n")
        )
        #expect(error.code == .duplicateKey)
        #expect(error.path == "forward_auth.rules[0].path_prefix")
        #expect(error.line == 7)
    }

    @Test func programmaticForwardAuthIsValidated() throws {
        let api = try Policy(name: "api", rateLimit: RateLimit(algorithm: .fixedWindow, limit: 1, periodNanoseconds: 1_000_000_000))
        let byIP = KeySource(parts: [.ip])
        func error(_ forwardAuth: ForwardAuth) -> ConfigurationError? {
            do {
                _ = try SluiceConfiguration(policies: [api], forwardAuth: forwardAuth)
                return nil
            } catch {
                return error
            }
        }
        let valid = ForwardAuth(denyStatus: 403, trustedProxies: [], rules: [Rule(pathPrefix: "/", limits: [Limit(policy: "api", by: byIP)])])
        #expect(error(valid) == nil)
        #expect(try SluiceConfiguration(policies: [api], forwardAuth: valid).forwardAuth == valid)

        let cases: [(ForwardAuth, String)] = [
            (ForwardAuth(denyStatus: 302), "forward_auth.deny_status: must be a 4xx status from 400 to 499, such as 429 or 403; got 302"),
            (
                ForwardAuth(rules: [valid.rules[0], Rule(pathPrefix: "/x", limits: [Limit(policy: "nope", by: byIP)])]),
                "forward_auth.rules[1].limits[0].policy: unknown policy 'nope'; defined: api"
            ),
            (ForwardAuth(rules: [Rule(pathPrefix: "/", limits: [])]), "forward_auth.rules[0].limits: must list at least one limit, such as { policy: api, by: api_key }"),
            (
                ForwardAuth(rules: [Rule(pathPrefix: "api", limits: [Limit(policy: "api", by: byIP)])]),
                "forward_auth.rules[0].path_prefix: must start with /, as in /login or / for every path; got \"api\""
            ),
            (
                ForwardAuth(rules: [Rule(pathPrefix: "/", methods: [], limits: [Limit(policy: "api", by: byIP)])]),
                "forward_auth.rules[0].methods: must list at least one method, or be left out to match any method"
            ),
            (
                ForwardAuth(rules: [Rule(pathPrefix: "/", methods: ["GET", "GET2"], limits: [Limit(policy: "api", by: byIP)])]),
                "forward_auth.rules[0].methods: a method must be uppercase letters A-Z, such as GET or POST; got \"GET2\""
            ),
            (
                ForwardAuth(rules: [Rule(pathPrefix: "/", limits: [Limit(policy: "api", by: KeySource(parts: []))])]),
                "forward_auth.rules[0].limits[0].by: must name at least one source: ip, api_key or header:NAME, or several joined by + (as in ip+header:X-Account)"
            ),
            (
                ForwardAuth(rules: [Rule(pathPrefix: "/", limits: [Limit(policy: "api", by: KeySource(parts: [.header("A+B")]))])]),
                "forward_auth.rules[0].limits[0].by: 'A+B' is not a header name: use letters, digits and ! # $ % & ' * - . ^ _ ` | ~"
            ),
            (
                ForwardAuth(rules: [Rule(pathPrefix: "/", limits: [Limit(policy: "api", by: KeySource(parts: [.header("X-A"), .ip, .header("x-a")]))])]),
                "forward_auth.rules[0].limits[0].by: each source may appear only once in a key, got header:X-A+ip+header:x-a"
            ),
        ]
        for (forwardAuth, description) in cases {
            let error = try #require(error(forwardAuth))
            #expect(error.code == .invalidValue)
            #expect(error.line == nil)
            #expect(error.description == description)
        }
    }

    @Test func programmaticHTTPIsValidated() throws {
        let api = try Policy(name: "api", rateLimit: RateLimit(algorithm: .fixedWindow, limit: 1, periodNanoseconds: 1_000_000_000))
        let http = SluiceConfiguration.HTTP(maxBodyBytes: 4096, maxChecks: 1, maxBatch: 1)
        #expect(try SluiceConfiguration(policies: [api], http: http).http == http)
        let cases: [(SluiceConfiguration.HTTP, String)] = [
            (.init(maxBodyBytes: 0), "http.max_body_bytes: must be an integer from 1 to 67108864, got 0"),
            (.init(maxBodyBytes: 64 * 1024 * 1024 + 1), "http.max_body_bytes: must be an integer from 1 to 67108864, got 67108865"),
            (.init(maxChecks: -1), "http.max_checks: must be an integer from 1 to 10000, got -1"),
            (.init(maxBatch: 100_001), "http.max_batch: must be an integer from 1 to 100000, got 100001"),
        ]
        for (http, description) in cases {
            let error = #expect(throws: ConfigurationError.self) { try SluiceConfiguration(policies: [api], http: http) }
            #expect(error?.description == description)
        }
    }

    @Test func equalityIncludesTheNewSections() throws {
        let base = try SluiceConfiguration.parse(yaml: twoPolicies)
        #expect(base == (try SluiceConfiguration.parse(yaml: twoPolicies + "http: {}\nforward_auth: {}\n")))
        #expect(base != (try SluiceConfiguration.parse(yaml: twoPolicies + "http: { max_checks: 5 }\n")))
        #expect(base != (try SluiceConfiguration.parse(yaml: twoPolicies + "forward_auth: { deny_status: 403 }\n")))
        #expect(base != (try SluiceConfiguration.parse(yaml: twoPolicies + "forward_auth: { trusted_proxies: [] }\n")))
        #expect(
            base != (try SluiceConfiguration.parse(
                yaml: twoPolicies + "forward_auth: { rules: [{ path_prefix: /, limits: [{ policy: api, by: ip }] }] }\n"
            ))
        )
    }
}

struct KeySourceTests {
    typealias KeySource = SluiceConfiguration.ForwardAuth.KeySource

    @Test(arguments: [
        ("ip", [KeySource.Part.ip]), ("api_key", [.apiKey]), ("header:X-Account", [.header("X-Account")]),
        ("ip+header:X-Account", [.ip, .header("X-Account")]), ("api_key+ip", [.apiKey, .ip]),
        ("header:x-tenant.id_2", [.header("x-tenant.id_2")]), ("header:!#$%&'*-.^_`|~", [.header("!#$%&'*-.^_`|~")]),
        ("header:A+header:B+ip+api_key", [.header("A"), .header("B"), .ip, .apiKey]),
    ])
    func roundTrips(text: String, parts: [KeySource.Part]) throws {
        let source = try #require(KeySource(text))
        #expect(source.parts == parts)
        #expect(source.description == text)
        #expect(KeySource(parts: parts).description == text)
        #expect(KeySource(KeySource(parts: parts).description) == source)
    }

    @Test(arguments: [
        "", "IP", "Ip", "apikey", "api-key", "API_KEY", "header", "header:", "Header:X", "header :X", "header:X Account",
        "header:X:Y", "header:X/Y", "header:Ä", "header:\"X\"", "cookie:session", "ip+", "+ip", "ip++api_key", "ip+ip",
        "api_key+api_key", "header:A+header:a", " ip", "ip ", "ip + api_key",
    ])
    func rejects(text: String) {
        #expect(KeySource(text) == nil)
    }

    @Test func headerNamesKeepTheirCase() throws {
        let source = try #require(KeySource("header:X-Account+header:x-tenant"))
        #expect(source.parts == [.header("X-Account"), .header("x-tenant")])
        #expect(source != KeySource("header:x-account+header:x-tenant"))
    }
}

extension String {
    /// The text with the policy definition `name:` renamed, leaving references alone.
    fileprivate func replacingPolicyName(_ name: String, with newName: String) -> String {
        split(separator: "\n", omittingEmptySubsequences: false).map { line in
            line.hasPrefix("  \(name): ") ? "  \(newName): " + line.dropFirst(name.count + 4) : String(line)
        }.joined(separator: "\n")
    }
}
