import SluiceConfig
import Testing

struct ConfigurationErrorTests {
    /// A YAML text and the exact error it must produce.
    struct Case: CustomTestStringConvertible, Sendable {
        let yaml: String
        let code: ConfigurationError.Code
        let description: String
        var testDescription: String { description }
    }

    static let policyErrors: [Case] = [
        Case(
            yaml: """
                policies:
                  api:
                    algorithm: token_bucket
                    limit: -5
                    period: 1s
                """,
            code: .invalidValue, description: "policies.api.limit (line 4): must be a positive integer, got -5"
        ),
        Case(
            yaml: "policies:\n  api: { algorithm: token_bucket, limit: \"abc\", period: 1s }\n",
            code: .invalidValue, description: "policies.api.limit (line 2): must be a positive integer, got \"abc\""
        ),
        Case(
            yaml: "policies:\n  api: { algorithm: token_bucket, limit: abc, period: 1s }\n",
            code: .invalidValue, description: "policies.api.limit (line 2): must be a positive integer, got \"abc\""
        ),
        Case(
            yaml: "policies:\n  api: { algorithm: token_bucket, limit: \"100\", period: 1s }\n",
            code: .invalidValue, description: "policies.api.limit (line 2): must be a positive integer, got \"100\""
        ),
        Case(
            yaml: "policies:\n  api: { algorithm: token_bucket, limit: 1.5, period: 1s }\n",
            code: .invalidValue, description: "policies.api.limit (line 2): must be a positive integer, got 1.5"
        ),
        Case(
            yaml: "policies:\n  api: { algorithm: token_bucket, limit: 0, period: 1s }\n",
            code: .invalidValue, description: "policies.api.limit (line 2): must be a positive integer, got 0"
        ),
        Case(
            yaml: "policies:\n  api: { algorithm: token_bucket, limit: 0x10, period: 1s }\n",
            code: .invalidValue, description: "policies.api.limit (line 2): must be a positive integer, got 0x10"
        ),
        Case(
            yaml: "policies:\n  api: { algorithm: token_bucket, limit: , period: 1s }\n",
            code: .invalidValue, description: "policies.api.limit (line 2): must be a positive integer, got an empty value"
        ),
        Case(
            yaml: """
                # rate limits
                policies:
                  api:
                    algorithm: token_bucket
                    limit: 100
                    period: 1s
                    limt: 7
                """,
            code: .unknownField,
            description:
                "policies.api.limt (line 7): unknown field; expected one of algorithm, limit, period, burst, mode, scope, sync, on_store_failure, overrides"
        ),
        Case(
            yaml: "policies:\n  api:\n    algorithm: token_bucket\n    limit: 100\n",
            code: .missingField,
            description: "policies.api.period (line 2): missing; every policy needs algorithm, limit and period"
        ),
        Case(
            yaml: "policies:\n  api: { limit: 100, period: 1s }\n",
            code: .missingField,
            description: "policies.api.algorithm (line 2): missing; every policy needs algorithm, limit and period"
        ),
        Case(
            yaml: "policies:\n  api: { algorithm: leaky_bucket, limit: 100, period: 1s }\n",
            code: .invalidValue,
            description:
                "policies.api.algorithm (line 2): must be one of token_bucket, sliding_window, fixed_window, got \"leaky_bucket\""
        ),
        Case(
            yaml: "policies:\n  api: { algorithm: token_bucket, limit: 100, period: 1s, mode: dry_run }\n",
            code: .invalidValue, description: "policies.api.mode (line 2): must be enforce or shadow, got \"dry_run\""
        ),
        Case(
            yaml: """
                policies:
                  api: { algorithm: token_bucket, limit: 100, period: 1s, burst: 20 }
                  login:
                    algorithm: sliding_window
                    limit: 5
                    period: 1m
                    burst: 5
                """,
            code: .invalidValue,
            description:
                "policies.login.burst (line 7): burst applies only to token_bucket; remove it from this sliding_window policy"
        ),
        Case(
            yaml: "policies:\n  daily: { algorithm: fixed_window, limit: 10, period: 1d, burst: 10 }\n",
            code: .invalidValue,
            description:
                "policies.daily.burst (line 2): burst applies only to token_bucket; remove it from this fixed_window policy"
        ),
        Case(
            yaml: "policies:\n  api: { algorithm: token_bucket, limit: 100, period: 1s, burst: -1 }\n",
            code: .invalidValue, description: "policies.api.burst (line 2): must be a positive integer, got -1"
        ),
        Case(
            yaml: "policies:\n  big: { algorithm: sliding_window, limit: 20000000, period: 1s }\n",
            code: .invalidValue,
            description:
                "policies.big.limit (line 2): limit must be an integer from 1 to 16777215 for sliding_window, got 20000000"
        ),
        Case(
            yaml: "policies:\n  long: { algorithm: fixed_window, limit: 1, period: 367d }\n",
            code: .invalidValue, description: "policies.long.period (line 2): period must be from 1ms to 366d, got 367d"
        ),
        Case(
            yaml: "policies:\n  \"bad name\": { algorithm: fixed_window, limit: 1, period: 1s }\n",
            code: .invalidValue,
            description:
                "policies.bad name (line 2): a policy name must be 1 to 64 characters from A-Z a-z 0-9 _ . : -"
        ),
        Case(
            yaml: "policies:\n  api: 100\n",
            code: .invalidValue,
            description:
                "policies.api (line 2): must be a mapping with algorithm, limit and period, such as { algorithm: token_bucket, limit: 100, period: 1s }, got 100"
        ),
        Case(
            yaml: "policies:\n  api:\n",
            code: .invalidValue,
            description:
                "policies.api (line 2): must be a mapping with algorithm, limit and period, such as { algorithm: token_bucket, limit: 100, period: 1s }, got an empty value"
        ),
    ]

