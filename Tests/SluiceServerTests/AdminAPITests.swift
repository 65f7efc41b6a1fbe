import Foundation
import Logging
import NIOCore
import NIOHTTP1
import SluiceConfig
import SluiceCore
import SluiceTestSupport
import Synchronization
import Testing

@testable import SluiceServer

/// The admin API over a real configuration file in a temporary folder: keys, ETags, writes back to the file,
/// overrides and buckets, driven through the HTTP processor.
final class AdminFixture: Sendable {
    static let ops = AdminKeys.generate()
    static let deploy = AdminKeys.generate(test: true)

    static func file(admin: Bool = true, extra: String = "") -> String {
        """
        # The shop's Sluice. This comment, above the policies, stays.
        listen:
          http: "127.0.0.1:7380"   # and so does this one

        policies:
          api:   { algorithm: token_bucket, limit: 100, period: 1s }
          login: { algorithm: fixed_window, limit: 3, period: 1h }
        \(extra)
        # The gateway's rules (a comment that belongs to forward_auth).
        forward_auth:
          rules:
            - { path_prefix: /login, limits: [{ policy: login, by: ip }] }
        """ + (admin ? """

            admin:
              api_keys:
                - { name: ops, sha256: "\(ops.sha256)" }
                - { name: deploy, sha256: "\(deploy.sha256)" }

            """ : "\n")
    }

    let path: String
    let clock = ManualClock()
    let records = LogRecords()
    let state: ConfigurationState
    let context: ServerContext
    let processor: HTTPAPIProcessor

    init(_ text: String = AdminFixture.file(), global: (any GlobalLimiter)? = nil, routes: HTTPAPIProcessor.Routes = .all) throws {
        let directory = try temporaryDirectory("admin")
        path = directory.appendingPathComponent("sluice.yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let (configuration, read) = try SluiceConfiguration.loadDocument(path: path)
        let registry = PolicyRegistry(configuration.policySet, forwardAuth: ForwardAuthRules(configuration.forwardAuth, policies: configuration.policySet))
        state = ConfigurationState(path: path, configuration: configuration, text: read, registry: registry)
        let logger = records.logger()
        context = ServerContext(
            limiter: RateLimiter(store: BucketStore(maximumKeys: 10_000), global: global), registry: registry, clock: clock, logger: logger,
            admin: AdminAPI(state: state, logger: logger)
        )
        processor = HTTPAPIProcessor(context: context, routes: routes)
    }

    var text: String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    /// The response to one request from `client`, with `key` as a Bearer token (nil: none).
    func send(
        _ method: HTTPMethod, _ uri: String, key: String? = AdminFixture.ops.key, body: String? = nil, headers: [(String, String)] = [],
        client: String = "10.0.0.1"
    ) async throws -> HTTPAPIResponse {
        var fields = headers
        if let key { fields.append(("Authorization", "Bearer \(key)")) }
        let request = HTTPAPIRequest(
            method: method, uri: uri, headers: HTTPHeaders(fields), body: body.map { ByteBuffer(string: $0) },
            remoteAddress: try SocketAddress(ipAddress: client, port: 40_000)
        )
        return await processor.answer(request, now: clock.now())
    }
}

struct AdminAPITests {
    @Test func withoutKeysEveryAdminRouteIs404AndDecisionsNeedNoKey() async throws {
        let fixture = try AdminFixture(AdminFixture.file(admin: false))
        for (method, uri) in [(HTTPMethod.GET, "/v1/policies"), (.PUT, "/v1/policies"), (.GET, "/v1/buckets/api/k"), (.DELETE, "/v1/policies/api/overrides/k")] {
            let response = try await fixture.send(method, uri)
            #expect(response.status == .notFound, "\(method) \(uri)")
            #expect(response.body.contains("admin.api_keys"))
        }
        #expect(try await fixture.send(.GET, "/v1/check?policy=api&key=k", key: nil).status == .ok)
    }

