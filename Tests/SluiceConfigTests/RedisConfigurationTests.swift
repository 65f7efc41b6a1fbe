import Foundation
import SluiceConfig
import SluiceCore
import SluiceTestSupport
import Testing

struct RedisConfigurationTests {
    @Test func theIssueExampleParses() throws {
        let configuration = try SluiceConfiguration.parse(
            yaml: """
                redis:
                  url: "redis://127.0.0.1:6379/0"
                  timeout: 50ms
                  key_prefix: "sluice:"
                policies:
                  api:    { algorithm: fixed_window,   limit: 1000, period: 1m, scope: global }
                  login:  { algorithm: sliding_window, limit: 5,    period: 1m, scope: global, sync: strict }
                  search: { algorithm: token_bucket,   limit: 100,  period: 1s, scope: global, on_store_failure: local }
                  local:  { algorithm: token_bucket,   limit: 100,  period: 1s }
                """
        )
        let redis = try #require(configuration.redis)
        #expect(redis == SluiceConfiguration.Redis(host: "127.0.0.1", port: 6379, database: 0, timeoutNanoseconds: 50_000_000, keyPrefix: "sluice:"))
        let scopes = configuration.policies.map(\.scope)
        #expect(scopes[0] == .global(Policy.Global(sync: .leased, onStoreFailure: .local)))
        #expect(scopes[1] == .global(Policy.Global(sync: .strict, onStoreFailure: .local)))
        #expect(scopes[2] == .global(Policy.Global(sync: .leased, onStoreFailure: .local)))
        #expect(scopes[3] == .local)
        #expect(configuration.policySet.isGlobal == [true, true, true, false])
    }

    @Test(arguments: [
        ("redis://localhost", "localhost", 6379, 0, nil, nil),
        ("redis://10.0.0.5:6380/3", "10.0.0.5", 6380, 3, nil, nil),
        ("redis://:s3cret@127.0.0.1:6379/0", "127.0.0.1", 6379, 0, nil, "s3cret"),
        ("redis://sluice:p%40ss@cache.internal:7000", "cache.internal", 7000, 0, "sluice", "p%40ss"),
        ("redis://[::1]:6390/1", "::1", 6390, 1, nil, nil),
        ("redis://pw@host/", "host", 6379, 0, nil, "pw"),
    ] as [(String, String, Int, Int, String?, String?)])
    func urls(url: String, host: String, port: Int, database: Int, username: String?, password: String?) throws {
        let parsed = try SluiceConfiguration.Redis.parseURL(url).get()
        #expect(parsed.deployment == .single(SluiceConfiguration.Redis.Node(host: host, port: port), database: database))
        #expect(parsed.username == username)
        #expect(parsed.password == password)
    }

