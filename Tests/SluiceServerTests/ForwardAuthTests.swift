import Foundation
import Logging
import NIOCore
import NIOHTTP1
import SluiceConfig
import SluiceCore
import Synchronization
import SluiceTestSupport
import Testing

@testable import SluiceServer

/// A processor with forward-auth rules over ``HTTPUnitFixture``'s policies.
///
/// Rules, in order: `POST /login` → `login` (3 per minute) by ip; `/login` any other method → `win` by ip;
/// `/account` → `account` (2 per minute) by ip and `X-Account`; `/api` → `api` by API key;
/// `/mixed` → `small` by ip and `win` by API key. Nothing else matches.
struct HTTPUnitForwardAuth {
    typealias KeySource = SluiceConfiguration.ForwardAuth.KeySource

    let fixture: HTTPUnitFixture
    let logs = LogRecords()

    static let loopback = "127.0.0.1"

    static func configuration(trustedProxies: [SluiceConfiguration.IPNetwork] = SluiceConfiguration.ForwardAuth.defaultTrustedProxies)
        -> SluiceConfiguration.ForwardAuth
    {
        typealias Rule = SluiceConfiguration.ForwardAuth.Rule
        typealias Limit = SluiceConfiguration.ForwardAuth.Limit
        return SluiceConfiguration.ForwardAuth(
            trustedProxies: trustedProxies,
            rules: [
                Rule(pathPrefix: "/login", methods: ["post"], limits: [Limit(policy: "login", by: KeySource(parts: [.ip]))]),
                Rule(pathPrefix: "/login", limits: [Limit(policy: "win", by: KeySource(parts: [.ip]))]),
                Rule(pathPrefix: "/account", limits: [Limit(policy: "account", by: KeySource(parts: [.ip, .header("X-Account")]))]),
                Rule(pathPrefix: "/api", limits: [Limit(policy: "api", by: KeySource(parts: [.apiKey]))]),
                Rule(
                    pathPrefix: "/mixed",
                    limits: [Limit(policy: "small", by: KeySource(parts: [.ip])), Limit(policy: "win", by: KeySource(parts: [.apiKey]))]
                ),
            ]
        )
    }

    init(trustedProxies: [SluiceConfiguration.IPNetwork] = SluiceConfiguration.ForwardAuth.defaultTrustedProxies) throws {
        let configuration = Self.configuration(trustedProxies: trustedProxies)
        // The rules are valid as a configuration file would have them.
        _ = try SluiceConfiguration(policies: HTTPUnitFixture.policies().policies, forwardAuth: configuration)
        let records = logs
        let logger = records.logger(label: "sluice.tests.forward-auth")
        fixture = try HTTPUnitFixture(forwardAuth: configuration, logger: logger)
    }

    /// A gateway's forward-auth request for `method uri`, from socket peer `peer`.
    func check(
        _ method: String?, _ uri: String?, peer: String? = loopback, forwardedFor: String? = nil, headers: [(String, String)] = [],
        query: String = "", requestMethod: HTTPMethod = .GET
    ) throws -> HTTPAPIResponse {
        var fields = headers
        if let method { fields.append(("X-Forwarded-Method", method)) }
        if let uri { fields.append(("X-Forwarded-Uri", uri)) }
        if let forwardedFor { fields.append(("X-Forwarded-For", forwardedFor)) }
        let address = try peer.map { try SocketAddress(ipAddress: $0, port: 40_000) }
        return fixture.respond(requestMethod, "/v1/forward-auth" + query, headers: fields, peer: address)
    }

    /// `POST /login` from client `ip` (connecting directly, not through a proxy).
    func login(from ip: String) throws -> HTTPAPIResponse { try check("POST", "/login", peer: ip) }
}

struct ForwardAuthTests {

    static let rateLimitHeaders = ["X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit-Policy", "RateLimit"]