    @Test func bothHeadersAndBothLiveKeysWorkAMissingOrWrongKeyIs401() async throws {
        let fixture = try AdminFixture()
        #expect(try await fixture.send(.GET, "/v1/policies").status == .ok)
        #expect(try await fixture.send(.GET, "/v1/policies", key: AdminFixture.deploy.key).status == .ok, "two keys live at once")
        #expect(try await fixture.send(.GET, "/v1/policies", key: nil, headers: [("X-API-Key", AdminFixture.ops.key)]).status == .ok)
        let missing = try await fixture.send(.GET, "/v1/policies", key: nil)
        #expect(missing.status == .unauthorized && missing.body.contains("missing_api_key"))
        #expect(missing.header("WWW-Authenticate")?.hasPrefix("Bearer") == true)
        let wrong = try await fixture.send(.GET, "/v1/policies", key: AdminFixture.ops.key + "x")
        #expect(wrong.status == .unauthorized && wrong.body.contains("invalid_api_key"))
        #expect(try await fixture.send(.GET, "/v1/policies", key: nil, headers: [("Authorization", "Basic \(AdminFixture.ops.key)")]).status == .unauthorized)
    }

    @Test("rotation: a key removed from the file and reloaded stops working; the other goes on")
    func rotation() async throws {
        let fixture = try AdminFixture()
        let withoutOps = AdminFixture.file().replacingOccurrences(of: "    - { name: ops, sha256: \"\(AdminFixture.ops.sha256)\" }\n", with: "")
        try withoutOps.write(toFile: fixture.path, atomically: true, encoding: .utf8)
        #expect(ConfigurationReloader(state: fixture.state, logger: fixture.records.logger()).reload() == .applied(policies: ["api", "login"]))
        #expect(try await fixture.send(.GET, "/v1/policies").status == .unauthorized)
        #expect(try await fixture.send(.GET, "/v1/policies", key: AdminFixture.deploy.key).status == .ok)
    }

    @Test func tenFailuresInAMinuteFromOneAddressAre429ThenEvenForTheRightKey() async throws {
        let fixture = try AdminFixture()
        for attempt in 0..<10 {
            let response = try await fixture.send(.GET, "/v1/policies", key: attempt % 2 == 0 ? nil : "sk_live_guess\(attempt)")
            #expect(response.status == .unauthorized, "attempt \(attempt)")
        }
        let limited = try await fixture.send(.GET, "/v1/policies")
        #expect(limited.status == .tooManyRequests && limited.body.contains("too_many_failures"))
        #expect(Int(limited.header("Retry-After") ?? "") ?? 0 >= 1)
        #expect(try await fixture.send(.GET, "/v1/policies", client: "10.0.0.2").status == .ok, "another address is not affected")
        fixture.clock.advance(nanoseconds: 60_000_000_000)
        #expect(try await fixture.send(.GET, "/v1/policies").status == .ok, "a minute later")
    }

