import SluiceConfig
import SluiceCore
import Testing

struct EmbeddedDefaultTests {
    @Test func embeddedDefaultParses() throws {
        let configuration = try SluiceConfiguration.parse(yaml: SluiceConfiguration.embeddedDefaultYAML)
        #expect(configuration == SluiceConfiguration.embeddedDefault)
        #expect(configuration.listen.line == ListenAddress(host: "127.0.0.1", port: 7379))
        #expect(configuration.listen.http == ListenAddress(host: "127.0.0.1", port: 7380))
        #expect(configuration.store == SluiceConfiguration.Store(maxKeys: 1_000_000, shards: 64))
        #expect(configuration.limits == SluiceConfiguration.Limits())
        #expect(configuration.http == SluiceConfiguration.HTTP())
    }

    @Test func embeddedDefaultForwardAuth() throws {
        typealias ForwardAuth = SluiceConfiguration.ForwardAuth
        let forwardAuth = SluiceConfiguration.embeddedDefault.forwardAuth
        let expected = ForwardAuth(
            denyStatus: 429, trustedProxies: ForwardAuth.defaultTrustedProxies,
            rules: [
                ForwardAuth.Rule(
                    pathPrefix: "/login", methods: ["POST"],
                    limits: [ForwardAuth.Limit(policy: "login", by: ForwardAuth.KeySource(parts: [.ip]))]
                ),
                ForwardAuth.Rule(
                    pathPrefix: "/", limits: [ForwardAuth.Limit(policy: "api", by: ForwardAuth.KeySource(parts: [.apiKey]))]
                ),
            ]
        )
        #expect(forwardAuth == expected)
        // The commented-out http section shows the defaults: uncommenting it changes nothing.
        var inHTTP = false
        let uncommented = SluiceConfiguration.embeddedDefaultYAML.split(separator: "\n", omittingEmptySubsequences: false)
            .map { line in
                if line == "# http:" { inHTTP = true }
                if line.isEmpty { inHTTP = false }
                return inHTTP ? String(line.dropFirst(2)) : String(line)
            }
            .joined(separator: "\n")
        #expect(uncommented != SluiceConfiguration.embeddedDefaultYAML)
        #expect(try SluiceConfiguration.parse(yaml: uncommented) == SluiceConfiguration.embeddedDefault)
    }

    @Test func embeddedDefaultPolicies() throws {
        let policies = SluiceConfiguration.embeddedDefault.policies
        let expected = [
            try Policy(
                name: "api",
                rateLimit: RateLimit(algorithm: .tokenBucket, limit: 100, periodNanoseconds: 1_000_000_000, burst: 20)
            ),
            try Policy(
                name: "login", rateLimit: RateLimit(algorithm: .slidingWindow, limit: 5, periodNanoseconds: 60_000_000_000)
            ),
            try Policy(
                name: "daily",
                rateLimit: RateLimit(algorithm: .fixedWindow, limit: 10_000, periodNanoseconds: 86_400_000_000_000),
                mode: .shadow
            ),
        ]
        #expect(policies == expected)
        #expect(SluiceConfiguration.embeddedDefault.policySet.index(ofName: "login") == 1)
    }

    @Test func embeddedDefaultExplainsEveryField() {
        // It is the documented example: every field is named in a comment.
        let commentLines = SluiceConfiguration.embeddedDefaultYAML.split(separator: "\n").filter { $0.contains("#") }
        let fields = [
            "line", "http", "algorithm", "limit", "period", "burst", "mode", "max_keys", "shards", "max_key_bytes",
            "max_line_bytes", "max_arguments", "max_body_bytes", "max_checks", "max_batch", "forward_auth",
            "deny_status", "trusted_proxies", "rules", "path_prefix", "methods", "policy", "by", "redis", "admin", "api_keys", "sha256",
            "overrides",
        ]
        for field in fields {
            #expect(commentLines.contains { $0.contains(field) }, "no comment explains \(field)")
        }
    }
}