    @Test(arguments: policyErrors)
    func policyError(_ testCase: Case) throws {
        let error = try #require(parseError(testCase.yaml))
        #expect(error.description == testCase.description)
        #expect(error.code == testCase.code)
    }

    static let documentErrors: [Case] = [
        Case(
            yaml: "",
            code: .emptyConfiguration,
            description: "the configuration is empty; it needs at least a `policies` section"
        ),
        Case(
            yaml: "# nothing but a comment\n\n",
            code: .emptyConfiguration,
            description: "the configuration is empty; it needs at least a `policies` section"
        ),
        Case(
            yaml: "store:\n  max_keys: 10\n",
            code: .noPolicies,
            description:
                "policies: at least one policy is required (or an `rls` section), such as `api: { algorithm: token_bucket, limit: 100, period: 1s }`"
        ),
        Case(
            yaml: "listen:\n  line: 127.0.0.1:0\npolicies:\n",
            code: .noPolicies,
            description:
                "policies (line 3): at least one policy is required (or an `rls` section), such as `api: { algorithm: token_bucket, limit: 100, period: 1s }`"
        ),
        Case(
            yaml: "policies: {}\n",
            code: .noPolicies,
            description:
                "policies (line 1): at least one policy is required (or an `rls` section), such as `api: { algorithm: token_bucket, limit: 100, period: 1s }`"
        ),
        Case(
            yaml: "policies: [api, login]\n",
            code: .invalidValue,
            description: "policies (line 1): must be a mapping from policy names to policies, got a list"
        ),
        Case(
            yaml: onePolicy + "\npolices:\n  login: { algorithm: sliding_window, limit: 5, period: 1m }\n",
            code: .unknownField,
            description: "polices (line 3): unknown section; expected one of listen, policies, store, limits, http, forward_auth, redis, rls, admin, events"
        ),
        Case(
            yaml: "- policies\n- store\n",
            code: .invalidValue,
            description: "line 1: must be a mapping of sections (listen, policies, store, limits, http, forward_auth, redis, rls, admin, events), got a list"
        ),
        Case(
            yaml: "just some text\n",
            code: .invalidValue,
            description: "line 1: must be a mapping of sections (listen, policies, store, limits, http, forward_auth, redis, rls, admin, events), got \"just some text\""
        ),
        Case(
            yaml: onePolicy + "\nstore:\n  max_keys: 1000\n  shards: 48\n",
            code: .invalidValue,
            description: "store.shards (line 5): must be a power of two from 1 to 65536 (1, 2, 4, … 64, …), got 48"
        ),
        Case(
            yaml: onePolicy + "\nstore:\n  max_keys: 1.0e6\n",
            code: .invalidValue, description: "store.max_keys (line 4): must be a positive integer, got 1.0e6"
        ),
        Case(
            yaml: onePolicy + "\nstore:\n  max_keys: 2_000_000_000\n",
            code: .invalidValue,
            description: "store.max_keys (line 4): must be an integer from 1 to 1000000000, got 2000000000"
        ),
        Case(
            yaml: onePolicy + "\nstore:\n  evict: lru\n",
            code: .unknownField, description: "store.evict (line 4): unknown field; expected one of max_keys, shards"
        ),
        Case(
            yaml: onePolicy + "\nlimits:\n  max_line_bytes: 256\n  max_key_bytes: 512\n",
            code: .invalidValue,
            description: "limits.max_key_bytes (line 5): must be an integer from 1 to max_line_bytes (256), got 512"
        ),
        Case(
            yaml: onePolicy + "\nlimits:\n  max_arguments: \"many\"\n",
            code: .invalidValue, description: "limits.max_arguments (line 4): must be a positive integer, got \"many\""
        ),
        Case(
            yaml: onePolicy + "\nlimits:\n  max_arguments: 2000000\n",
            code: .invalidValue,
            description: "limits.max_arguments (line 4): must be an integer from 1 to 1048576, got 2000000"
        ),
        Case(
            yaml: onePolicy + "\nlisten:\n  line: 127.0.0.1:7379\n  metrics: 127.0.0.1:7381\n",
            code: .unknownField, description: "listen.metrics (line 5): unknown field; expected one of line, http, grpc, admin"
        ),
    ]

