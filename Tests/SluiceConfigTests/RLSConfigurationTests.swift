import Foundation
import SluiceConfig
import SluiceCore
import SluiceTestSupport
import Testing

/// envoyproxy/ratelimit's files, read by the configuration: its format unchanged, its errors with file and line.
struct RLSConfigurationTests {
    @Test func aFileReadsAsEnvoyproxyRatelimitDefinesIt() throws {
        let domain = try RLSDomain.parse(
            yaml: """
                domain: shop
                descriptors:
                  - key: user
                    rate_limit: { unit: Minute, requests_per_unit: 3, name: per-user }
                  - key: path
                    value: /pay*
                    share_threshold: true
                    detailed_metric: true
                    descriptors:
                      - key: method
                        shadow_mode: true
                        rate_limit: { unit: week, requests_per_unit: 0 }
                  - key: tier
                    value: free
                    rate_limit: { unit: second, requests_per_unit: 5, algorithm: token_bucket, burst: 10, scope: local }
                  - key: internal
                    rate_limit: { unlimited: true, replaces: [{ name: per-user }] }
                  - key: whitelisted
                """,
            file: "shop.yaml"
        )
        #expect(domain.name == "shop")
        #expect(domain.descriptors.map(\.key) == ["user", "path", "tier", "internal", "whitelisted"])
        let user = try #require(domain.descriptors[0].limit)
        #expect(user.unit == .minute && user.requestsPerUnit == 3 && user.name == "per-user")
        #expect(user.rateLimit?.algorithm == .fixedWindow && user.rateLimit?.periodNanoseconds == 60_000_000_000)
        #expect(domain.descriptors[1].shareThreshold && domain.descriptors[1].isWildcard)
        let method = try #require(domain.descriptors[1].descriptors.first)
        #expect(method.shadowMode && method.limit?.requestsPerUnit == 0 && method.limit?.rateLimit == nil && method.limit?.unit == .week)
        #expect(domain.descriptors[2].limit?.rateLimit?.burst == 10)
        #expect(domain.descriptors[3].limit?.unlimited == true && domain.descriptors[3].limit?.replaces == ["per-user"])
        #expect(domain.descriptors[4].limit == nil)
    }

    @Test(arguments: [
        ("domain: \"\"\n", "x.yaml:1: domain: config file cannot have empty domain"),
        ("descriptors: []\n", "x.yaml:1: domain: missing; a file needs a domain"),
        ("domain: d\ndescriptors:\n  - value: v\n", "x.yaml:3: descriptors[0].key: missing; every descriptor needs a key"),
        ("domain: d\ndescriptors:\n  - { key: k, value: v }\n  - { key: k, value: v }\n", "x.yaml:4: descriptors[1]: duplicate descriptor composite key 'd.k_v'"),
        ("domain: d\ndescriptors:\n  - key: a\n    descriptors:\n      - { key: b }\n      - { key: b }\n", "x.yaml:6: descriptors[0].descriptors[1]: duplicate descriptor composite key 'd.a.b'"),
        ("domain: d\ndescriptors:\n  - key: k\n    rate_limit: { unit: fortnight, requests_per_unit: 1 }\n",
         "x.yaml:4: descriptors[0].rate_limit.unit: invalid rate limit unit 'fortnight'; use one of second, minute, hour, day, week, month, year"),
        ("domain: d\ndescriptors:\n  - key: k\n    rate_limit: { requests_per_unit: 1 }\n",
         "x.yaml:4: descriptors[0].rate_limit.unit: invalid rate limit unit ''; use one of second, minute, hour, day, week, month, year"),
        ("domain: d\ndescriptors:\n  - key: k\n    rate_limit: { unlimited: true, unit: second }\n",
         "x.yaml:4: descriptors[0].rate_limit.unit: should not specify rate limit unit when unlimited"),
        ("domain: d\ndescriptors:\n  - key: k\n    rate_limit: { unit: second, requests_per_unit: 1, replaces: [{ name: \"\" }] }\n",
         "x.yaml:4: descriptors[0].rate_limit.replaces[0]: should not have an empty replaces entry"),
        ("domain: d\ndescriptors:\n  - key: k\n    rate_limit: { unit: second, requests_per_unit: 1, name: n, replaces: [{ name: n }] }\n",
         "x.yaml:4: descriptors[0].rate_limit.replaces[0]: replaces should not contain name of same descriptor"),
        ("domain: d\ndescriptors:\n  - { key: k, value: v, share_threshold: true }\n",
         "x.yaml:3: descriptors[0].share_threshold: share_threshold can only be used with wildcard values (containing '*'), but found key 'k_v'"),
        ("domain: d\ndescriptors:\n  - key: k\n    rate_limit: { unit: second, requestsperunit: 1 }\n",
         "x.yaml:4: descriptors[0].rate_limit.requestsperunit: unknown field; expected one of unit, requests_per_unit, unlimited, name, replaces, algorithm, burst, scope, sync, on_store_failure"),
        ("domain: d\ndescriptors:\n  - key: k\n    rate_limit: { unit: second, requests_per_unit: -1 }\n",
         "x.yaml:4: descriptors[0].rate_limit.requests_per_unit: must be an integer from 0 to 4294967295, got -1"),
        ("domain: d\ndescriptors:\n  - key: k\n    rate_limit: { unit: second, requests_per_unit: 5, burst: 9 }\n",
         "x.yaml:4: descriptors[0].rate_limit.burst: burst applies only to algorithm: token_bucket"),
        ("domain: d\ndescriptors:\n  - key: k\n    rate_limit: { unit: second, requests_per_unit: 20000000, algorithm: sliding_window }\n",
         "x.yaml:4: descriptors[0].rate_limit.requests_per_unit: limit must be an integer from 1 to 16777215 for sliding_window, got 20000000"),
        ("domain: d\ndescriptors:\n  - { key: k, quota_mode: true }\n",
         "x.yaml:3: descriptors[0].quota_mode: quota_mode is not supported by Sluice; remove it (the limit then applies as a plain limit)"),
        ("domain: d\ndescriptors:\n  - { key: k, rate_limit: { unit: second, requests_per_unit: 1, scope: galactic } }\n",
         "x.yaml:3: descriptors[0].rate_limit.scope: must be local or global, got \"galactic\""),
        ("domain: d\ndescriptors: [\n", "x.yaml:3: invalid YAML: did not find expected node content (while parsing a flow node at line 3)"),
    ])
    func refused(yaml: String, description: String) {
        #expect(throws: ConfigurationError.self) { try RLSDomain.parse(yaml: yaml, file: "x.yaml") }
        do {
            _ = try RLSDomain.parse(yaml: yaml, file: "x.yaml")
        } catch {
            #expect(error.description == description)
            #expect(error.file == "x.yaml")
        }
    }