    @Test func fourthLoginInAMinuteIsDenied() throws {
        let auth = try HTTPUnitForwardAuth()
        for remaining in [2, 1, 0] {
            let allowed = try auth.login(from: "203.0.113.7")
            #expect(allowed.status == .ok)
            #expect(allowed.body == "")
            #expect(allowed.headers.map(\.name) == Self.rateLimitHeaders)
            #expect(allowed.header("X-RateLimit-Limit") == "3")
            #expect(HTTPUnitFixture.remaining(allowed) == remaining)
            #expect(allowed.header("RateLimit-Policy") == #""login";q=3;w=60"#)
        }
        let denied = try auth.login(from: "203.0.113.7")
        #expect(denied.status == .tooManyRequests)
        #expect(denied.contentType == "application/problem+json")
        #expect(denied.headers.map(\.name) == Self.rateLimitHeaders + ["Retry-After"])
        #expect(denied.header("Retry-After") == "60")
        #expect(denied.header("X-RateLimit-Reset") == String(HTTPUnitFixture.startSeconds + 60))
        #expect(denied.header("RateLimit") == #""login";r=0;t=60"#)
        let problem = try HTTPUnitFixture.json(denied)
        #expect(problem["type"] as? String == "about:blank")
        #expect(problem["title"] as? String == "Too Many Requests")
        #expect(problem["status"] as? Int == 429)
        #expect(problem["policy"] as? String == "login")
        #expect(problem["retry_after_ms"] as? Int == 60_000)
        #expect(problem["detail"] as? String == "rate limit 'login' exceeded; retry in 60 s")
        #expect(HTTPUnitFixture.wire(denied).hasPrefix("HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/problem+json\r\nCache-Control: no-store\r\n"))

        // Another client is not affected; the next minute starts afresh.
        #expect(try auth.login(from: "203.0.113.8").status == .ok)
        auth.fixture.clock.advance(by: .seconds(60))
        #expect(try auth.login(from: "203.0.113.7").status == .ok)
    }

    @Test func denyStatusOverride() throws {
        let auth = try HTTPUnitForwardAuth()
        for _ in 0..<3 { #expect(try auth.login(from: "203.0.113.7").status == .ok) }
        let denied = try auth.check("POST", "/login", peer: "203.0.113.7", query: "?deny_status=403")
        #expect(denied.status == .forbidden)
        #expect(denied.header("Retry-After") == "60")
        let problem = try HTTPUnitFixture.json(denied)
        #expect(problem["status"] as? Int == 403)
        #expect(problem["title"] as? String == "Forbidden")
        // The override applies to denials only.
        #expect(try auth.login(from: "203.0.113.9").status == .ok)
        #expect(try auth.check("POST", "/login", peer: "203.0.113.10", query: "?deny_status=401").status == .ok)
        #expect(try auth.check("POST", "/login", peer: "203.0.113.7", query: "?deny_status=401").status == .unauthorized)
    }

    @Test(arguments: ["200", "500", "399", "600", "abc", "", "4O3", "-403", "99999999999999999999"])
    func badDenyStatus(_ text: String) throws {
        let auth = try HTTPUnitForwardAuth()
        let response = try auth.check("POST", "/login", peer: "203.0.113.7", query: "?deny_status=" + text)
        #expect(response.status == .badRequest)
        #expect(HTTPUnitFixture.errorCode(response) == "invalid_deny_status")
        // Refused before any check: the client's budget is whole.
        #expect(HTTPUnitFixture.remaining(try auth.login(from: "203.0.113.7")) == 2)
    }

    @Test func rulesMatchByPathPrefixAndMethodFirstMatchWins() throws {
        let auth = try HTTPUnitForwardAuth()
        // POST /login/... → the login rule; any other method → the win rule (first match wins).
        #expect(try auth.check("POST", "/login?next=/home", peer: "203.0.113.1").header("RateLimit-Policy") == #""login";q=3;w=60"#)
        #expect(try auth.check("post", "/login/sso", peer: "203.0.113.1").header("RateLimit-Policy") == #""login";q=3;w=60"#)
        #expect(try auth.check("GET", "/login", peer: "203.0.113.1").header("RateLimit-Policy") == #""win";q=2;w=60"#)
        #expect(try auth.check("PUT", "/loginx", peer: "203.0.113.1").header("RateLimit-Policy") == #""win";q=2;w=60"#)
        // Without X-Forwarded-Method, the request's own method is the one matched.
        #expect(
            try auth.check(nil, "/login", peer: "203.0.113.1", requestMethod: .POST).header("RateLimit-Policy") == #""login";q=3;w=60"#
        )
        // The query is not part of the path.
        #expect(try auth.check("GET", "/other?x=/login", peer: "203.0.113.1").headers.isEmpty)

        // No rule matches: allowed, with no rate-limit headers and no body.
        for uri in ["/", "/other", "/Login", "/v1/api"] {
            let response = try auth.check("POST", uri, peer: "203.0.113.1")
            #expect(response.status == .ok)
            #expect(response.headers.isEmpty)
            #expect(response.body == "")
        }
        // Without X-Forwarded-Uri the path is "/", which no rule matches.
        #expect(try auth.check("POST", nil, peer: "203.0.113.1").headers.isEmpty)
        // The login bucket saw three requests and the win bucket two, so the next of each is denied.
        #expect(try auth.login(from: "203.0.113.1").status == .tooManyRequests)
        #expect(try auth.check("GET", "/login", peer: "203.0.113.1").status == .tooManyRequests)
    }