    @Test(arguments: documentErrors)
    func documentError(_ testCase: Case) throws {
        let error = try #require(parseError(testCase.yaml))
        #expect(error.description == testCase.description)
        #expect(error.code == testCase.code)
    }

    @Test(arguments: ["1x", "0s", "1.5s", "s", "-1s", "1", "1 s", "1S", "\"\"", "{ seconds: 1 }"])
    func badDuration(_ period: String) throws {
        let error = try #require(parseError("policies:\n  api:\n    algorithm: fixed_window\n    limit: 1\n    period: \(period)\n"))
        #expect(error.code == .invalidValue)
        #expect(error.path == "policies.api.period")
        #expect(error.line == 5)
        #expect(error.message.hasPrefix("must be a duration: a positive integer with a unit, as in 250ms, 1s, 1m, 1h or 1d; got "))
    }

    @Test func duplicatePolicyNames() throws {
        let error = try #require(
            parseError(
                """
                policies:
                  api: { algorithm: token_bucket, limit: 100, period: 1s }
                  login: { algorithm: sliding_window, limit: 5, period: 1m }
                  api: { algorithm: fixed_window, limit: 10, period: 1h }
                """
            )
        )
        #expect(error.code == .duplicateKey)
        #expect(
            error.description
                == "policies.api (line 4): 'api' is defined more than once (first at line 2); each name may appear only once here"
        )
    }

    @Test func duplicateKeysElsewhere() throws {
        let field = try #require(
            parseError("policies:\n  api:\n    algorithm: token_bucket\n    limit: 1\n    limit: 2\n    period: 1s\n")
        )
        #expect(field.code == .duplicateKey)
        #expect(field.path == "policies.api.limit")
        #expect(field.line == 5)

        let quoted = try #require(parseError("policies:\n  \"api\": { algorithm: token_bucket, limit: 1, period: 1s }\n  'api': { algorithm: token_bucket, limit: 1, period: 1s }\n"))
        #expect(quoted.path == "policies.api")
        #expect(quoted.line == 3)

        let section = try #require(parseError(onePolicy + "\nstore: { shards: 8 }\nstore: { shards: 16 }\n"))
        #expect(section.path == "store")
        #expect(section.line == 4)

        // Equal to Sluice, different to YAML (an integer and a string): caught by the walk, not by Yams.
        let mixed = try #require(parseError("policies:\n  1: { algorithm: token_bucket, limit: 1, period: 1s }\n  \"1\": { algorithm: token_bucket, limit: 1, period: 1s }\n"))
        #expect(mixed.description == "policies.1 (line 3): '1' is defined more than once (first at line 2); each name may appear only once here")
    }

    @Test func severalDuplicatesInOneMappingStillNameALine() throws {
        let error = try #require(
            parseError(
                """
                policies:
                  api: { algorithm: token_bucket, limit: 1, period: 1s }
                  login: { algorithm: token_bucket, limit: 1, period: 1s }
                  api: { algorithm: token_bucket, limit: 2, period: 1s }
                  login: { algorithm: token_bucket, limit: 2, period: 1s }
                """
            )
        )
        #expect(error.code == .duplicateKey)
        #expect(error.line == 2)
        #expect(error.message.contains("'api'"))
    }

    @Test func yamlSyntaxErrorsCarryTheirLine() throws {
        let unclosed = try #require(
            parseError("policies:\n  api: { algorithm: token_bucket, limit: 100, period: 1s\n  login: {}\n")
        )
        #expect(unclosed.code == .invalidYAML)
        #expect(unclosed.path == "")
        #expect(unclosed.line == 3)
        #expect(unclosed.description.hasPrefix("line 3: invalid YAML: "))

        let badIndent = try #require(parseError("policies:\n  api:\n    limit: 1\n   period: 1s\n"))
        #expect(badIndent.code == .invalidYAML)
        #expect(badIndent.line == 4)

        let tab = try #require(parseError("policies:\n\tapi: {}\n"))
        #expect(tab.code == .invalidYAML)
        #expect(tab.line == 2)

        let twoDocuments = try #require(parseError(onePolicy + "\n---\n" + onePolicy))
        #expect(twoDocuments.code == .invalidYAML)
        #expect(twoDocuments.line == 3)
        #expect(
            twoDocuments.message == "invalid YAML: expected a single document in the stream, but found another document"
        )

        let controlCharacter = try #require(parseError("policies:\n  api: \"\u{7}\"\n"))
        #expect(controlCharacter.description == "line 2: invalid YAML: control characters are not allowed")
    }

    @Test func descriptionLeavesOutWhatIsUnknown() {
        #expect(ConfigurationError(.invalidValue, path: "a.b", line: 3, "bad").description == "a.b (line 3): bad")
        #expect(ConfigurationError(.invalidValue, path: "a.b", "bad").description == "a.b: bad")
        #expect(ConfigurationError(.invalidYAML, line: 9, "bad").description == "line 9: bad")
        #expect(ConfigurationError(.unreadableFile, "bad").description == "bad")
        #expect(ConfigurationError.Code.duplicateKey.description == "duplicateKey")
    }
}

