import SluiceConfig
import SluiceCore
import Testing

@testable import SluiceRLS

/// Descriptor matching, table-driven from envoyproxy/ratelimit's README examples and its own test configs.
struct DescriptorMatcherTests {
    /// The README's example configurations, verbatim (YAML blocks of "Examples" 1 to 9, 11).
    static let examples: [String: String] = [
        "ex1": """
            domain: mongo_cps
            descriptors:
              - key: database
                value: users
                rate_limit:
                  unit: second
                  requests_per_unit: 500

              - key: database
                value: default
                rate_limit:
                  unit: second
                  requests_per_unit: 500
            """,
        "ex2": """
            domain: messaging
            descriptors:
              # Only allow 5 marketing messages a day
              - key: message_type
                value: marketing
                descriptors:
                  - key: to_number
                    rate_limit:
                      unit: day
                      requests_per_unit: 5

              # Only allow 100 messages a day to any unique phone number
              - key: to_number
                rate_limit:
                  unit: day
                  requests_per_unit: 100
            """,
        "ex3": """
            domain: edge_proxy_per_ip
            descriptors:
              - key: remote_address
                rate_limit:
                  unit: second
                  requests_per_unit: 10

              # Black list IP
              - key: remote_address
                value: 50.0.0.5
                rate_limit:
                  unit: second
                  requests_per_unit: 0
            """,
        "ex4a": """
            domain: example4
            descriptors:
              - key: key
                value: value
                rate_limit:
                  requests_per_unit: 300
                  unit: second
            """,
        "ex4b": """
            domain: example4
            descriptors:
              - key: key
                value: value
                descriptors:
                  - key: subkey
                    rate_limit:
                      requests_per_unit: 300
                      unit: second
            """,
        "ex5": """
            domain: internal
            descriptors:
              - key: ldap
                rate_limit:
                  unlimited: true

              - key: azure
                rate_limit:
                  unit: minute
                  requests_per_unit: 100
            """,
        "ex6": """
            domain: example6
            descriptors:
              - key: service
                descriptors:
                  - key: user
                    value: user-a
                    rate_limit:
                      requests_per_unit: 10
                      unit: second
                    shadow_mode: true
                  - key: user
                    value: user-b
                    rate_limit:
                      requests_per_unit: 20
                      unit: second
            """,
        "ex7": """
            domain: example7
            descriptors:
              - key: key_1
                value: value_1
                descriptors:
                  - key: user
                    value: bkthomps
                    rate_limit:
                      name: specific_limit
                      requests_per_unit: 5
                      unit: second
              - key: key_2
                value: value_2
                descriptors:
                  - key: user
                    value: bkthomps
                    rate_limit:
                      replaces:
                        - name: specific_limit
                      requests_per_unit: 10
                      unit: second
            """,
        "ex8": """
            domain: example8
            descriptors:
              - key: key1
                detailed_metric: true
                rate_limit:
                  unit: minute
                  requests_per_unit: 10
              - key: key1
                value: value1
                rate_limit:
                  unit: minute
                  requests_per_unit: 20
            """,
        "ex9a": """
            domain: example9
            descriptors:
              - key: key1
                value: value*
                rate_limit:
                  unit: minute
                  requests_per_unit: 20
            """,
        "ex9b": """
            domain: example9
            descriptors:
              - key: path
                value: /api/*/action
                rate_limit:
                  unit: minute
                  requests_per_unit: 20
            """,
        "ex9c": """
            domain: example9
            descriptors:
              - key: route
                value: /api/*/resource/*/action
                rate_limit:
                  unit: minute
                  requests_per_unit: 20
            """,
        "ex11": """
            domain: example11
            descriptors:
              # With share_threshold: true, all files/* matches share the same threshold
              - key: files
                value: files/*
                share_threshold: true
                rate_limit:
                  unit: hour
                  requests_per_unit: 10

              # Without share_threshold, each files_no_share/* match has its own isolated threshold
              - key: files_no_share
                value: files_no_share/*
                share_threshold: false
                rate_limit:
                  unit: hour
                  requests_per_unit: 10
            """,
        // envoyproxy/ratelimit's test/config/basic_config.yaml and wildcard.yaml
        "basic": """
            domain: test-domain
            descriptors:
              - key: key1
                value: value1
                descriptors:
                  - key: subkey1
                    rate_limit:
                      unit: second
                      requests_per_unit: 5
                  - key: subkey1
                    value: subvalue1
                    rate_limit:
                      unit: second
                      requests_per_unit: 10
              - key: key2
                rate_limit:
                  unit: minute
                  requests_per_unit: 20
              - key: key2
                value: value2
                rate_limit:
                  unit: minute
                  requests_per_unit: 30
              - key: key2
                value: value3
              - key: key3
                rate_limit:
                  unit: hour
                  requests_per_unit: 1
              - key: key4
                rate_limit:
                  unit: day
                  requests_per_unit: 1
              - key: key5
                value: value5
                rate_limit:
                  unit: day
                  requests_per_unit: 15
                descriptors:
                  - key: subkey5
                    value: subvalue5
                    rate_limit:
                      unit: day
                      requests_per_unit: 25
            """,
        "wildcard": """
            domain: test-domain
            descriptors:
              - key: wild
                value: foo*
                rate_limit:
                  unit: minute
                  requests_per_unit: 20
              - key: noWild
                value: foo
                rate_limit:
                  unit: minute
                  requests_per_unit: 20
              - key: noVal
                rate_limit:
                  unit: minute
                  requests_per_unit: 20
              - key: midWild
                value: bar*b
                rate_limit:
                  unit: minute
                  requests_per_unit: 20
              - key: multiWild
                value: foo*bar*baz
                rate_limit:
                  unit: minute
                  requests_per_unit: 10
              - key: nestedWild
                value: val1
                descriptors:
                  - key: wild
                    value: goo*
                    rate_limit:
                      unit: minute
                      requests_per_unit: 20
            """,
        // Precedence and no backtracking, derived from the matching loop.
        "precedence": """
            domain: p
            descriptors:
              - key: A
                value: a
                descriptors:
                  - key: B
                    rate_limit: { unit: second, requests_per_unit: 1 }
              - key: A
                descriptors:
                  - key: C
                    rate_limit: { unit: second, requests_per_unit: 2 }
              - key: k
                value: abc
                rate_limit: { unit: second, requests_per_unit: 1 }
              - key: k
                value: "a*"
                rate_limit: { unit: second, requests_per_unit: 2 }
              - key: k
                value: "ab*"
                rate_limit: { unit: second, requests_per_unit: 4 }
              - key: k
                rate_limit: { unit: second, requests_per_unit: 3 }
            """,
    ]

