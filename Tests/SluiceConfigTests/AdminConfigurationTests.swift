import SluiceConfig
import SluiceCore
import Testing

/// The `admin` section, `listen.admin`, per-key `overrides`, and writing the policies back as YAML.
struct AdminConfigurationTests {
    static let digest = String(repeating: "ab", count: 32)

    @Test func adminKeysAndTheAdminListenerParse() throws {
        let configuration = try SluiceConfiguration.parse(
            yaml: onePolicy + """

                listen: { admin: "127.0.0.1:7381" }
                admin:
                  api_keys:
                    - { name: ops, sha256: "\(Self.digest)" }
                    - { name: deploy, sha256: "\(String(repeating: "CD", count: 32))" }
                """
        )
        #expect(configuration.admin.apiKeys.map(\.name) == ["ops", "deploy"])
        #expect(configuration.admin.apiKeys[0].sha256 == Array(repeating: 0xAB, count: 32))
        #expect(configuration.admin.apiKeys[1].sha256 == Array(repeating: 0xCD, count: 32))
        #expect(configuration.listen.admin == ListenAddress(host: "127.0.0.1", port: 7381))
        #expect(try SluiceConfiguration.parse(yaml: onePolicy).admin.apiKeys.isEmpty, "no admin section: no keys, the admin API is off")
    }

    @Test(arguments: [
        ("admin:\n  api_keys:\n    - { name: ops, sha256: \"sk_live_0123456789abcdefghijklmnopqrstuv\" }", "admin.api_keys[0].sha256", "not the key itself; got 40 characters"),
        ("admin:\n  api_keys:\n    - { name: ops }", "admin.api_keys[0].sha256", "missing"),
        ("admin:\n  api_keys:\n    - { sha256: \"\(digest)\" }", "admin.api_keys[0].name", "missing"),
        ("admin:\n  api_keys:\n    - { name: ops, sha256: \"\(digest)\", role: all }", "admin.api_keys[0].role", "unknown field"),
        ("admin:\n  api_keys:\n    - { name: ops, sha256: \"\(digest)\" }\n    - { name: ops, sha256: \"\(String(repeating: "cd", count: 32))\" }", "admin.api_keys[1].name", "names two keys"),
        ("admin:\n  keys: []", "admin.keys", "unknown field"),
    ])
    func adminMistakes(section: String, path: String, message: String) throws {
        let error = try #require(parseError(onePolicy + "\n" + section + "\n"))
        #expect(error.path == path, "\(error)")
        #expect(error.message.contains(message), "\(error)")
        #expect(!error.description.contains("sk_live_0123"), "a pasted key is never echoed")
    }

    @Test func overridesParseWithTheirDefaults() throws {
        let configuration = try SluiceConfiguration.parse(
            yaml: """
                policies:
                  api:
                    algorithm: token_bucket
                    limit: 100
                    period: 1s
                    overrides:
                      "user:vip":   { limit: 1000, burst: 200 }
                      "partner:*":  { limit: 500 }
                      "slow":       { limit: 10, period: 1m }
                """
        )
        let policy = configuration.policies[0]
        #expect(policy.overrides.map(\.pattern) == ["user:vip", "partner:*", "slow"])
        #expect(policy.overrides[0].rateLimit.limit == 1000 && policy.overrides[0].rateLimit.burst == 200)
        #expect(policy.overrides[1].rateLimit.burst == 500, "a token bucket override of limit only has that burst")
        #expect(policy.overrides[2].rateLimit.periodNanoseconds == 60_000_000_000)
        #expect(configuration.policySet.override(policy: 0, key: "partner:acme")?.rateLimit.limit == 500)
    }