    static let errors: [(yaml: String, description: String)] = [
        (
            "redis:\n  url: \"redis://h\"\n  cluster: [\"10.0.0.1:6379\"]\npolicies:\n  api: { algorithm: fixed_window, limit: 10, period: 1m }\n",
            "redis.cluster (line 3): use exactly one of url, cluster and sentinel; got url and cluster"
        ),
        (
            "redis:\n  cluster: [\"10.0.0.1:6379\", \"10.0.0.2\"]\npolicies:\n  api: { algorithm: fixed_window, limit: 10, period: 1m }\n",
            "redis.cluster[1] (line 2): must be host:port, such as 10.0.0.1:6379; got \"10.0.0.2\""
        ),
        (
            "redis:\n  cluster: []\npolicies:\n  api: { algorithm: fixed_window, limit: 10, period: 1m }\n",
            "redis.cluster (line 2): must list at least one node, as in [\"10.0.0.1:6379\", \"10.0.0.2:6379\"]"
        ),
        (
            "redis:\n  sentinel: { nodes: [\"10.0.0.9:26379\"] }\npolicies:\n  api: { algorithm: fixed_window, limit: 10, period: 1m }\n",
            "redis.sentinel.master (line 2): missing; sentinel needs master and nodes, such as { master: mymaster, nodes: [\"10.0.0.9:26379\"] }"
        ),
        (
            "redis:\n  sentinel: { master: m, nodes: [\"10.0.0.9:port\"] }\npolicies:\n  api: { algorithm: fixed_window, limit: 10, period: 1m }\n",
            "redis.sentinel.nodes[0] (line 2): the port must be a number from 1 to 65535, got 'port'; got \"10.0.0.9:port\""
        ),
        (
            "redis:\n  url: \"redis://h\"\n  password: a\n  password_file: /x\npolicies:\n  api: { algorithm: fixed_window, limit: 10, period: 1m }\n",
            "redis.password (line 3): give password or password_file, not both"
        ),
        (
            "redis:\n  url: \"redis://:inurl@h\"\n  password: a\npolicies:\n  api: { algorithm: fixed_window, limit: 10, period: 1m }\n",
            "redis.password (line 3): the url already holds a password; give it in one place"
        ),
        (
            "redis:\n  url: \"redis://h\"\n  password_file: /nonexistent/secret\npolicies:\n  api: { algorithm: fixed_window, limit: 10, period: 1m }\n",
            "redis.password_file (line 3): cannot read the secret file '/nonexistent/secret'"
        ),
        (
            "policies:\n  api: { algorithm: fixed_window, limit: 10, period: 1m, scope: global }\n",
            "policies.api.scope (line 2): scope: global needs a `redis` section saying where the fleet's Redis is, such as redis: { url: \"redis://127.0.0.1:6379/0\" }"
        ),
        (
            "policies:\n  api: { algorithm: fixed_window, limit: 10, period: 1m, scope: fleet }\n",
            "policies.api.scope (line 2): must be local or global, got \"fleet\""
        ),
        (
            "policies:\n  api: { algorithm: fixed_window, limit: 10, period: 1m, sync: strict }\n",
            "policies.api.sync (line 2): applies only to a global policy; add scope: global or remove it"
        ),
        (
            "redis: { url: \"redis://h\" }\npolicies:\n  api: { algorithm: fixed_window, limit: 10, period: 1m, scope: global, sync: exact }\n",
            "policies.api.sync (line 3): must be leased or strict, got \"exact\""
        ),
        (
            "redis: { url: \"redis://h\" }\npolicies:\n  api: { algorithm: fixed_window, limit: 10, period: 1m, scope: global, on_store_failure: panic }\n",
            "policies.api.on_store_failure (line 3): must be local, allow or deny, got \"panic\""
        ),
        (
            "redis: { timeout: 50ms }\npolicies:\n  api: { algorithm: fixed_window, limit: 10, period: 1m }\n",
            "redis.url (line 1): missing; the redis section needs one of url, cluster or sentinel, such as url: \"redis://127.0.0.1:6379/0\""
        ),
        (
            "redis: { url: \"http://127.0.0.1:6379\" }\npolicies:\n  api: { algorithm: fixed_window, limit: 10, period: 1m }\n",
            "redis.url (line 1): must start with redis:// (TLS, rediss://, is not supported by Debian's hiredis 0.14); got \"http://127.0.0.1:6379\""
        ),
        (
            "redis: { url: \"redis://127.0.0.1:99999\" }\npolicies:\n  api: { algorithm: fixed_window, limit: 10, period: 1m }\n",
            "redis.url (line 1): the port must be a number from 1 to 65535, got '99999'; got \"redis://127.0.0.1:99999\""
        ),
        (
            "redis: { url: \"redis://127.0.0.1/x\" }\npolicies:\n  api: { algorithm: fixed_window, limit: 10, period: 1m }\n",
            "redis.url (line 1): the database after / must be a number from 0, got 'x'; got \"redis://127.0.0.1/x\""
        ),
        (
            "redis: { url: \"redis://h\", timeout: 30s }\npolicies:\n  api: { algorithm: fixed_window, limit: 10, period: 1m }\n",
            "redis.timeout (line 1): must be from 1ms to 10s, got 30s"
        ),
        (
            "redis: { url: \"redis://h\", timeout: soon }\npolicies:\n  api: { algorithm: fixed_window, limit: 10, period: 1m }\n",
            "redis.timeout (line 1): must be a duration from 1ms to 10s, such as 50ms; got \"soon\""
        ),
        (
            "redis: { url: \"redis://h\", key_prefix: \"{tag}:\" }\npolicies:\n  api: { algorithm: fixed_window, limit: 10, period: 1m }\n",
            "redis.key_prefix (line 1): must be at most 64 bytes without { or } (Sluice adds the hash tag), got '{tag}:'"
        ),
        (
            "redis: { url: \"redis://h\", max_leases: 0 }\npolicies:\n  api: { algorithm: fixed_window, limit: 10, period: 1m }\n",
            "redis.max_leases (line 1): must be a positive integer, got 0"
        ),
        (
            "redis: { url: \"redis://h\", pool: 4 }\npolicies:\n  api: { algorithm: fixed_window, limit: 10, period: 1m }\n",
            "redis.pool (line 1): unknown field; expected one of url, cluster, sentinel, username, password, password_file, timeout, key_prefix, max_leases"
        ),
    ]