    static func matcher(_ name: String) throws -> DescriptorMatcher {
        let yaml = try #require(examples[name])
        return try DescriptorMatcher(domains: [RLSDomain.parse(yaml: yaml, file: "\(name).yaml")])
    }

    /// `"k=v,k2=v2"` as entries.
    static func entries(_ text: String) -> [DescriptorEntry] {
        text.split(separator: ",").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return DescriptorEntry(key: String(parts[0]), value: parts.count > 1 ? String(parts[1]) : "")
        }
    }

    /// (config, domain, entries, expected "rpu/unit", "unlimited", or nil for no limit)
    static let cases: [(String, String, String, String?)] = [
        ("ex1", "mongo_cps", "database=users", "500/second"),
        ("ex1", "mongo_cps", "database=default", "500/second"),
        ("ex1", "mongo_cps", "database=other", nil),
        ("ex2", "messaging", "message_type=marketing,to_number=2061111111", "5/day"),
        ("ex2", "messaging", "message_type=marketing,to_number=2062222222", "5/day"),
        ("ex2", "messaging", "to_number=2061111111", "100/day"),
        ("ex2", "messaging", "message_type=marketing", nil),
        ("ex2", "messaging", "message_type=transactional,to_number=2061111111", nil),
        ("ex2", "messaging", "to_number=2061111111,message_type=marketing", nil),
        ("ex3", "edge_proxy_per_ip", "remote_address=50.0.0.1", "10/second"),
        ("ex3", "edge_proxy_per_ip", "remote_address=50.0.0.5", "0/second"),
        ("ex4a", "example4", "key=value,subkey=subvalue", nil),
        ("ex4a", "example4", "key=value", "300/second"),
        ("ex4b", "example4", "key=value,subkey=subvalue", "300/second"),
        ("ex4b", "example4", "key=value", nil),
        ("ex5", "internal", "ldap=anything", "unlimited"),
        ("ex5", "internal", "azure=anything", "100/minute"),
        ("ex6", "example6", "service=auth-service,user=user-a", "10/second shadow"),
        ("ex6", "example6", "service=auth-service,user=user-b", "20/second"),
        ("ex6", "example6", "service=billing,user=user-b", "20/second"),
        ("ex6", "example6", "service=auth-service,user=user-c", nil),
        ("ex6", "example6", "service=auth-service", nil),
        ("ex7", "example7", "key_1=value_1,user=bkthomps", "5/second specific_limit"),
        ("ex7", "example7", "key_2=value_2,user=bkthomps", "10/second"),
        ("ex7", "example7", "key_1=value_1,user=other", nil),
        ("ex8", "example8", "key1=unspecified_value", "10/minute"),
        ("ex8", "example8", "key1=value1", "20/minute"),
        ("ex9a", "example9", "key1=value1", "20/minute"),
        ("ex9a", "example9", "key1=valueXYZ", "20/minute"),
        ("ex9a", "example9", "key1=value", "20/minute"),
        ("ex9a", "example9", "key1=xvalue1", nil),
        ("ex9b", "example9", "path=/api/123/action", "20/minute"),
        ("ex9b", "example9", "path=/api/user-id/action", "20/minute"),
        ("ex9b", "example9", "path=/api/123/other", nil),
        ("ex9b", "example9", "path=/api/*/action", "20/minute"),
        ("ex9c", "example9", "route=/api/v1/resource/123/action", "20/minute"),
        ("ex9c", "example9", "route=/api/v1/resource/123/other", nil),
        ("ex11", "example11", "files=files/a.pdf", "10/hour"),
        ("basic", "foo_domain", "key1=value1", nil),
        ("basic", "test-domain", "key1=something", nil),
        ("basic", "test-domain", "key1=value1", nil),
        ("basic", "test-domain", "key2=value2,subkey=subvalue", nil),
        ("basic", "test-domain", "key5=value5,subkey5=subvalue", nil),
        ("basic", "test-domain", "key1=value1,subkey1=something", "5/second"),
        ("basic", "test-domain", "key1=value1,subkey1=subvalue1", "10/second"),
        ("basic", "test-domain", "key2=something", "20/minute"),
        ("basic", "test-domain", "key2=value2", "30/minute"),
        ("basic", "test-domain", "key2=value3", nil),
        ("basic", "test-domain", "key3=foo", "1/hour"),
        ("basic", "test-domain", "key4=foo", "1/day"),
        ("basic", "test-domain", "key5=value5", "15/day"),
        ("basic", "test-domain", "key5=value5,subkey5=subvalue5", "25/day"),
        ("wildcard", "test-domain", "noVal=foo1", "20/minute"),
        ("wildcard", "test-domain", "wild=foo1", "20/minute"),
        ("wildcard", "test-domain", "nestedWild=val1,wild=goo2", "20/minute"),
        ("wildcard", "test-domain", "wild=bar", nil),
        ("wildcard", "test-domain", "noWild=foo1", nil),
        ("wildcard", "test-domain", "midWild=barab", "20/minute"),
        ("wildcard", "test-domain", "midWild=bar123b", "20/minute"),
        ("wildcard", "test-domain", "midWild=barb", "20/minute"),
        ("wildcard", "test-domain", "midWild=bara", nil),
        ("wildcard", "test-domain", "midWild=xbarb", nil),
        ("wildcard", "test-domain", "multiWild=foo123bar456baz", "10/minute"),
        ("wildcard", "test-domain", "multiWild=foobarbaz", "10/minute"),
        ("wildcard", "test-domain", "multiWild=foo123baz", nil),
        ("wildcard", "test-domain", "multiWild=bar456baz", nil),
        ("precedence", "p", "A=a,C=c", nil),
        ("precedence", "p", "A=z,C=c", "2/second"),
        ("precedence", "p", "k=abc", "1/second"),
        ("precedence", "p", "k=abd", "2/second"),
        ("precedence", "p", "k=b", "3/second"),
        ("precedence", "p", "", nil),
    ]

    @Test(arguments: cases)
    func matching(config: String, domain: String, entries: String, expected: String?) throws {
        let matcher = try Self.matcher(config)
        let match = matcher.match(domain: domain, entries: Self.entries(entries))
        let shown = match.map { match -> String in
            let limit = match.limit.configuration
            if limit.unlimited { return "unlimited" }
            var text = "\(limit.requestsPerUnit)/\(limit.unit?.rawValue ?? "?")"
            if match.limit.shadowMode { text += " shadow" }
            if !limit.name.isEmpty { text += " \(limit.name)" }
            return text
        }
        #expect(shown == expected, "\(config): \(domain) \(entries)")
    }

    @Test("each value matched by a key-only or wildcard entry has its own bucket; share_threshold shares one")
    func bucketKeys() throws {
        let own = try Self.matcher("ex9a")
        let first = try #require(own.match(domain: "example9", entries: Self.entries("key1=value1")))
        let second = try #require(own.match(domain: "example9", entries: Self.entries("key1=value2")))
        #expect(first.key != second.key)
        let shared = try Self.matcher("ex11")
        let a = try #require(shared.match(domain: "example11", entries: Self.entries("files=files/a.pdf")))
        let b = try #require(shared.match(domain: "example11", entries: Self.entries("files=files/b.csv")))
        #expect(a.key == b.key)
        let c = try #require(shared.match(domain: "example11", entries: Self.entries("files_no_share=files_no_share/a.pdf")))
        let d = try #require(shared.match(domain: "example11", entries: Self.entries("files_no_share=files_no_share/b.csv")))
        #expect(c.key != d.key)
    }

    @Test("policy names are valid, stable for a place in the tree, and distinct across places")
    func policyNames() throws {
        let matcher = try Self.matcher("basic")
        let names = matcher.policies.policies.map(\.name)
        #expect(Set(names).count == names.count)
        #expect(names.allSatisfy { Policy.isValidName($0) && $0.hasPrefix("rls:test-domain:") })
        #expect(try Self.matcher("basic").policies.policies.map(\.name) == names)
    }
}