    @Test func theLogNamesTheKeyOrItsPrefixNeverTheKey() async throws {
        let fixture = try AdminFixture()
        let stranger = AdminKeys.generate().key
        _ = try await fixture.send(.GET, "/v1/policies", key: stranger)
        _ = try await fixture.send(.PUT, "/v1/policies/api/overrides/vip", body: #"{"limit": 5}"#)
        let log = fixture.records.all.joined(separator: "\n")
        #expect(log.contains("admin authentication failed") && log.contains("admin.key_prefix=\(stranger.prefix(12))…"), "\(log)")
        #expect(log.contains("admin.key=ops"), "\(log)")
        for secret in [stranger, AdminFixture.ops.key, String(stranger.prefix(13))] {
            #expect(!log.contains(secret), "the log holds a key: \(log)")
        }
    }

    @Test func getHasAStrongETagThatChangesOnEveryWriteAndAnswers304() async throws {
        let fixture = try AdminFixture()
        let first = try await fixture.send(.GET, "/v1/policies")
        #expect(first.body == #"{"policies":{"api":{"algorithm":"token_bucket","limit":100,"period":"1s"},"login":{"algorithm":"fixed_window","limit":3,"period":"1h"}}}"#)
        let etag = try #require(first.header("ETag"))
        #expect(etag.hasPrefix("\"") && etag.hasSuffix("\""))
        let unchanged = try await fixture.send(.GET, "/v1/policies", headers: [("If-None-Match", "\"x\", \(etag)")])
        #expect(unchanged.status == .notModified && unchanged.body.isEmpty && unchanged.header("ETag") == etag)
        #expect(try await fixture.send(.GET, "/v1/policies", headers: [("If-None-Match", "W/\(etag)")]).status == .notModified)
        // The same policies PUT back: still a new revision.
        let put = try await fixture.send(.PUT, "/v1/policies", body: first.body)
        #expect(put.status == .ok, "\(put.body)")
        let next = try #require(put.header("ETag"))
        #expect(next != etag)
        #expect(try await fixture.send(.GET, "/v1/policies", headers: [("If-None-Match", etag)]).status == .ok)
    }

    @Test func aValidPutIsInForceAndInTheFileWithEveryOtherLineKept() async throws {
        let fixture = try AdminFixture()
        for _ in 0..<2 { #expect(try await fixture.send(.GET, "/v1/check?policy=login&key=u", key: nil).status == .ok) }
        let body = #"{"policies": {"api": {"algorithm": "token_bucket", "limit": 50, "period": "1s", "burst": 80}, "login": {"algorithm": "fixed_window", "limit": 3, "period": "1h"}, "partners": {"algorithm": "sliding_window", "limit": 1000, "period": "1m", "overrides": {"partner:acme": {"limit": 5000}}}}}"#
        let response = try await fixture.send(.PUT, "/v1/policies", body: body)
        #expect(response.status == .ok, "\(response.body)")
        #expect(response.body.contains(#""partners":{"algorithm":"sliding_window","limit":1000,"period":"1m","overrides":{"partner:acme":{"limit":5000}}}"#))
        // In force: the new limit answers, and the unchanged policy kept its bucket (2 of 3 taken).
        let api = try await fixture.send(.GET, "/v1/check?policy=api&key=k", key: nil)
        #expect(api.header("X-RateLimit-Limit") == "80")
        #expect(try await fixture.send(.GET, "/v1/check?policy=login&key=u", key: nil).header("X-RateLimit-Remaining") == "0")
        // In the file: read back the same, every line outside the policies kept.
        let reread = try SluiceConfiguration.load(path: fixture.path)
        #expect(reread.policies == fixture.context.registry.policies.policies)
        for kept in ["# The shop's Sluice", "# and so does this one", "# The gateway's rules", "forward_auth:", "name: deploy"] {
            #expect(fixture.text.contains(kept), "\(kept) is kept:\n\(fixture.text)")
        }
    }

    @Test func anInvalidPutNamesEveryBadFieldAndChangesNothing() async throws {
        let fixture = try AdminFixture()
        let before = fixture.text
        let etag = try await fixture.send(.GET, "/v1/policies").header("ETag")
        let body = #"{"policies": {"api": {"algorithm": "token_bucket", "limit": 0, "period": "1s"}, "login": {"algorithm": "fixed", "limit": 3, "period": "1h"}, "x": {"algorithm": "fixed_window", "limit": 1, "period": "soon"}}}"#
        let response = try await fixture.send(.PUT, "/v1/policies", body: body)
        #expect(response.status == .badRequest)
        for path in ["policies.api.limit", "policies.login.algorithm", "policies.x.period"] {
            #expect(response.body.contains("\"path\":\"\(path)\""), "\(path): \(response.body)")
        }
        // Valid alone, but the forward-auth rule names login, which this set drops.
        let dropping = try await fixture.send(.PUT, "/v1/policies", body: #"{"policies": {"api": {"algorithm": "token_bucket", "limit": 1, "period": "1s"}}}"#)
        #expect(dropping.status == .badRequest && dropping.body.contains("forward_auth") && dropping.body.contains("login"), "\(dropping.body)")
        for (badBody, code) in [("", "missing_body"), ("{", "invalid_policies"), (#"{"policy": {}}"#, "invalid_policies"), ("[1, 2]", "invalid_policies")] {
            let refused = try await fixture.send(.PUT, "/v1/policies", body: badBody.isEmpty ? nil : badBody)
            #expect(refused.status == .badRequest && refused.body.contains(code), "\(badBody): \(refused.body)")
        }
        #expect(fixture.text == before)
        #expect(try await fixture.send(.GET, "/v1/policies").header("ETag") == etag)
    }

    @Test func aStaleIfMatchIs412AndAFileChangedOnDiskIs409() async throws {
        let fixture = try AdminFixture()
        let etag = try #require(try await fixture.send(.GET, "/v1/policies").header("ETag"))
        let body = #"{"policies": {"api": {"algorithm": "token_bucket", "limit": 7, "period": "1s"}, "login": {"algorithm": "fixed_window", "limit": 3, "period": "1h"}}}"#
        #expect(try await fixture.send(.PUT, "/v1/policies", body: body, headers: [("If-Match", etag)]).status == .ok)
        let stale = try await fixture.send(.PUT, "/v1/policies", body: body, headers: [("If-Match", etag)])
        #expect(stale.status == .preconditionFailed && stale.body.contains("stale_etag"))
        #expect(try await fixture.send(.PUT, "/v1/policies", body: body, headers: [("If-Match", "W/\(etag)")]).status == .preconditionFailed)
        #expect(try await fixture.send(.PUT, "/v1/policies", body: body, headers: [("If-Match", "*")]).status == .ok)
        // Someone edits the file by hand: the admin API does not write over it.
        let edited = fixture.text + "\n# edited by hand\n"
        try edited.write(toFile: fixture.path, atomically: true, encoding: .utf8)
        let conflict = try await fixture.send(.PUT, "/v1/policies/api/overrides/k", body: #"{"limit": 1}"#)
        #expect(conflict.status == .conflict && conflict.body.contains("file_changed"), "\(conflict.body)")
        #expect(fixture.text == edited)
        #expect(fixture.context.registry.policies.policies[0].overrides.isEmpty)
        // After a reload the file is known again, and writes go through.
        _ = ConfigurationReloader(state: fixture.state, logger: fixture.records.logger()).reload()
        #expect(try await fixture.send(.PUT, "/v1/policies/api/overrides/k", body: #"{"limit": 1}"#).status == .ok)
        #expect(fixture.text.contains("# edited by hand"))
    }

    @Test func overridesArePutAndDeletedByPercentDecodedKeyAndAnswerEveryCheck() async throws {
        let fixture = try AdminFixture()
        let put = try await fixture.send(.PUT, "/v1/policies/api/overrides/partner%3A%2A", body: #"{"limit": 500}"#)
        #expect(put.status == .ok && put.body.contains(#""overrides":{"partner:*":{"limit":500}}"#), "\(put.body)")
        #expect(try await fixture.send(.PUT, "/v1/policies/api/overrides/user%3Avip", body: #"{"limit": 1000, "burst": 200}"#).status == .ok)
        #expect(try await fixture.send(.GET, "/v1/check?policy=api&key=partner:acme", key: nil).header("X-RateLimit-Limit") == "500")
        #expect(try await fixture.send(.GET, "/v1/check?policy=api&key=user:vip", key: nil).header("X-RateLimit-Limit") == "200")
        #expect(try await fixture.send(.GET, "/v1/check?policy=api&key=user:1", key: nil).header("X-RateLimit-Limit") == "100")
        #expect(try SluiceConfiguration.load(path: fixture.path).policies[0].overrides.map(\.pattern) == ["partner:*", "user:vip"])
        // Replaced in place, then deleted.
        #expect(try await fixture.send(.PUT, "/v1/policies/api/overrides/partner%3A*", body: #"{"limit": 600}"#).status == .ok)
        #expect(try await fixture.send(.GET, "/v1/check?policy=api&key=partner:acme", key: nil).header("X-RateLimit-Limit") == "600")
        #expect(try await fixture.send(.DELETE, "/v1/policies/api/overrides/partner%3A%2A").status == .ok)
        #expect(try await fixture.send(.GET, "/v1/check?policy=api&key=partner:acme", key: nil).header("X-RateLimit-Limit") == "100")
        #expect(try SluiceConfiguration.load(path: fixture.path).policies[0].overrides.map(\.pattern) == ["user:vip"])
        // Mistakes.
        let cases: [(HTTPMethod, String, String?, HTTPResponseStatus, String)] = [
            (.DELETE, "/v1/policies/api/overrides/nobody", nil, .notFound, "unknown_override"),
            (.PUT, "/v1/policies/nope/overrides/k", #"{"limit": 1}"#, .notFound, "unknown_policy"),
            (.PUT, "/v1/policies/api/overrides/k", #"{"limit": -1}"#, .badRequest, "positive integer"),
            (.PUT, "/v1/policies/api/overrides/k", #"{"limit": 1, "extra": 2}"#, .badRequest, "unknown field"),
            (.PUT, "/v1/policies/login/overrides/k", #"{"limit": 1, "burst": 2}"#, .badRequest, "burst applies only to token_bucket"),
            (.PUT, "/v1/policies/api/overrides/a%2Ab", #"{"limit": 1}"#, .badRequest, "may only end"),
            (.PUT, "/v1/policies/api/overrides/k", nil, .badRequest, "missing_body"),
            (.PUT, "/v1/policies/api/overrides/%zz", #"{"limit": 1}"#, .badRequest, "invalid_path"),
            (.POST, "/v1/policies/api/overrides/k", #"{"limit": 1}"#, .methodNotAllowed, "PUT, DELETE"),
            (.POST, "/v1/policies", "{}", .methodNotAllowed, "GET, PUT"),
            (.GET, "/v1/policies/api", nil, .notFound, "no admin route"),
        ]
        for (method, uri, body, status, text) in cases {
            let response = try await fixture.send(method, uri, body: body)
            #expect(response.status == status && response.body.contains(text), "\(method) \(uri): \(response.status) \(response.body)")
        }
    }

    @Test func aBucketIsReadWithoutTakingAndResetToFull() async throws {
        let fixture = try AdminFixture()
        for _ in 0..<2 { _ = try await fixture.send(.GET, "/v1/check?policy=login&key=u%2F1", key: nil) }
        let read = try await fixture.send(.GET, "/v1/buckets/login/u%2F1")
        #expect(read.body.contains(#""policy":"login","key":"u/1","limit":3,"remaining":1,"#), "\(read.body)")
        #expect(try await fixture.send(.GET, "/v1/buckets/login/u%2F1").body == read.body, "reading takes nothing")
        let reset = try await fixture.send(.DELETE, "/v1/buckets/login/u%2F1")
        #expect(reset.status == .ok && reset.body.contains(#""reset":true"#))
        #expect(try await fixture.send(.GET, "/v1/buckets/login/u%2F1").body.contains(#""remaining":3"#))
        #expect(try await fixture.send(.GET, "/v1/buckets/nope/k").status == .notFound)
        #expect(try await fixture.send(.GET, "/v1/buckets/login/" + String(repeating: "k", count: 513)).body.contains("key_too_long"))
        _ = try await fixture.send(.PUT, "/v1/policies/api/overrides/vip", body: #"{"limit": 7}"#)
        let vip = try await fixture.send(.GET, "/v1/buckets/api/vip").body
        #expect(vip.contains(#""limit":7,"remaining":7,"reset_after_ms":0,"override":"vip"}"#), "\(vip)")
    }

    @Test func aGlobalBucketIsResetThroughTheGlobalLimiter() async throws {
        let global = ScriptedGlobalLimiter()
        let text = AdminFixture.file().replacingOccurrences(of: "login: { algorithm: fixed_window, limit: 3, period: 1h }", with: "login: { algorithm: fixed_window, limit: 3, period: 1h, scope: global }")
            + "redis: { url: \"redis://127.0.0.1:6379/0\" }\n"
        let fixture = try AdminFixture(text, global: global)
        #expect(try await fixture.send(.DELETE, "/v1/buckets/login/u").status == .ok)
        #expect(global.resets.withLock { $0 } == 1)
    }

    @Test func theAdminListenerServesTheAdminAPIAloneAndTheOtherNone() async throws {
        let api = try AdminFixture(routes: .api)
        #expect(try await api.send(.GET, "/v1/policies").status == .notFound)
        #expect(try await api.send(.GET, "/v1/check?policy=api&key=k", key: nil).status == .ok)
        let admin = try AdminFixture(routes: .admin)
        #expect(try await admin.send(.GET, "/v1/policies").status == .ok)
        #expect(try await admin.send(.GET, "/v1/check?policy=api&key=k", key: nil).status == .notFound)
        #expect(try await admin.send(.GET, "/healthz", key: nil).status == .ok)
    }

    @Test func aKeygenKeyHashesToItsLineAndLooksRight() throws {
        for test in [false, true] {
            let (key, sha256) = AdminKeys.generate(test: test)
            #expect(key.hasPrefix(test ? "sk_test_" : "sk_live_"))
            #expect(key.count == 8 + 40 && key.dropFirst(8).allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) })
            #expect(AdminKeys.hex(AdminKeys.digest(key)) == sha256 && sha256.count == 64)
        }
        #expect(AdminKeys.generate().key != AdminKeys.generate().key)
    }
}