    @Test(arguments: [
        ("\"a*b\": { limit: 5 }", "policies.api.overrides.a*b", "'*' may only end"),
        ("k: { limit: 0 }", "policies.api.overrides.k.limit", "positive integer"),
        ("k: { burst: 5 }", "policies.api.overrides.k.limit", "missing"),
        ("k: { limit: 5, ceiling: 9 }", "policies.api.overrides.k.ceiling", "unknown field"),
        ("k: { limit: 5, period: soon }", "policies.api.overrides.k.period", "must be a duration"),
        ("k: 5", "policies.api.overrides.k", "must be a mapping"),
    ])
    func overrideMistakes(entry: String, path: String, message: String) throws {
        let yaml = "policies:\n  api:\n    algorithm: token_bucket\n    limit: 100\n    period: 1s\n    overrides:\n      \(entry)\n"
        let error = try #require(parseError(yaml))
        #expect(error.path == path, "\(error)")
        #expect(error.message.contains(message), "\(error)")
        #expect(error.line != nil)
    }

    @Test func aBurstOverrideOnAWindowIsRefusedOnItsLine() throws {
        let yaml = "policies:\n  w:\n    algorithm: fixed_window\n    limit: 100\n    period: 1s\n    overrides:\n      k: { limit: 5, burst: 9 }\n"
        let error = try #require(parseError(yaml))
        #expect(error.path == "policies.w.overrides.k.burst" && error.line == 7, "\(error)")
    }

    static let policies: [Policy] = {
        do {
            let api = try Policy(name: "api", rateLimit: RateLimit(algorithm: .tokenBucket, limit: 100, periodNanoseconds: 1_000_000_000, burst: 150))
            let odd = "key \"with\" quotes\\, a tab\t, a DEL \u{7F}, a line\u{2028}break, and ü"
            return [
                try api.with(overrides: [
                    try Policy.Override(pattern: "user:vip", rateLimit: api.overrideLimit(limit: 1000, burst: 200)),
                    try Policy.Override(pattern: "partner:*", rateLimit: api.overrideLimit(limit: 500)),
                    try Policy.Override(pattern: odd, rateLimit: api.overrideLimit(limit: 7, periodNanoseconds: 60_000_000_000)),
                ]),
                try Policy(
                    name: "login:v2", rateLimit: RateLimit(algorithm: .slidingWindow, limit: 5, periodNanoseconds: 60_000_000_000), mode: .shadow,
                    scope: .global(Policy.Global(sync: .strict, onStoreFailure: .deny))
                ),
                try Policy(name: "f", rateLimit: RateLimit(algorithm: .fixedWindow, limit: 10, periodNanoseconds: 250_000_000)),
            ]
        } catch {
            preconditionFailure("test policies are valid: \(error)")
        }
    }()

    @Test func thePoliciesSectionWrittenReadsBackTheSame() throws {
        let text = ConfigurationText.policiesSection(Self.policies) + "redis: { url: \"redis://127.0.0.1:6379/0\" }\n"
        let parsed = try SluiceConfiguration.parse(yaml: text)
        #expect(parsed.policies == Self.policies, "\(text)")
    }

    @Test func replacingThePoliciesKeepsEveryOtherLine() throws {
        let document = """
            # Sluice for the shop: comments above the policies stay.
            listen:
              http: "127.0.0.1:7380"   # the HTTP API

            policies:
              # this comment inside the section is not kept
              api: { algorithm: token_bucket, limit: 1, period: 1s }

            # Redis: this comment belongs to the next section and stays.
            redis:
              url: "redis://127.0.0.1:6379/0"
            admin:
              api_keys:
                - { name: ops, sha256: "\(Self.digest)" }

            """
        let replaced = ConfigurationText.replacingPolicies(in: document, with: Self.policies)
        let parsed = try SluiceConfiguration.parse(yaml: replaced)
        #expect(parsed.policies == Self.policies)
        #expect(parsed.admin.apiKeys.count == 1 && parsed.redis != nil && parsed.listen.http.port == 7380)
        for kept in ["# Sluice for the shop", "# the HTTP API", "# Redis: this comment belongs", "admin:"] {
            #expect(replaced.contains(kept), "kept: \(kept)\n\(replaced)")
        }
        #expect(!replaced.contains("is not kept"))
        #expect(replaced.hasSuffix("\n"))
        // A document without policies (an rls-only one) gets the section at its end.
        let appended = ConfigurationText.replacingPolicies(in: "listen: { http: \"127.0.0.1:1\" }\n", with: Self.policies)
        #expect(try SluiceConfiguration.parse(yaml: appended + "redis: { url: \"redis://127.0.0.1:6379/0\" }\n").policies == Self.policies)
    }