    @Test func limitWithAbsentSourceIsSkipped() throws {
        let auth = try HTTPUnitForwardAuth()
        // No API key: only `small` by ip applies.
        let noKey = try auth.check("GET", "/mixed", peer: "203.0.113.1")
        #expect(noKey.status == .ok)
        #expect(noKey.header("RateLimit-Policy") == #""small";q=3;w=1"#)
        #expect(HTTPUnitFixture.remaining(noKey) == 2)
        // A Basic credential is not an API key either.
        let basic = try auth.check("GET", "/mixed", peer: "203.0.113.1", headers: [("Authorization", "Basic dXNlcjpwYXNz")])
        #expect(basic.header("RateLimit-Policy") == #""small";q=3;w=1"#)
        // With a key both apply, and the headers describe the more restrictive.
        let withKey = try auth.check("GET", "/mixed", peer: "203.0.113.2", headers: [("X-API-Key", "k1")])
        #expect(withKey.header("RateLimit-Policy") == #""win";q=2;w=60"#)
        #expect(HTTPUnitFixture.remaining(withKey) == 1)

        // The API rule with no key at all: no check, allowed without headers.
        let api = try auth.check("GET", "/api/things", peer: "203.0.113.1")
        #expect(api.status == .ok)
        #expect(api.headers.isEmpty)
        // An account rule without the account header (or with an empty one) is skipped.
        #expect(try auth.check("POST", "/account", peer: "203.0.113.1").headers.isEmpty)
        #expect(try auth.check("POST", "/account", peer: "203.0.113.1", headers: [("X-Account", "")]).headers.isEmpty)
        // And an ip limit without a known peer (a Unix socket) is skipped.
        #expect(try auth.check("POST", "/login", peer: nil).headers.isEmpty)
    }

    @Test func mixedDenialIsAllOrNothing() throws {
        let auth = try HTTPUnitForwardAuth()
        let key = [("X-API-Key", "k1")]
        #expect(try auth.check("GET", "/mixed", peer: "203.0.113.1", headers: key).status == .ok)
        #expect(try auth.check("GET", "/mixed", peer: "203.0.113.1", headers: key).status == .ok)
        let denied = try auth.check("GET", "/mixed", peer: "203.0.113.1", headers: key)
        #expect(denied.status == .tooManyRequests)
        #expect(try HTTPUnitFixture.json(denied)["policy"] as? String == "win")
        // The ip bucket gave back its token: one left, not zero.
        #expect(HTTPUnitFixture.remaining(try auth.check("GET", "/mixed", peer: "203.0.113.1")) == 0)
        #expect(try auth.check("GET", "/mixed", peer: "203.0.113.1").status == .tooManyRequests)
    }

    @Test func apiKeyHeaderAndBearerShareOneBucket() throws {
        let auth = try HTTPUnitForwardAuth()
        let secret = "sk_live_0123456789abcdef"
        let viaHeader = try auth.check("GET", "/api/a", headers: [("X-API-Key", secret)])
        #expect(viaHeader.header("RateLimit-Policy") == #""api";q=100;w=1"#)
        #expect(HTTPUnitFixture.remaining(viaHeader) == 99)
        #expect(HTTPUnitFixture.remaining(try auth.check("GET", "/api/b", headers: [("Authorization", "Bearer " + secret)])) == 98)
        #expect(HTTPUnitFixture.remaining(try auth.check("GET", "/api/c", headers: [("Authorization", "bearer   \(secret) ")])) == 97)
        // X-API-Key wins over Authorization.
        #expect(HTTPUnitFixture.remaining(try auth.check("GET", "/api/d", headers: [("X-API-Key", secret), ("Authorization", "Bearer other")])) == 96)
        // The client's address plays no part.
        #expect(HTTPUnitFixture.remaining(try auth.check("GET", "/api/e", peer: "203.0.113.50", headers: [("X-API-Key", secret)])) == 95)
        // Other keys are other buckets.
        #expect(HTTPUnitFixture.remaining(try auth.check("GET", "/api", headers: [("X-API-Key", "other")])) == 99)
        #expect(HTTPUnitFixture.remaining(try auth.check("GET", "/api", headers: [("Authorization", "Bearer other")])) == 98)
        #expect(HTTPUnitFixture.remaining(try auth.check("GET", "/api", headers: [("X-API-Key", secret.uppercased())])) == 99)
    }