    @Test func aForwardAuthRuleMayHoldSeveralGlobalPolicies() throws {
        let yaml = """
            redis: { url: "redis://h" }
            policies:
              a: { algorithm: fixed_window, limit: 10, period: 1m, scope: global }
              b: { algorithm: fixed_window, limit: 10, period: 1m, scope: global }
            forward_auth:
              rules:
                - { path_prefix: /, limits: [{ policy: a, by: ip }, { policy: b, by: api_key }] }
            """
        #expect(parseError(yaml) == nil)
    }

    @Test("cluster and sentinel sections; username and password for the data nodes; a password from a file")
    func deployments() throws {
        let directory = try temporaryDirectory("redis-secret")
        try "s3cret\n".write(to: directory.appendingPathComponent("redis.pass"), atomically: true, encoding: .utf8)
        try """
            redis:
              cluster: ["10.0.0.1:6379", "[::1]:7000"]
              username: sluice
              password_file: redis.pass
            policies:
              api: { algorithm: fixed_window, limit: 10, period: 1m, scope: global }
            """.write(to: directory.appendingPathComponent("sluice.yaml"), atomically: true, encoding: .utf8)
        let cluster = try #require(try SluiceConfiguration.load(path: directory.appendingPathComponent("sluice.yaml").path).redis)
        typealias Node = SluiceConfiguration.Redis.Node
        #expect(cluster.deployment == .cluster(seeds: [Node(host: "10.0.0.1", port: 6379), Node(host: "::1", port: 7000)]))
        #expect(cluster.username == "sluice" && cluster.password == "s3cret")
        #expect(cluster.endpoint == "cluster 10.0.0.1:6379,[::1]:7000")
        #expect(!"\(cluster)".contains("s3cret"), "a redis section never shows its password: \(cluster)")
        let sentinel = try #require(
            try SluiceConfiguration.parse(
                yaml: """
                    redis: { sentinel: { master: mymaster, nodes: ["10.0.0.9:26379"], sentinel_password: sp }, password: dp }
                    policies:
                      api: { algorithm: fixed_window, limit: 10, period: 1m, scope: global }
                    """
            ).redis
        )
        #expect(sentinel.deployment == .sentinel(master: "mymaster", sentinels: [Node(host: "10.0.0.9", port: 26379)], password: "sp"))
        #expect(sentinel.password == "dp")
        #expect(sentinel.endpoint == "sentinel mymaster@10.0.0.9:26379")
    }

    @Test(arguments: errors)
    func rejected(yaml: String, description: String) {
        #expect(parseError(yaml)?.description == description)
    }
}