    @Test("The policies section ends where the parser says, not at the first unindented line (found by FuzzConfig)")
    func rewritingFindsTheSectionByTheParser() throws {
        // A flow mapping may go on in the first column: a text scan took `, limit: 1, …` for the next top-level key
        // and left the old section's tail behind, which did not parse (the admin API then refused to write).
        let document = """
            policies:
              api: { algorithm: token_bucket
            , limit: 1, period: 1s }
              old: { algorithm: fixed_window, limit: 3, period: 1m }
            limits: { max_key_bytes: 100 }
            redis: { url: "redis://127.0.0.1:6379/0" }

            """
        let replaced = ConfigurationText.replacingPolicies(in: document, with: Self.policies)
        let parsed = try SluiceConfiguration.parse(yaml: replaced)
        #expect(parsed.policies == Self.policies, "\(replaced)")
        #expect(parsed.limits.maxKeyBytes == 100)
        #expect(!replaced.contains("old:"))
        // A lone carriage return ends a line for YAML (so do NEL, LS and PS): `policies:` after one is on line 2.
        for lineBreak in ["\r", "\u{85}", "\u{2028}"] {
            let broken = "# a comment\(lineBreak)policies:\n  old: { algorithm: fixed_window, limit: 3, period: 1m }\n"
                + "redis: { url: \"redis://127.0.0.1:6379/0\" }\n"
            let rewritten = ConfigurationText.replacingPolicies(in: broken, with: Self.policies)
            #expect(try SluiceConfiguration.parse(yaml: rewritten).policies == Self.policies, "\(rewritten.debugDescription)")
            #expect(rewritten.hasPrefix("# a comment\(lineBreak)policies:") && !rewritten.contains("old:"))
        }
        // The whole document in flow style: `policies` shares its line with other keys, so no line can be
        // replaced whole; the document comes back unchanged, which the admin API's read-back then refuses.
        let flow = "{ policies: { api: { algorithm: token_bucket, limit: 1, period: 1s } }, limits: { max_key_bytes: 100 } }\n"
        #expect(ConfigurationText.replacingPolicies(in: flow, with: Self.policies) == flow)
        // Every top-level key indented (valid YAML; found by FuzzConfig): a section appended in column 1 would not
        // parse, so the document comes back unchanged too.
        let indented = "# a comment\n rls:\n\n"
        #expect(ConfigurationText.replacingPolicies(in: indented, with: Self.policies) == indented)
    }

    @Test func aPoliciesDocumentReportsEveryBadFieldByPath() throws {
        let body = #"{"policies": {"a": {"algorithm": "token_bucket", "limit": -1, "period": "1s"}, "b": {"algorithm": "leaky", "limit": 1, "period": "1s"}, "c": {"algorithm": "fixed_window", "limit": 1, "period": "1s", "burst": 3}}}"#
        guard case .failure(let errors) = SluiceConfiguration.policies(yaml: body) else {
            Issue.record("accepted")
            return
        }
        #expect(errors.errors.map(\.path) == ["policies.a.limit", "policies.b.algorithm", "policies.c.burst"], "\(errors)")
        guard case .success(let good) = SluiceConfiguration.policies(yaml: #"{"policies": {"a": {"algorithm": "fixed_window", "limit": 3, "period": "1m", "overrides": {"k": {"limit": 9}}}}}"#) else {
            Issue.record("refused a valid document")
            return
        }
        #expect(good.first?.overrides.first?.rateLimit.limit == 9)
        guard case .failure(let other) = SluiceConfiguration.policies(yaml: #"{"policy": {}}"#) else {
            Issue.record("accepted")
            return
        }
        #expect(other.errors.first?.path == "policy")
    }
}