    @Test func rawApiKeyNeverAppearsInResponsesOrLogs() throws {
        let auth = try HTTPUnitForwardAuth()
        let secret = "sk_live_SECRET_abcdef0123456789"
        var responses: [HTTPAPIResponse] = []
        for _ in 0..<3 {
            responses.append(try auth.check("GET", "/mixed", peer: "203.0.113.1", headers: [("Authorization", "Bearer " + secret)]))
        }
        #expect(responses.map(\.status) == [.ok, .ok, .tooManyRequests])
        for response in responses {
            #expect(!HTTPUnitFixture.wire(response).contains(secret))
            #expect(!HTTPUnitFixture.wire(response).contains("SECRET"))
            #expect(!HTTPUnitFixture.wire(response).contains(ForwardAuthRules.apiKeyDigest(secret)))
        }
        // The denial is logged (at debug) with the key's prefix only.
        let lines = auth.logs.all
        #expect(lines.count == 1)
        #expect(lines.allSatisfy { !$0.contains(secret) && !$0.contains("SECRET") })
        #expect(lines.first?.contains("sluice.api_key_prefix=sk_live_SE…") == true)
        #expect(lines.first?.contains("sluice.policy=win") == true)
        #expect(lines.first?.contains("client.address=203.0.113.1") == true)
    }

    @Test func ipAndHeaderKeyByBoth() throws {
        let auth = try HTTPUnitForwardAuth()
        let alice = [("X-Account", "alice")]
        #expect(HTTPUnitFixture.remaining(try auth.check("POST", "/account", peer: "203.0.113.1", headers: alice)) == 1)
        #expect(HTTPUnitFixture.remaining(try auth.check("POST", "/account", peer: "203.0.113.1", headers: alice)) == 0)
        #expect(try auth.check("POST", "/account", peer: "203.0.113.1", headers: alice).status == .tooManyRequests)
        // Same address, other account; same account, other address: other buckets.
        #expect(HTTPUnitFixture.remaining(try auth.check("POST", "/account", peer: "203.0.113.1", headers: [("X-Account", "bob")])) == 1)
        #expect(HTTPUnitFixture.remaining(try auth.check("POST", "/account", peer: "203.0.113.2", headers: alice)) == 1)
        // Header names compare without case.
        #expect(try auth.check("POST", "/account", peer: "203.0.113.1", headers: [("x-account", "alice")]).status == .tooManyRequests)
    }

    @Test func forwardedForFromUntrustedPeerIsIgnored() throws {
        let auth = try HTTPUnitForwardAuth()
        let peer = "198.51.100.9"
        #expect(HTTPUnitFixture.remaining(try auth.check("POST", "/login", peer: peer, forwardedFor: "203.0.113.1")) == 2)
        #expect(HTTPUnitFixture.remaining(try auth.check("POST", "/login", peer: peer, forwardedFor: "203.0.113.2")) == 1)
        #expect(HTTPUnitFixture.remaining(try auth.check("POST", "/login", peer: peer, forwardedFor: "127.0.0.1")) == 0)
        #expect(try auth.check("POST", "/login", peer: peer).status == .tooManyRequests)
        // The spoofed addresses got no bucket of their own.
        #expect(HTTPUnitFixture.remaining(try auth.login(from: "203.0.113.1")) == 2)
    }