    /// A folder holding `files`, and the configuration's path in it.
    static func folder(_ files: [String: String]) throws -> String {
        let directory = try temporaryDirectory("rls-config")
        for (name, text) in files {
            let url = directory.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
        return directory.appendingPathComponent("sluice.yaml").path
    }

    static let shop = "domain: shop\ndescriptors:\n  - key: user\n    rate_limit: { unit: minute, requests_per_unit: 3 }\n"

    @Test("a configuration may hold rls and no policies; files are read relative to it")
    func rlsWithoutPolicies() throws {
        let path = try Self.folder([
            "sluice.yaml": "listen: { grpc: \"127.0.0.1:8081\" }\nrls:\n  files: [ratelimit/shop.yaml]\n  response_headers: true\n",
            "ratelimit/shop.yaml": Self.shop,
        ])
        let configuration = try SluiceConfiguration.load(path: path)
        #expect(configuration.policies.isEmpty)
        #expect(configuration.listen.grpc == ListenAddress(host: "127.0.0.1", port: 8081))
        #expect(configuration.rls?.domains.map(\.name) == ["shop"])
        #expect(configuration.rls?.responseHeaders == true)
        #expect(configuration.rls?.maxDescriptors == 64)
    }

    @Test("every file's mistakes are reported, each with its file and line; a domain defined twice names both files")
    func problemsAcrossFiles() throws {
        let path = try Self.folder([
            "sluice.yaml": "rls:\n  files: [a.yaml, b.yaml, c.yaml, missing.yaml]\n",
            "a.yaml": Self.shop,
            "b.yaml": Self.shop,
            "c.yaml": "domain: other\ndescriptors:\n  - key: k\n    rate_limit: { unit: eon }\n",
        ])
        let problems = SluiceConfiguration.problems(path: path).map(\.description)
        #expect(problems.count == 3, "\(problems)")
        #expect(problems.contains("b.yaml: domain: duplicate domain 'shop' in config file (first defined in a.yaml)"))
        #expect(problems.contains { $0.hasPrefix("c.yaml:4: descriptors[0].rate_limit.unit: invalid rate limit unit 'eon'") })
        #expect(problems.contains { $0.contains("missing.yaml': no such file") })
    }

    @Test func aGlobalDescriptorNeedsRedis() throws {
        let path = try Self.folder([
            "sluice.yaml": "rls: { files: [g.yaml] }\n",
            "g.yaml": "domain: g\ndescriptors:\n  - key: k\n    rate_limit: { unit: second, requests_per_unit: 5, scope: global, sync: strict }\n",
        ])
        let problems = SluiceConfiguration.problems(path: path).map(\.description)
        #expect(problems == ["rls.files (line 1): a rate_limit with scope: global needs a `redis` section saying where the fleet's Redis is"])
    }

    @Test(arguments: [
        ("rls: { files: [a.yaml], max_descriptors: 0 }\n", "rls.max_descriptors (line 1): must be a positive integer, got 0"),
        ("rls: { files: [a.yaml], response_headers: yes please }\n", "rls.response_headers (line 1): must be true or false, got \"yes please\""),
        ("rls: { files: a.yaml }\n", "rls.files (line 1): must be a list of envoyproxy/ratelimit files, such as [\"ratelimit/config.yaml\"], got \"a.yaml\""),
        ("rls: { file: [a.yaml] }\n", "rls.file (line 1): unknown field; expected one of files, response_headers, ietf_headers, max_descriptors, max_entries"),
    ])
    func sectionMistakes(yaml: String, description: String) throws {
        let path = try Self.folder(["sluice.yaml": yaml, "a.yaml": Self.shop])
        #expect(SluiceConfiguration.problems(path: path).map(\.description) == [description])
    }
}
