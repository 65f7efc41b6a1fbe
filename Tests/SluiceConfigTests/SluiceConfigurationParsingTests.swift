import SluiceConfig
import SluiceCore
import Testing

struct SluiceConfigurationParsingTests {
    @Test func everyFieldHasItsDefault() throws {
        let configuration = try SluiceConfiguration.parse(yaml: onePolicy)
        #expect(configuration.listen.line.description == "127.0.0.1:7379")
        #expect(configuration.listen.http.description == "127.0.0.1:7380")
        #expect(configuration.store.maxKeys == 1_000_000)
        #expect(configuration.store.shards == 64)
        #expect(configuration.limits.maxKeyBytes == 512)
        #expect(configuration.limits.maxLineBytes == 65_536)
        #expect(configuration.limits.maxArguments == 1_024)
        let policy = try #require(configuration.policies.first)
        #expect(policy.mode == .enforce)
        #expect(policy.rateLimit.burst == 100)  // burst defaults to limit
    }

    @Test func everyFieldIsRead() throws {
        let configuration = try SluiceConfiguration.parse(
            yaml: """
                listen:
                  line: "[::1]:0"
                  http: 0.0.0.0:8080
                policies:
                  api:
                    algorithm: token_bucket
                    limit: 50
                    period: 250ms
                    burst: 75
                    mode: enforce
                store:
                  max_keys: 1_000
                  shards: 8
                limits:
                  max_key_bytes: 128
                  max_line_bytes: 4096
                  max_arguments: 16
                """
        )
        #expect(configuration.listen.line == ListenAddress(host: "::1", port: 0))
        #expect(configuration.listen.http == ListenAddress(host: "0.0.0.0", port: 8080))
        #expect(configuration.store == SluiceConfiguration.Store(maxKeys: 1_000, shards: 8))
        #expect(configuration.limits == SluiceConfiguration.Limits(maxKeyBytes: 128, maxLineBytes: 4096, maxArguments: 16))
        let rateLimit = try #require(configuration.policies.first).rateLimit
        #expect(rateLimit == (try RateLimit(algorithm: .tokenBucket, limit: 50, periodNanoseconds: 250_000_000, burst: 75)))
    }

    @Test func policyOrderFollowsTheFile() throws {
        let configuration = try SluiceConfiguration.parse(
            yaml: """
                policies:
                  zeta: { algorithm: fixed_window, limit: 1, period: 1s }
                  alpha: { algorithm: token_bucket, limit: 2, period: 1m }
                  mid.dle: { algorithm: sliding_window, limit: 3, period: 1h }
                  "42": { algorithm: fixed_window, limit: 4, period: 1d }
                """
        )
        #expect(configuration.policies.map(\.name) == ["zeta", "alpha", "mid.dle", "42"])
        #expect(configuration.policySet.policies.map(\.name) == ["zeta", "alpha", "mid.dle", "42"])
        #expect(configuration.policySet.index(ofName: "alpha") == 1)
    }

    @Test func shadowMode() throws {
        let configuration = try SluiceConfiguration.parse(
            yaml: """
                policies:
                  trial: { algorithm: sliding_window, limit: 5, period: 1m, mode: shadow }
                  real: { algorithm: sliding_window, limit: 5, period: 1m, mode: enforce }
                """
        )
        #expect(configuration.policies.map(\.mode) == [.shadow, .enforce])
    }

    @Test(arguments: [
        ("250ms", 250_000_000 as Int64), ("1s", 1_000_000_000), ("90s", 90_000_000_000), ("1m", 60_000_000_000),
        ("1h", 3_600_000_000_000), ("1d", 86_400_000_000_000), ("\"10s\"", 10_000_000_000),
    ])
    func durations(text: String, nanoseconds: Int64) throws {
        let configuration = try SluiceConfiguration.parse(
            yaml: "policies:\n  p: { algorithm: fixed_window, limit: 1, period: \(text) }\n"
        )
        #expect(configuration.policies.first?.rateLimit.periodNanoseconds == nanoseconds)
    }

    @Test func theAdminSectionIsNoLongerIgnored() throws {
        // It was reserved, contents unchecked; it is read and checked now.
        let error = try #require(parseError(onePolicy + "\nadmin: { anything: [goes, here] }\n"))
        #expect(error.path == "admin.anything" && error.code == .unknownField, "\(error)")
    }

    @Test func httpAndForwardAuthAreNoLongerIgnored() throws {
        // Both were reserved, contents unchecked; they are read and checked now.
        let http = try #require(parseError(onePolicy + "\nhttp: 12\n"))
        #expect(http.description == "http (line 3): must be a mapping with max_body_bytes, max_checks, max_batch, got 12")
        let forwardAuth = try #require(
            parseError(onePolicy + "\nforward_auth:\n  rules: [{ prefix: /login, policies: [login] }]\n")
        )
        #expect(forwardAuth.code == .unknownField)
        #expect(
            forwardAuth.description
                == "forward_auth.rules[0].prefix (line 4): unknown field; expected one of path_prefix, methods, limits"
        )
    }

    @Test func emptySectionsTakeDefaults() throws {
        let configuration = try SluiceConfiguration.parse(
            yaml: onePolicy + "\nlisten:\nstore: {}\nlimits:\nhttp:\nforward_auth: {}\n"
        )
        #expect(configuration.listen == SluiceConfiguration.Listen())
        #expect(configuration.store == SluiceConfiguration.Store())
        #expect(configuration.limits == SluiceConfiguration.Limits())
        #expect(configuration.http == SluiceConfiguration.HTTP())
        #expect(configuration.forwardAuth == SluiceConfiguration.ForwardAuth())
    }

    @Test func anchorsAndAliasesWork() throws {
        let configuration = try SluiceConfiguration.parse(
            yaml: """
                policies:
                  a: &shared { algorithm: token_bucket, limit: 10, period: 1s }
                  b: *shared
                """
        )
        #expect(configuration.policies.map(\.name) == ["a", "b"])
        #expect(configuration.policies[0].rateLimit == configuration.policies[1].rateLimit)
    }

    @Test func programmaticConfigurationIsValidated() throws {
        let policy = try Policy(name: "api", rateLimit: RateLimit(algorithm: .fixedWindow, limit: 1, periodNanoseconds: 1_000_000_000))
        let configuration = try SluiceConfiguration(policies: [policy])
        #expect(configuration.store.shards == 64)
        #expect(throws: ConfigurationError(.noPolicies, path: "policies", "at least one policy is required (or an `rls` section), such as `api: { algorithm: token_bucket, limit: 100, period: 1s }`")) {
            try SluiceConfiguration(policies: [])
        }
        let error = #expect(throws: ConfigurationError.self) {
            try SluiceConfiguration(policies: [policy], store: .init(shards: 48))
        }
        #expect(error?.description == "store.shards: must be a power of two from 1 to 65536 (1, 2, 4, … 64, …), got 48")
        let duplicate = #expect(throws: ConfigurationError.self) { try SluiceConfiguration(policies: [policy, policy]) }
        #expect(duplicate?.code == .duplicateKey)
        #expect(duplicate?.path == "policies.api")
    }
}