    @Test func forwardedForFromTrustedPeerNamesTheClient() throws {
        let auth = try HTTPUnitForwardAuth()
        // The default trusts loopback only: the right-most address is the client.
        #expect(HTTPUnitFixture.remaining(try auth.check("POST", "/login", peer: "127.0.0.1", forwardedFor: "203.0.113.5")) == 2)
        #expect(HTTPUnitFixture.remaining(try auth.check("POST", "/login", peer: "::1", forwardedFor: "198.51.100.1, 203.0.113.5")) == 1)
        #expect(HTTPUnitFixture.remaining(try auth.login(from: "203.0.113.5")) == 0)
        // The proxy itself did not get charged.
        #expect(HTTPUnitFixture.remaining(try auth.login(from: "127.0.0.1")) == 2)
        // Without X-Forwarded-For the trusted peer is the client.
        #expect(HTTPUnitFixture.remaining(try auth.check("POST", "/login", peer: "127.0.0.1")) == 1)
        // Garbage is not an address: the peer stands.
        #expect(HTTPUnitFixture.remaining(try auth.check("POST", "/login", peer: "127.0.0.1", forwardedFor: "unknown")) == 0)
    }

    @Test func rightMostUntrustedHopIsTheClient() throws {
        let proxies = try [#require(SluiceConfiguration.IPNetwork("127.0.0.1/32")), #require(SluiceConfiguration.IPNetwork("10.0.0.0/8"))]
        let auth = try HTTPUnitForwardAuth(trustedProxies: proxies)
        // The client spoofs the left-most entry; 10.x hops are our proxies.
        #expect(HTTPUnitFixture.remaining(try auth.check("POST", "/login", peer: "10.1.1.1", forwardedFor: "1.2.3.4, 203.0.113.5, 10.0.0.1")) == 2)
        #expect(HTTPUnitFixture.remaining(try auth.check("POST", "/login", peer: "127.0.0.1", forwardedFor: "9.9.9.9,203.0.113.5,10.0.0.2 , 10.0.0.3")) == 1)
        #expect(HTTPUnitFixture.remaining(try auth.login(from: "203.0.113.5")) == 0)
        #expect(HTTPUnitFixture.remaining(try auth.login(from: "1.2.3.4")) == 2)
        // All hops trusted: the left-most one is as far as we can see.
        #expect(HTTPUnitFixture.remaining(try auth.check("POST", "/login", peer: "127.0.0.1", forwardedFor: "10.0.0.7, 10.0.0.8")) == 2)
        #expect(HTTPUnitFixture.remaining(try auth.login(from: "10.0.0.7")) == 1)
        // An empty list trusts nobody.
        let nobody = try HTTPUnitForwardAuth(trustedProxies: [])
        #expect(HTTPUnitFixture.remaining(try nobody.check("POST", "/login", peer: "127.0.0.1", forwardedFor: "203.0.113.5")) == 2)
        #expect(HTTPUnitFixture.remaining(try nobody.login(from: "127.0.0.1")) == 1)
    }

    @Test func ipv4MappedAndIPv4FormsShareABucket() throws {
        let auth = try HTTPUnitForwardAuth()
        #expect(HTTPUnitFixture.remaining(try auth.login(from: "203.0.113.20")) == 2)
        #expect(HTTPUnitFixture.remaining(try auth.login(from: "::ffff:203.0.113.20")) == 1)
        #expect(HTTPUnitFixture.remaining(try auth.check("POST", "/login", peer: "127.0.0.1", forwardedFor: "::ffff:cb00:7114")) == 0)
        #expect(try auth.login(from: "203.0.113.20").status == .tooManyRequests)
        // A dual-stack socket sees the loopback proxy as ::ffff:127.0.0.1; it is still trusted.
        #expect(HTTPUnitFixture.remaining(try auth.check("POST", "/login", peer: "::ffff:127.0.0.1", forwardedFor: "203.0.113.21")) == 2)
        #expect(HTTPUnitFixture.remaining(try auth.check("POST", "/login", peer: "127.0.0.1", forwardedFor: "::ffff:203.0.113.21")) == 1)
        // A genuinely different IPv6 address is another client.
        #expect(HTTPUnitFixture.remaining(try auth.login(from: "2001:db8::cb00:7114")) == 2)
    }

    @Test func forwardAuthCountsInMetrics() throws {
        let auth = try HTTPUnitForwardAuth()
        for _ in 0..<4 { _ = try auth.login(from: "203.0.113.7") }
        _ = try auth.check("GET", "/other")
        let metrics = auth.fixture.get("/metrics").body
        #expect(HTTPUnitFixture.metric(#"sluice_decisions_total{outcome="allowed"}"#, in: metrics) == 3)
        #expect(HTTPUnitFixture.metric(#"sluice_decisions_total{outcome="denied"}"#, in: metrics) == 1)
    }

    @Test func noRulesAllowsEverything() throws {
        let fixture = try HTTPUnitFixture()
        let response = fixture.respond(.GET, "/v1/forward-auth", headers: [("X-Forwarded-Uri", "/login"), ("X-Forwarded-Method", "POST")])
        #expect(response.status == .ok)
        #expect(response.headers.isEmpty)
        #expect(response.body == "")
    }

    // MARK: Helpers

    @Test func apiKeyDigestIsSHA256Hex() {
        #expect(ForwardAuthRules.apiKeyDigest("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(ForwardAuthRules.apiKeyDigest("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(ForwardAuthRules.apiKeyDigest("é").count == 64)
    }

    @Test(arguments: [
        ("", ""), ("ab", "**"), ("abc", "a…"), ("12345678", "12…"), ("123456789", "123…"),
        ("sk_live_0123456789", "sk_liv…"), ("sk_live_ab12cd34ef56gh78ij90kl12", "sk_live_ab…"),
        ("sk_live_ab12cd34ef56gh78ij90kl12mn34op56", "sk_live_ab12…"),
    ])
    func apiKeyPrefix(key: String, prefix: String) {
        #expect(ForwardAuthRules.apiKeyPrefix(key) == prefix)
    }

    @Test(arguments: [
        (nil, "Bearer abc", "abc"), (nil, "bearer \tabc ", "abc"), (nil, "BEARER abc def", "abc def"), ("key", "Bearer abc", "key"),
        ("", "Bearer abc", "abc"), (nil, "Basic abc", nil), (nil, "Bearer", nil), (nil, "Bearer ", nil), (nil, "Bearer    ", nil),
        (nil, nil, nil), ("", nil, nil),
    ] as [(String?, String?, String?)])
    func apiKeyFromHeaders(xAPIKey: String?, authorization: String?, expected: String?) {
        #expect(ForwardAuthRules.apiKey(xAPIKey: xAPIKey, authorization: authorization) == expected)
    }
}

extension ForwardAuthTests {
    /// A proxy that appends its own X-Forwarded-For line (instead of extending the client's) must not let
    /// the client's forged first line choose the bucket: the right-most address across all lines counts.
    @Test func everyForwardedForLineIsRead() throws {
        let auth = try HTTPUnitForwardAuth()
        for attempt in 0..<3 {
            let response = try auth.check(
                "POST", "/login", peer: HTTPUnitForwardAuth.loopback, headers: [("X-Forwarded-For", "6.6.6.\(attempt)"), ("X-Forwarded-For", "203.0.113.9")]
            )
            #expect(response.status == .ok)
        }
        let fourth = try auth.check("POST", "/login", peer: HTTPUnitForwardAuth.loopback, headers: [("X-Forwarded-For", "6.6.6.99"), ("X-Forwarded-For", "203.0.113.9")])
        #expect(fourth.status == .tooManyRequests, "a forged first line escaped the per-IP limit")
    }

    /// Spellings of /login that an application treats as /login are matched by the /login rule.
    @Test(arguments: ["//login", "/%6Cogin", "/./login", "/static/../login", "/login/", "/%6c%6F%67%69%6E"])
    func pathSpellingsCannotSidestepARule(uri: String) throws {
        let auth = try HTTPUnitForwardAuth()
        for _ in 0..<3 { #expect(try auth.check("POST", uri, peer: "203.0.113.20").status == .ok) }
        #expect(try auth.check("POST", uri, peer: "203.0.113.20").status == .tooManyRequests, "\(uri) missed the /login rule")
    }

    @Test(arguments: [
        ("/login", "/login"), ("//a//b/", "/a/b/"), ("/a/./b/../c", "/a/c"), ("/../../x", "/x"), ("/%2Flogin", "/%2Flogin"),
        ("/%zz", "/%zz"), ("/%4", "/%4"), ("", "/"), ("/caf%C3%A9", "/caf%C3%A9"), ("/a%2Db", "/a-b"),
    ])
    func normalizedPaths(raw: String, normalized: String) {
        #expect(ForwardAuthRules.normalizedPath(raw[...]) == normalized)
    }
}