/// `sluice validate` reports every mistake it can find in one pass, not only the first.
struct ConfigurationProblemsTests {
    @Test func everyMistakeIsReportedWithItsLine() {
        let problems = SluiceConfiguration.problems(
            yaml: """
                listen: { line: "127.0.0.1:99999" }
                policies:
                  a: { algorithm: token_bucket, limit: -5, period: 1s }
                  b: { algorithm: leaky, limit: 5, period: 1s }
                  c: { algorithm: fixed_window, limit: 5, period: 1s }
                store: { shards: 3 }
                forward_auth:
                  rules:
                    - { path_prefix: /x }
                    - { path_prefix: /y, limits: [{ policy: c, by: nowhere }] }
                """
        )
        #expect(problems.map(\.path) == ["listen.line", "policies.a.limit", "policies.b.algorithm", "forward_auth.rules[0].limits",
                                         "forward_auth.rules[1].limits[0].by", "store.shards"])
        #expect(problems.map(\.line) == [1, 3, 4, 9, 10, 6])
    }

    @Test func aValidConfigurationHasNoProblems() {
        #expect(SluiceConfiguration.problems(yaml: SluiceConfiguration.embeddedDefaultYAML).isEmpty)
    }

    @Test("checks across sections run once every section was read: a missing policy is reported, with the rest")
    func crossSectionChecks() {
        let problems = SluiceConfiguration.problems(
            yaml: """
                policies:
                  a: { algorithm: token_bucket, limit: 5, period: 1s, scope: global }
                store: { max_keys: 0 }
                forward_auth: { rules: [{ path_prefix: /, limits: [{ policy: nope, by: ip }] }] }
                """
        )
        #expect(problems.map(\.path) == ["store.max_keys", "policies.a.scope", "forward_auth.rules[0].limits[0].policy"])
    }

    @Test func parseThrowsTheFirstProblem() {
        let yaml = "policies:\n  a: { algorithm: token_bucket, limit: -5, period: 1s }\n  b: { algorithm: leaky, limit: 5, period: 1s }\n"
        #expect(throws: SluiceConfiguration.problems(yaml: yaml)[0]) { try SluiceConfiguration.parse(yaml: yaml) }
    }
}
