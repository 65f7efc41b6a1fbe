import Foundation
import Logging
import NIOCore
import NIOHTTP1
import SluiceConfig
import SluiceCore
import Testing

@testable import SluiceServer

/// An HTTP API processor over a fresh store and a manual clock (2026-01-01T00:00:00Z, on a minute boundary).
///
/// Policies: `api` (token bucket, 100 per 1s), `small` (token bucket, 3 per 1s), `win` (fixed window, 2 per 1m),
/// `shadowed` (fixed window, 1 per 1m, shadow mode), `login` (fixed window, 3 per 1m), `account` (fixed window, 2 per 1m).
struct HTTPUnitFixture {
    /// The manual clock's start, in Unix epoch seconds.
    static let startSeconds: Int64 = 1_767_225_600

    let clock = ManualClock()
    let context: ServerContext
    let processor: HTTPAPIProcessor

    static func policies() throws -> PolicySet {
        try PolicySet([
            Policy(name: "api", rateLimit: RateLimit(algorithm: .tokenBucket, limit: 100, periodNanoseconds: 1_000_000_000)),
            Policy(name: "small", rateLimit: RateLimit(algorithm: .tokenBucket, limit: 3, periodNanoseconds: 1_000_000_000)),
            Policy(name: "win", rateLimit: RateLimit(algorithm: .fixedWindow, limit: 2, periodNanoseconds: 60_000_000_000)),
            Policy(
                name: "shadowed", rateLimit: RateLimit(algorithm: .fixedWindow, limit: 1, periodNanoseconds: 60_000_000_000),
                mode: .shadow
            ),
            Policy(name: "login", rateLimit: RateLimit(algorithm: .fixedWindow, limit: 3, periodNanoseconds: 60_000_000_000)),
            Policy(name: "account", rateLimit: RateLimit(algorithm: .fixedWindow, limit: 2, periodNanoseconds: 60_000_000_000)),
        ], counters: PolicyCounters())
    }

    init(
        limits: SluiceConfiguration.HTTP = SluiceConfiguration.HTTP(), maximumKeyBytes: Int = 512,
        forwardAuth: SluiceConfiguration.ForwardAuth? = nil, logger: Logger = Logger(label: "sluice.tests.http")
    ) throws {
        let policies = try Self.policies()
        let rules = forwardAuth.map { ForwardAuthRules($0, policies: policies) } ?? .none
        context = ServerContext(
            limiter: RateLimiter(store: BucketStore(maximumKeys: 10_000)), registry: PolicyRegistry(policies, forwardAuth: rules),
            clock: clock, limits: SluiceConfiguration.Limits(maxKeyBytes: maximumKeyBytes), logger: logger
        )
        processor = HTTPAPIProcessor(context: context, limits: limits)
    }

    /// The response to one request, decided at the clock's time.
    func respond(
        _ method: HTTPMethod, _ uri: String, body: String? = nil, headers: [(String, String)] = [], peer: SocketAddress? = nil
    ) -> HTTPAPIResponse {
        let request = HTTPAPIRequest(
            method: method, uri: uri, headers: HTTPHeaders(headers), body: body.map { ByteBuffer(string: $0) }, remoteAddress: peer
        )
        let response = processor.respond(to: request, now: clock.now())
        #expect(response.status.code < 500, "never a 5xx: \(method) \(uri) got \(response.status.code)")
        return response
    }

    /// `POST uri` with a JSON body.
    func post(_ uri: String, _ body: String) -> HTTPAPIResponse { respond(.POST, uri, body: body) }

    /// `GET uri`.
    func get(_ uri: String) -> HTTPAPIResponse { respond(.GET, uri) }

    /// The body parsed as a JSON object.
    static func json(_ response: HTTPAPIResponse) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(response.body.utf8))
        return try #require(object as? [String: Any], "not a JSON object: \(response.body)")
    }

    /// The `error.code` of an error body, or nil.
    static func errorCode(_ response: HTTPAPIResponse) -> String? {
        guard let object = try? json(response), let error = object["error"] as? [String: Any] else { return nil }
        return error["code"] as? String
    }

    /// `X-RateLimit-Remaining` as a number, or nil when absent.
    static func remaining(_ response: HTTPAPIResponse) -> Int? { response.header("X-RateLimit-Remaining").flatMap { Int($0) } }

    /// The response as the server writes it.
    static func wire(_ response: HTTPAPIResponse, keepAlive: Bool = true) -> String {
        var buffer = ByteBuffer()
        response.write(to: &buffer, keepAlive: keepAlive)
        return String(buffer: buffer)
    }

    /// The value of one sample line (`name{labels} value`) of a Prometheus text body; gauges print `3.0`.
    static func metric(_ sample: String, in text: String) -> Int? {
        text.split(separator: "\n").first { $0.hasPrefix(sample + " ") }.flatMap { Double($0.dropFirst(sample.count + 1)) }.map { Int($0) }
    }
}

/// One request a client gets wrong, and the status and error code it must get.
struct HTTPUnitBadRequest: Sendable, CustomTestStringConvertible {
    let method: HTTPMethod
    let uri: String
    let body: String?
    let status: Int
    let code: String

    /// `POST /v1/check` with `body`.
    init(_ body: String?, _ status: Int, _ code: String) {
        self.init(.POST, "/v1/check", body, status, code)
    }

    init(_ method: HTTPMethod, _ uri: String, _ body: String?, _ status: Int, _ code: String) {
        self.method = method
        self.uri = uri
        self.body = body
        self.status = status
        self.code = code
    }

    var testDescription: String { "\(method) \(uri) \(body ?? "<no body>") → \(status) \(code)" }
}

struct HTTPAPIProcessorTests {

    // MARK: Single checks

    @Test func getCheckDecodesQueryAndSharesBucketWithPost() throws {
        let fixture = try HTTPUnitFixture()
        // %3A is ':' and '+' is a space: the key is "user:42 x".
        let first = fixture.get("/v1/check?policy=api&key=user%3A42+x&cost=1")
        #expect(first.status == .ok)
        #expect(first.header("X-RateLimit-Remaining") == "99")
        let body = try HTTPUnitFixture.json(first)
        #expect(body["allowed"] as? Bool == true)
        #expect(body["limit"] as? Int == 100)
        #expect(body["remaining"] as? Int == 99)
        #expect(body["reset_after_ms"] as? Int == 10)
        #expect(body["retry_after_ms"] as? Int == 0)
        #expect(body["policy"] as? String == "api")
        #expect(body["shadowed"] == nil)
        #expect(body["reason"] == nil)

        // The same key spelled plainly in JSON is the same bucket.
        let second = fixture.post("/v1/check", #"{"policy":"api","key":"user:42 x","cost":2}"#)
        #expect(second.status == .ok)
        #expect(try HTTPUnitFixture.json(second)["remaining"] as? Int == 97)
        #expect(try HTTPUnitFixture.json(second)["reset_after_ms"] as? Int == 30)
        // A key that differs only by the '+' is another bucket.
        #expect(HTTPUnitFixture.remaining(fixture.get("/v1/check?policy=api&key=user%3A42%2Bx")) == 99)
        // cost defaults to 1.
        #expect(HTTPUnitFixture.remaining(fixture.get("/v1/check?policy=api&key=user:42%20x")) == 96)
    }

    /// Field names are matched as bytes on the fast path; escaped names are decoded first, as values are, the first
    /// of a repeated name wins, and an unknown one (decoded) is named in the error.
    @Test func queryFieldNamesAreDecodedAndTheFirstWins() throws {
        let fixture = try HTTPUnitFixture()
        let escaped = fixture.get("/v1/check?po%6Cicy=api&k%65y=user%3A7&cost=3")
        #expect(escaped.status == .ok)
        #expect(HTTPUnitFixture.remaining(escaped) == 97)
        #expect(HTTPUnitFixture.remaining(fixture.get("/v1/check?policy=api&key=user:7&key=other&policy=nope")) == 96)
        let unknown = fixture.get("/v1/check?policy=api&key=k&co+st=1")
        #expect(unknown.status == .badRequest)
        #expect(unknown.body.contains("unknown field 'co st'"))
        let malformedName = fixture.get("/v1/check?policy=api&key=k&%zz=1")
        #expect(malformedName.status == .badRequest)
        #expect(malformedName.body.contains("invalid_query"))
        // An empty parameter and one without '=' are tolerated as before: `&&` is skipped, `key` alone is empty.
        #expect(HTTPUnitFixture.remaining(fixture.get("/v1/check?&&policy=api&&key=user:7&")) == 95)
        #expect(fixture.get("/v1/check?policy=api&key").body.contains("missing_key"))
    }

    @Test func allowedHeadersExactly() throws {
        let fixture = try HTTPUnitFixture()
        let response = fixture.get("/v1/check?policy=api&key=k")
        #expect(response.status == .ok)
        #expect(response.contentType == "application/json")
        #expect(response.headers.map(\.name) == ["X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit-Policy", "RateLimit"])
        #expect(response.header("X-RateLimit-Limit") == "100")
        #expect(response.header("X-RateLimit-Remaining") == "99")
        // Full again 10 ms from now: rounded up to the next epoch second.
        #expect(response.header("X-RateLimit-Reset") == String(HTTPUnitFixture.startSeconds + 1))
        #expect(response.header("RateLimit-Policy") == #""api";q=100;w=1"#)
        #expect(response.header("RateLimit") == #""api";r=99;t=1"#)
        #expect(response.header("Retry-After") == nil)

        let wire = HTTPUnitFixture.wire(response)
        #expect(
            wire.hasPrefix(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nContent-Length: \(response.body.utf8.count)\r\n"
            )
        )
        #expect(wire.contains("\r\nX-RateLimit-Limit: 100\r\nX-RateLimit-Remaining: 99\r\nX-RateLimit-Reset: \(HTTPUnitFixture.startSeconds + 1)\r\n"))
        #expect(wire.contains("\r\nRateLimit-Policy: \"api\";q=100;w=1\r\nRateLimit: \"api\";r=99;t=1\r\n\r\n"))
        #expect(wire.hasSuffix("\r\n\r\n" + response.body))
        #expect(!wire.contains("Connection:"))
    }

    @Test func deniedHeadersExactly() throws {
        let fixture = try HTTPUnitFixture()
        for remaining in [2, 1, 0] {
            #expect(HTTPUnitFixture.remaining(fixture.get("/v1/check?policy=small&key=k")) == remaining)
        }
        let denied = fixture.get("/v1/check?policy=small&key=k")
        #expect(denied.status == .tooManyRequests)
        #expect(
            denied.headers.map(\.name)
                == ["X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit-Policy", "RateLimit", "Retry-After"]
        )
        #expect(denied.header("X-RateLimit-Limit") == "3")
        #expect(denied.header("X-RateLimit-Remaining") == "0")
        #expect(denied.header("X-RateLimit-Reset") == String(HTTPUnitFixture.startSeconds + 1))
        #expect(denied.header("RateLimit-Policy") == #""small";q=3;w=1"#)
        #expect(denied.header("RateLimit") == #""small";r=0;t=1"#)
        // 333.33 ms: whole seconds, rounded up.
        #expect(denied.header("Retry-After") == "1")
        let body = try HTTPUnitFixture.json(denied)
        #expect(body["allowed"] as? Bool == false)
        #expect(body["retry_after_ms"] as? Int == 334)
        #expect(body["reset_after_ms"] as? Int == 1000)
        #expect(HTTPUnitFixture.wire(denied).hasPrefix("HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"))
        #expect(HTTPUnitFixture.wire(denied).contains("\r\nRetry-After: 1\r\n\r\n{"))

        // 0.33 ms before the next token: still at least 1 second.
        fixture.clock.advance(by: .milliseconds(333))
        let almost = fixture.get("/v1/check?policy=small&key=k")
        #expect(almost.status == .tooManyRequests)
        #expect(almost.header("Retry-After") == "1")
        #expect(try HTTPUnitFixture.json(almost)["retry_after_ms"] as? Int == 1)
        fixture.clock.advance(by: .milliseconds(1))
        #expect(fixture.get("/v1/check?policy=small&key=k").status == .ok)
    }

    @Test func resetAndRetryAfterRoundUpFromOffTheSecond() throws {
        let fixture = try HTTPUnitFixture()
        // Half a second into the minute.
        fixture.clock.advance(by: .milliseconds(500))
        let token = fixture.get("/v1/check?policy=api&key=k")
        #expect(token.header("X-RateLimit-Reset") == String(HTTPUnitFixture.startSeconds + 1))
        #expect(token.header("RateLimit") == #""api";r=99;t=1"#)

        // The window ends on the minute: exactly start + 60 s, 59.5 s away.
        let first = fixture.get("/v1/check?policy=win&key=k")
        #expect(first.header("X-RateLimit-Reset") == String(HTTPUnitFixture.startSeconds + 60))
        #expect(first.header("RateLimit") == #""win";r=1;t=60"#)
        #expect(first.header("RateLimit-Policy") == #""win";q=2;w=60"#)
        #expect(fixture.get("/v1/check?policy=win&key=k").status == .ok)
        let denied = fixture.get("/v1/check?policy=win&key=k")
        #expect(denied.status == .tooManyRequests)
        #expect(denied.header("Retry-After") == "60")
        #expect(denied.header("X-RateLimit-Reset") == String(HTTPUnitFixture.startSeconds + 60))
        #expect(try HTTPUnitFixture.json(denied)["retry_after_ms"] as? Int == 59_500)

        fixture.clock.advance(by: .milliseconds(59_499))
        let late = fixture.get("/v1/check?policy=win&key=k")
        #expect(late.header("Retry-After") == "1")
        #expect(late.header("RateLimit") == #""win";r=0;t=1"#)
        #expect(late.header("X-RateLimit-Reset") == String(HTTPUnitFixture.startSeconds + 60))
        fixture.clock.advance(by: .milliseconds(1))
        #expect(fixture.get("/v1/check?policy=win&key=k").status == .ok)
    }

    @Test func costExceedingCapacityHasNoRetryAfter() throws {
        let fixture = try HTTPUnitFixture()
        let response = fixture.get("/v1/check?policy=small&key=k&cost=4")
        #expect(response.status == .tooManyRequests)
        #expect(response.header("Retry-After") == nil)
        #expect(response.header("X-RateLimit-Remaining") == "3")
        #expect(response.header("RateLimit") == #""small";r=3;t=0"#)
        #expect(response.header("X-RateLimit-Reset") == String(HTTPUnitFixture.startSeconds))
        let body = try HTTPUnitFixture.json(response)
        #expect(body["allowed"] as? Bool == false)
        #expect(body["reason"] as? String == "cost_exceeds_capacity")
        #expect(body["retry_after_ms"] as? Int == -1)
        // Nothing was consumed.
        #expect(HTTPUnitFixture.remaining(fixture.get("/v1/check?policy=small&key=k&cost=3")) == 0)

        // The largest cost a JSON integer can carry is just another denial, not a crash.
        let huge = fixture.post("/v1/check", #"{"policy":"win","key":"k","cost":9223372036854775807}"#)
        #expect(huge.status == .tooManyRequests)
        #expect(try HTTPUnitFixture.json(huge)["reason"] as? String == "cost_exceeds_capacity")
    }

    @Test func postSingleCheck() throws {
        let fixture = try HTTPUnitFixture()
        let response = fixture.post("/v1/check", #"{"policy":"win","key":"user:1","cost":2}"#)
        #expect(response.status == .ok)
        let body = try HTTPUnitFixture.json(response)
        #expect(body["allowed"] as? Bool == true)
        #expect(body["limit"] as? Int == 2)
        #expect(body["remaining"] as? Int == 0)
        #expect(body["reset_after_ms"] as? Int == 60_000)
        #expect(body["policy"] as? String == "win")
        #expect(body["checks"] == nil)
        #expect(fixture.post("/v1/check", #"{"policy":"win","key":"user:1"}"#).status == .tooManyRequests)
        #expect(fixture.post("/v1/check", #"{"key":"user:2","policy":"win"}"#).status == .ok)
    }

    @Test func shadowPolicyLetsDenialsThrough() throws {
        let fixture = try HTTPUnitFixture()
        let first = fixture.post("/v1/check", #"{"policy":"shadowed","key":"k"}"#)
        #expect(first.status == .ok)
        #expect(try HTTPUnitFixture.json(first)["shadowed"] == nil)
        let second = fixture.post("/v1/check", #"{"policy":"shadowed","key":"k"}"#)
        #expect(second.status == .ok)
        #expect(second.header("Retry-After") == nil)
        #expect(second.header("X-RateLimit-Remaining") == "0")
        let body = try HTTPUnitFixture.json(second)
        #expect(body["allowed"] as? Bool == true)
        #expect(body["shadowed"] as? Bool == true)
        #expect(body["retry_after_ms"] as? Int == 0)
    }

    // MARK: Inline limits

    @Test func inlineLimitPeriodAsTextAndAsMilliseconds() throws {
        let fixture = try HTTPUnitFixture()
        let text = fixture.post("/v1/check", #"{"key":"k","limit":5,"period":"10s"}"#)
        #expect(text.status == .ok)
        #expect(text.header("RateLimit-Policy") == #""inline";q=5;w=10"#)
        #expect(text.header("X-RateLimit-Limit") == "5")
        let body = try HTTPUnitFixture.json(text)
        #expect(body["policy"] as? String == "inline")
        #expect(body["remaining"] as? Int == 4)
        #expect(body["reset_after_ms"] as? Int == 2000)
        // 10000 ms is the same limit, so the same bucket.
        let milliseconds = fixture.post("/v1/check", #"{"key":"k","limit":5,"period":10000}"#)
        #expect(milliseconds.status == .ok)
        #expect(try HTTPUnitFixture.json(milliseconds)["remaining"] as? Int == 3)
        // Another limit on the same key is another bucket.
        #expect(try HTTPUnitFixture.json(fixture.post("/v1/check", #"{"key":"k","limit":6,"period":"10s"}"#))["remaining"] as? Int == 5)
        // A policy's bucket for the same key is separate too.
        #expect(HTTPUnitFixture.remaining(fixture.get("/v1/check?policy=small&key=k")) == 2)
    }

    @Test func inlineLimitInQuery() throws {
        let fixture = try HTTPUnitFixture()
        let response = fixture.get("/v1/check?key=k&limit=2&period=1m&algorithm=fixed_window")
        #expect(response.status == .ok)
        #expect(response.header("RateLimit-Policy") == #""inline";q=2;w=60"#)
        #expect(HTTPUnitFixture.remaining(response) == 1)
        #expect(fixture.get("/v1/check?key=k&limit=2&period=1m&algorithm=fixed_window&cost=1").status == .ok)
        #expect(fixture.get("/v1/check?key=k&limit=2&period=1m&algorithm=fixed_window").status == .tooManyRequests)

        // Query strings carry integers as text: period=10000 is 10000 ms, the same limit as 10s.
        #expect(HTTPUnitFixture.remaining(fixture.get("/v1/check?key=t&limit=5&period=10s")) == 4)
        let milliseconds = fixture.get("/v1/check?key=t&limit=5&period=10000")
        #expect(milliseconds.status == .ok, "\(milliseconds.body)")
        #expect(HTTPUnitFixture.remaining(milliseconds) == 3)
        #expect(milliseconds.header("RateLimit-Policy") == #""inline";q=5;w=10"#)
    }

    @Test func inlineAlgorithmAndBurst() throws {
        let fixture = try HTTPUnitFixture()
        let window = #"{"key":"k","limit":2,"period":"1m","algorithm":"fixed_window"}"#
        let first = fixture.post("/v1/check", window)
        #expect(first.status == .ok)
        #expect(try HTTPUnitFixture.json(first)["reset_after_ms"] as? Int == 60_000)
        #expect(fixture.post("/v1/check", window).status == .ok)
        let denied = fixture.post("/v1/check", window)
        #expect(denied.status == .tooManyRequests)
        #expect(denied.header("Retry-After") == "60")

        // Token bucket: 1 per second, 5 at once.
        let burst = fixture.post("/v1/check", #"{"key":"b","limit":1,"period":"1s","burst":5,"algorithm":"token_bucket"}"#)
        #expect(burst.status == .ok)
        #expect(burst.header("X-RateLimit-Limit") == "5")
        #expect(burst.header("RateLimit-Policy") == #""inline";q=1;w=1"#)
        let body = try HTTPUnitFixture.json(burst)
        #expect(body["limit"] as? Int == 5)
        #expect(body["remaining"] as? Int == 4)
        #expect(body["reset_after_ms"] as? Int == 1000)

        let sliding = fixture.post("/v1/check", #"{"key":"s","limit":16777215,"period":"1s","algorithm":"sliding_window","cost":16777215}"#)
        #expect(sliding.status == .ok)
        #expect(HTTPUnitFixture.remaining(sliding) == 0)
        // A sub-second period still states a whole-second window.
        #expect(fixture.post("/v1/check", #"{"key":"s","limit":1,"period":250}"#).header("RateLimit-Policy") == #""inline";q=1;w=1"#)
    }

    // MARK: Several checks, all or nothing

    @Test func multiCheckHeadersDescribeMostRestrictive() throws {
        let fixture = try HTTPUnitFixture()
        let response = fixture.post("/v1/check", #"{"checks":[{"policy":"api","key":"m"},{"policy":"win","key":"m"}]}"#)
        #expect(response.status == .ok)
        #expect(response.header("X-RateLimit-Limit") == "2")
        #expect(response.header("X-RateLimit-Remaining") == "1")
        #expect(response.header("RateLimit-Policy") == #""win";q=2;w=60"#)
        #expect(response.header("X-RateLimit-Reset") == String(HTTPUnitFixture.startSeconds + 60))
        #expect(response.header("Retry-After") == nil)
        let body = try HTTPUnitFixture.json(response)
        #expect(body["allowed"] as? Bool == true)
        #expect(body["policy"] as? String == "win")
        #expect(body["remaining"] as? Int == 1)
        let checks = try #require(body["checks"] as? [[String: Any]])
        #expect(checks.count == 2)
        #expect(checks[0]["policy"] as? String == "api")
        #expect(checks[0]["remaining"] as? Int == 99)
        #expect(checks[0]["allowed"] as? Bool == true)
        #expect(checks[1]["policy"] as? String == "win")
        #expect(checks[1]["remaining"] as? Int == 1)
        // One overall "allowed", plus one per check.
        #expect(response.body.components(separatedBy: "\"allowed\"").count - 1 == 3)
    }

    @Test func multiCheckIsAllOrNothing() throws {
        let fixture = try HTTPUnitFixture()
        #expect(fixture.get("/v1/check?policy=win&key=full").status == .ok)
        #expect(fixture.get("/v1/check?policy=win&key=full").status == .ok)

        let denied = fixture.post("/v1/check", #"{"checks":[{"policy":"small","key":"a"},{"policy":"win","key":"full"}]}"#)
        #expect(denied.status == .tooManyRequests)
        #expect(denied.header("RateLimit-Policy") == #""win";q=2;w=60"#)
        #expect(denied.header("X-RateLimit-Remaining") == "0")
        #expect(denied.header("Retry-After") == "60")
        #expect(denied.body.hasPrefix(#"{"allowed":false,"#))
        let body = try HTTPUnitFixture.json(denied)
        #expect(body["allowed"] as? Bool == false)
        #expect(body["policy"] as? String == "win")
        #expect(body["retry_after_ms"] as? Int == 60_000)
        let checks = try #require(body["checks"] as? [[String: Any]])
        #expect(checks.count == 2)
        // The first check shows what it would have answered; it consumed nothing.
        #expect(checks[0]["allowed"] as? Bool == true)
        #expect(checks[0]["remaining"] as? Int == 2)
        #expect(checks[1]["allowed"] as? Bool == false)
        #expect(denied.body.components(separatedBy: "\"allowed\"").count - 1 == 3)

        // The follow-up finds the first bucket untouched: its first consumption leaves 2.
        #expect(HTTPUnitFixture.remaining(fixture.get("/v1/check?policy=small&key=a")) == 2)
    }

    @Test func multiCheckDeniedByLaterCheckAfterSeveralConsumptions() throws {
        let fixture = try HTTPUnitFixture()
        #expect(fixture.post("/v1/check", #"{"policy":"win","key":"w","cost":2}"#).status == .ok)
        let checks = #"{"checks":[{"policy":"api","key":"x","cost":10},{"policy":"small","key":"x","cost":2},{"policy":"win","key":"w"}]}"#
        #expect(fixture.post("/v1/check", checks).status == .tooManyRequests)
        #expect(fixture.post("/v1/check", checks).status == .tooManyRequests)
        #expect(HTTPUnitFixture.remaining(fixture.get("/v1/check?policy=api&key=x")) == 99)
        #expect(HTTPUnitFixture.remaining(fixture.get("/v1/check?policy=small&key=x")) == 2)
    }

    @Test func multiCheckWithOneCheckStillListsIt() throws {
        let fixture = try HTTPUnitFixture()
        let response = fixture.post("/v1/check", #"{"checks":[{"policy":"win","key":"one"}]}"#)
        #expect(response.status == .ok)
        let body = try HTTPUnitFixture.json(response)
        #expect(body["allowed"] as? Bool == true)
        #expect(body["policy"] as? String == "win")
        let checks = try #require(body["checks"] as? [[String: Any]], "a list of checks is answered with a list: \(response.body)")
        #expect(checks.count == 1)
        #expect(checks.first?["remaining"] as? Int == 1)
        #expect(HTTPUnitFixture.remaining(response) == 1)
    }

    @Test func multiCheckWithShadowDenial() throws {
        let fixture = try HTTPUnitFixture()
        #expect(fixture.post("/v1/check", #"{"policy":"shadowed","key":"s"}"#).status == .ok)
        let response = fixture.post("/v1/check", #"{"checks":[{"policy":"api","key":"s"},{"policy":"shadowed","key":"s"}]}"#)
        #expect(response.status == .ok)
        let body = try HTTPUnitFixture.json(response)
        #expect(body["allowed"] as? Bool == true)
        let checks = try #require(body["checks"] as? [[String: Any]])
        #expect(checks[1]["shadowed"] as? Bool == true)
        // The allowed check did consume.
        #expect(HTTPUnitFixture.remaining(fixture.get("/v1/check?policy=api&key=s")) == 98)
    }

    @Test func tooManyChecks() throws {
        let fixture = try HTTPUnitFixture(limits: SluiceConfiguration.HTTP(maxChecks: 2, maxBatch: 3))
        let two = #"{"checks":[{"policy":"api","key":"a"},{"policy":"api","key":"b"}]}"#
        let three = #"{"checks":[{"policy":"api","key":"a"},{"policy":"api","key":"b"},{"policy":"api","key":"c"}]}"#
        let four = #"{"checks":[{"policy":"api","key":"a"},{"policy":"api","key":"b"},{"policy":"api","key":"c"},{"policy":"api","key":"d"}]}"#

        let over = fixture.post("/v1/check", three)
        #expect(over.status == .payloadTooLarge)
        #expect(HTTPUnitFixture.errorCode(over) == "too_many_checks")
        #expect(over.headers.isEmpty)
        #expect(fixture.post("/v1/check", two).status == .ok)

        let batchOver = fixture.post("/v1/check/batch", four)
        #expect(batchOver.status == .payloadTooLarge)
        #expect(HTTPUnitFixture.errorCode(batchOver) == "too_many_checks")
        #expect(fixture.post("/v1/check/batch", three).status == .ok)
        // The refused requests consumed nothing: a and b were taken twice, c and d once.
        #expect(HTTPUnitFixture.remaining(fixture.get("/v1/check?policy=api&key=a")) == 97)
        #expect(HTTPUnitFixture.remaining(fixture.get("/v1/check?policy=api&key=c")) == 98)
        #expect(HTTPUnitFixture.remaining(fixture.get("/v1/check?policy=api&key=d")) == 99)
    }

    // MARK: Batch

    @Test func batchAllAllowed() throws {
        let fixture = try HTTPUnitFixture()
        let response = fixture.post("/v1/check/batch", #"{"checks":[{"policy":"api","key":"b1"},{"policy":"win","key":"b2","cost":2}]}"#)
        #expect(response.status == .ok)
        #expect(response.headers.isEmpty)
        let results = try #require(try HTTPUnitFixture.json(response)["results"] as? [[String: Any]])
        #expect(results.count == 2)
        #expect(results.map { $0["status"] as? Int } == [200, 200])
        #expect(results[0]["remaining"] as? Int == 99)
        #expect(results[1]["remaining"] as? Int == 0)
        #expect(results[1]["policy"] as? String == "win")
    }

    @Test func batchMixedIs207() throws {
        let fixture = try HTTPUnitFixture()
        #expect(fixture.post("/v1/check", #"{"policy":"win","key":"full","cost":2}"#).status == .ok)
        let response = fixture.post(
            "/v1/check/batch",
            #"{"checks":[{"policy":"api","key":"b"},{"policy":"nope","key":"b"},{"key":"b"},"#
                + #"{"policy":"win","key":"full"},{"policy":"api","key":"b","cost":0}]}"#
        )
        #expect(response.status == .multiStatus)
        let results = try #require(try HTTPUnitFixture.json(response)["results"] as? [[String: Any]])
        #expect(results.map { $0["status"] as? Int } == [200, 422, 400, 429, 400])
        #expect(results[0]["allowed"] as? Bool == true)
        let unknown = try #require(results[1]["error"] as? [String: Any])
        #expect(unknown["code"] as? String == "unknown_policy")
        #expect((unknown["message"] as? String)?.contains("nope") == true)
        #expect((results[2]["error"] as? [String: Any])?["code"] as? String == "invalid_check")
        #expect(results[3]["allowed"] as? Bool == false)
        #expect(results[3]["retry_after_ms"] as? Int == 60_000)
        #expect((results[4]["error"] as? [String: Any])?["code"] as? String == "invalid_cost")
        // Items are independent: the allowed one consumed despite the others.
        #expect(HTTPUnitFixture.remaining(fixture.get("/v1/check?policy=api&key=b")) == 98)
    }

    @Test func batchAllDeniedIs429() throws {
        let fixture = try HTTPUnitFixture()
        #expect(fixture.post("/v1/check", #"{"policy":"win","key":"full","cost":2}"#).status == .ok)
        let response = fixture.post("/v1/check/batch", #"{"checks":[{"policy":"win","key":"full"},{"policy":"small","key":"x","cost":9}]}"#)
        #expect(response.status == .tooManyRequests)
        let results = try #require(try HTTPUnitFixture.json(response)["results"] as? [[String: Any]])
        #expect(results.map { $0["status"] as? Int } == [429, 429])
        #expect(results[1]["reason"] as? String == "cost_exceeds_capacity")
    }

    @Test func batchOfOnlyErrorsIsNeverA5xx() throws {
        let fixture = try HTTPUnitFixture()
        let response = fixture.post("/v1/check/batch", #"{"checks":[{"policy":"nope","key":"b"}]}"#)
        #expect(response.status.code == 422 || response.status == .multiStatus)
        let results = try #require(try HTTPUnitFixture.json(response)["results"] as? [[String: Any]])
        #expect(results.map { $0["status"] as? Int } == [422])
    }

    // MARK: Client mistakes

    static let badRequests: [HTTPUnitBadRequest] = [
        HTTPUnitBadRequest(#"{"policy":"api","key":"k""#, 400, "invalid_json"),
        HTTPUnitBadRequest("not json", 400, "invalid_json"),
        HTTPUnitBadRequest(#"{"policy":"api","key":"k","cost":1e999}"#, 400, "invalid_json"),
        HTTPUnitBadRequest(String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000), 400, "invalid_json"),
        HTTPUnitBadRequest(#"[{"policy":"api","key":"k"}]"#, 400, "invalid_json"),
        HTTPUnitBadRequest(#""text""#, 400, "invalid_json"),
        HTTPUnitBadRequest("null", 400, "invalid_json"),
        HTTPUnitBadRequest("42", 400, "invalid_json"),
        HTTPUnitBadRequest(nil, 400, "missing_body"),
        HTTPUnitBadRequest("", 400, "missing_body"),
        HTTPUnitBadRequest(#"{"policy":"api","key":"k","colour":"red"}"#, 400, "unknown_field"),
        HTTPUnitBadRequest(#"{"policy":"api"}"#, 400, "missing_key"),
        HTTPUnitBadRequest(#"{"policy":"api","key":""}"#, 400, "missing_key"),
        HTTPUnitBadRequest(#"{"policy":"api","key":42}"#, 400, "invalid_field"),
        HTTPUnitBadRequest(#"{"policy":"api","key":null}"#, 400, "invalid_field"),
        HTTPUnitBadRequest(#"{"policy":7,"key":"k"}"#, 400, "invalid_field"),
        HTTPUnitBadRequest(#"{"policy":"api","key":"k","cost":0}"#, 400, "invalid_cost"),
        HTTPUnitBadRequest(#"{"policy":"api","key":"k","cost":-1}"#, 400, "invalid_cost"),
        HTTPUnitBadRequest(#"{"policy":"api","key":"k","cost":1.5}"#, 400, "invalid_cost"),
        HTTPUnitBadRequest(#"{"policy":"api","key":"k","cost":"3"}"#, 400, "invalid_cost"),
        HTTPUnitBadRequest(#"{"policy":"api","key":"k","cost":true}"#, 400, "invalid_cost"),
        HTTPUnitBadRequest(#"{"policy":"api","key":"k","cost":null}"#, 400, "invalid_cost"),
        HTTPUnitBadRequest(#"{"policy":"api","key":"k","cost":99999999999999999999}"#, 400, "invalid_cost"),
        HTTPUnitBadRequest(#"{"policy":"nope","key":"k"}"#, 422, "unknown_policy"),
        HTTPUnitBadRequest(#"{"policy":"api","key":"k","limit":5}"#, 400, "invalid_check"),
        HTTPUnitBadRequest(#"{"policy":"api","key":"k","period":"1s"}"#, 400, "invalid_check"),
        HTTPUnitBadRequest(#"{"policy":"api","key":"k","algorithm":"fixed_window"}"#, 400, "invalid_check"),
        HTTPUnitBadRequest(#"{"key":"k"}"#, 400, "invalid_check"),
        HTTPUnitBadRequest(#"{"key":"k","period":"1s"}"#, 400, "invalid_check"),
        HTTPUnitBadRequest(#"{"key":"k","limit":5}"#, 400, "invalid_period"),
        HTTPUnitBadRequest(#"{"key":"k","limit":5,"period":"10"}"#, 400, "invalid_period"),
        HTTPUnitBadRequest(#"{"key":"k","limit":5,"period":"10x"}"#, 400, "invalid_period"),
        HTTPUnitBadRequest(#"{"key":"k","limit":5,"period":"1.5s"}"#, 400, "invalid_period"),
        HTTPUnitBadRequest(#"{"key":"k","limit":5,"period":"0s"}"#, 400, "invalid_period"),
        HTTPUnitBadRequest(#"{"key":"k","limit":5,"period":"-1s"}"#, 400, "invalid_period"),
        HTTPUnitBadRequest(#"{"key":"k","limit":5,"period":"367d"}"#, 400, "invalid_period"),
        HTTPUnitBadRequest(#"{"key":"k","limit":5,"period":0}"#, 400, "invalid_period"),
        HTTPUnitBadRequest(#"{"key":"k","limit":5,"period":-1000}"#, 400, "invalid_period"),
        HTTPUnitBadRequest(#"{"key":"k","limit":5,"period":1.5}"#, 400, "invalid_period"),
        HTTPUnitBadRequest(#"{"key":"k","limit":5,"period":31708800000}"#, 400, "invalid_period"),
        HTTPUnitBadRequest(#"{"key":"k","limit":5,"period":true}"#, 400, "invalid_period"),
        HTTPUnitBadRequest(#"{"key":"k","limit":5,"period":"1s","algorithm":"leaky_bucket"}"#, 400, "invalid_algorithm"),
        HTTPUnitBadRequest(#"{"key":"k","limit":5,"period":"1s","algorithm":3}"#, 400, "invalid_field"),
        HTTPUnitBadRequest(#"{"key":"k","limit":0,"period":"1s"}"#, 400, "invalid_limit"),
        HTTPUnitBadRequest(#"{"key":"k","limit":-3,"period":"1s"}"#, 400, "invalid_limit"),
        HTTPUnitBadRequest(#"{"key":"k","limit":"5","period":"1s"}"#, 400, "invalid_limit"),
        HTTPUnitBadRequest(#"{"key":"k","limit":4294967296,"period":"1s"}"#, 400, "invalid_limit"),
        HTTPUnitBadRequest(#"{"key":"k","limit":16777216,"period":"1s","algorithm":"sliding_window"}"#, 400, "invalid_limit"),
        HTTPUnitBadRequest(#"{"key":"k","limit":5,"period":"1s","burst":0}"#, 400, "invalid_burst"),
        HTTPUnitBadRequest(#"{"key":"k","limit":5,"period":"1s","burst":6,"algorithm":"fixed_window"}"#, 400, "invalid_burst"),
        HTTPUnitBadRequest(#"{"checks":{"policy":"api","key":"k"}}"#, 400, "invalid_checks"),
        HTTPUnitBadRequest(#"{"checks":[]}"#, 400, "invalid_checks"),
        HTTPUnitBadRequest(#"{"checks":null}"#, 400, "invalid_checks"),
        HTTPUnitBadRequest(#"{"checks":[{"policy":"api","key":"k"},"api"]}"#, 400, "invalid_checks"),
        HTTPUnitBadRequest(#"{"checks":[[{"policy":"api","key":"k"}]]}"#, 400, "invalid_checks"),
        HTTPUnitBadRequest(#"{"checks":[{"policy":"api","key":"k"}],"policy":"api"}"#, 400, "invalid_check"),
        HTTPUnitBadRequest(#"{"checks":[{"policy":"api","key":"k"},{"policy":"api","key":""}]}"#, 400, "missing_key"),
        HTTPUnitBadRequest(#"{"checks":[{"policy":"api","key":"k"},{"policy":"gone","key":"k"}]}"#, 422, "unknown_policy"),
        HTTPUnitBadRequest(.POST, "/v1/check/batch", nil, 400, "missing_body"),
        HTTPUnitBadRequest(.POST, "/v1/check/batch", "{", 400, "invalid_json"),
        HTTPUnitBadRequest(.POST, "/v1/check/batch", #"{"checks":[]}"#, 400, "invalid_checks"),
        HTTPUnitBadRequest(.POST, "/v1/check/batch", #"{"checks":[1]}"#, 400, "invalid_checks"),
        HTTPUnitBadRequest(.GET, "/v1/check?policy=api&key=k&cost=abc", nil, 400, "invalid_cost"),
        HTTPUnitBadRequest(.GET, "/v1/check?policy=api&key=k&cost=0", nil, 400, "invalid_cost"),
        HTTPUnitBadRequest(.GET, "/v1/check?policy=api&key=k&cost=-2", nil, 400, "invalid_cost"),
        HTTPUnitBadRequest(.GET, "/v1/check?policy=api&key=k&cost=%2B2", nil, 400, "invalid_cost"),
        HTTPUnitBadRequest(.GET, "/v1/check?policy=api&key=k&cost=1.5", nil, 400, "invalid_cost"),
        HTTPUnitBadRequest(.GET, "/v1/check?policy=api&key=k&cost=", nil, 400, "invalid_cost"),
        HTTPUnitBadRequest(.GET, "/v1/check?policy=api", nil, 400, "missing_key"),
        HTTPUnitBadRequest(.GET, "/v1/check?policy=api&key=", nil, 400, "missing_key"),
        HTTPUnitBadRequest(.GET, "/v1/check?policy=api&key=%zz", nil, 400, "invalid_query"),
        HTTPUnitBadRequest(.GET, "/v1/check?policy=api&key=%FF", nil, 400, "invalid_query"),
        HTTPUnitBadRequest(.GET, "/v1/check", nil, 400, "missing_key"),
        HTTPUnitBadRequest(.GET, "/v1/check?policy=nope&key=k", nil, 422, "unknown_policy"),
        HTTPUnitBadRequest(.GET, "/v1/check?policy=api&key=k&x=1", nil, 400, "unknown_field"),
        HTTPUnitBadRequest(.GET, "/v1/check?key=k&limit=5&period=soon", nil, 400, "invalid_period"),
        HTTPUnitBadRequest(.GET, "/v1/check?key=k&limit=five&period=1s", nil, 400, "invalid_limit"),
        HTTPUnitBadRequest(.GET, "/nope", nil, 404, "not_found"),
        HTTPUnitBadRequest(.POST, "/v1/checks", "{}", 404, "not_found"),
        HTTPUnitBadRequest(.GET, "/", nil, 404, "not_found"),
        HTTPUnitBadRequest(.PUT, "/v1/check", #"{"policy":"api","key":"k"}"#, 405, "method_not_allowed"),
        HTTPUnitBadRequest(.DELETE, "/v1/check", nil, 405, "method_not_allowed"),
        HTTPUnitBadRequest(.GET, "/v1/check/batch", nil, 405, "method_not_allowed"),
        HTTPUnitBadRequest(.POST, "/metrics", nil, 405, "method_not_allowed"),
    ]

    @Test(arguments: badRequests)
    func badRequest(_ bad: HTTPUnitBadRequest) throws {
        let fixture = try HTTPUnitFixture()
        let response = fixture.respond(bad.method, bad.uri, body: bad.body)
        #expect(Int(response.status.code) == bad.status)
        #expect(response.contentType == "application/json")
        let body = try HTTPUnitFixture.json(response)
        let error = try #require(body["error"] as? [String: Any])
        #expect(error["code"] as? String == bad.code)
        let message = try #require(error["message"] as? String)
        #expect(!message.isEmpty)
        #expect(body.count == 1)
        // Errors carry no rate-limit fields and change no bucket.
        #expect(response.header("X-RateLimit-Limit") == nil)
        #expect(response.header("Retry-After") == nil)
        #expect(HTTPUnitFixture.remaining(fixture.get("/v1/check?policy=api&key=k")) == 99)
    }

    @Test(arguments: [
        (HTTPMethod.PUT, "/v1/check", "GET, POST"), (.PATCH, "/v1/check", "GET, POST"), (.GET, "/v1/check/batch", "POST"),
        (.DELETE, "/v1/check/batch", "POST"), (.POST, "/metrics", "GET"),
    ])
    func wrongMethodHasAllow(method: HTTPMethod, uri: String, allow: String) throws {
        let fixture = try HTTPUnitFixture()
        let response = fixture.respond(method, uri, body: "{}")
        #expect(response.status == .methodNotAllowed)
        #expect(response.header("Allow") == allow)
        #expect(HTTPUnitFixture.wire(response).contains("\r\nAllow: \(allow)\r\n"))
    }

    @Test func keyLengthIsCountedInBytes() throws {
        let fixture = try HTTPUnitFixture(maximumKeyBytes: 8)
        #expect(fixture.post("/v1/check", #"{"policy":"api","key":"12345678"}"#).status == .ok)
        let long = fixture.post("/v1/check", #"{"policy":"api","key":"123456789"}"#)
        #expect(long.status == .badRequest)
        #expect(HTTPUnitFixture.errorCode(long) == "key_too_long")
        // Four two-byte characters fit, five do not.
        #expect(fixture.post("/v1/check", #"{"policy":"api","key":"éééé"}"#).status == .ok)
        #expect(HTTPUnitFixture.errorCode(fixture.post("/v1/check", #"{"policy":"api","key":"ééééé"}"#)) == "key_too_long")
        #expect(HTTPUnitFixture.errorCode(fixture.get("/v1/check?policy=api&key=%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9")) == "key_too_long")
        #expect(HTTPUnitFixture.errorCode(fixture.post("/v1/check", #"{"key":"123456789","limit":1,"period":"1s"}"#)) == "key_too_long")
    }

    @Test func errorMessagesAreValidJSONWhateverTheInput() throws {
        let fixture = try HTTPUnitFixture()
        // Quotes, backslashes, control characters and long text in names the message repeats.
        let nasty = "a\"b\\c\u{1}d\ne\t" + String(repeating: "z", count: 200)
        let field = try #require(String(data: try JSONSerialization.data(withJSONObject: [nasty], options: [.fragmentsAllowed]), encoding: .utf8))
        let quoted = String(field.dropFirst().dropLast())
        let bodies = [
            "{\"policy\":\(quoted),\"key\":\"k\"}", "{\(quoted):1,\"key\":\"k\"}",
            "{\"key\":\"k\",\"limit\":1,\"period\":\"1s\",\"algorithm\":\(quoted)}",
        ]
        for body in bodies {
            let response = fixture.post("/v1/check", body)
            #expect(response.status.code >= 400 && response.status.code < 500)
            let message = try #require((try HTTPUnitFixture.json(response)["error"] as? [String: Any])?["message"] as? String)
            // Long names are cut to 64 characters.
            #expect(message.count < 300)
            #expect(message.contains("a\"b\\c\u{1}d\ne\t"))
        }
        let notFound = fixture.get("/" + String(repeating: "p", count: 500))
        #expect(notFound.status == .notFound)
        #expect(notFound.body.count < 400)
    }

    // MARK: Operations

    @Test func healthAndReadiness() throws {
        let fixture = try HTTPUnitFixture()
        let health = fixture.get("/healthz")
        #expect(health.status == .ok)
        #expect(try HTTPUnitFixture.json(health)["status"] as? String == "ok")
        let ready = fixture.get("/readyz")
        #expect(ready.status == .ok)
        let body = try HTTPUnitFixture.json(ready)
        #expect(body["status"] as? String == "ready")
        #expect(body["policies"] as? Int == 6)
        #expect(HTTPUnitFixture.wire(ready).contains("\r\nCache-Control: no-store\r\n"))
    }

    @Test func metricsCountDecisions() throws {
        let fixture = try HTTPUnitFixture()
        let before = fixture.get("/metrics")
        #expect(before.status == .ok)
        #expect(before.contentType == "text/plain; version=0.0.4")
        #expect(before.body.contains("# TYPE sluice_decisions_total counter\n"))
        #expect(HTTPUnitFixture.metric(#"sluice_decisions_total{outcome="allowed"}"#, in: before.body) == 0)
        #expect(HTTPUnitFixture.metric(#"sluice_decisions_total{outcome="denied"}"#, in: before.body) == 0)
        #expect(HTTPUnitFixture.metric(#"sluice_decisions_total{outcome="shadow_denied"}"#, in: before.body) == 0)
        #expect(HTTPUnitFixture.metric("sluice_requests_total", in: before.body) == 0)

        for _ in 0..<4 { _ = fixture.get("/v1/check?policy=small&key=k") }  // 3 allowed, 1 denied
        _ = fixture.post("/v1/check", #"{"policy":"shadowed","key":"k"}"#)  // allowed
        _ = fixture.post("/v1/check", #"{"policy":"shadowed","key":"k"}"#)  // shadow-denied
        _ = fixture.post("/v1/check", #"{"checks":[{"policy":"api","key":"k"},{"policy":"small","key":"k"}]}"#)  // one denial
        _ = fixture.post("/v1/check/batch", #"{"checks":[{"policy":"api","key":"k"},{"policy":"small","key":"k"}]}"#)  // 1 + 1
        _ = fixture.post("/v1/check", #"{"policy":"nope","key":"k"}"#)  // an error: no decision

        let after = fixture.get("/metrics")
        #expect(HTTPUnitFixture.metric(#"sluice_decisions_total{outcome="allowed"}"#, in: after.body) == 5)
        #expect(HTTPUnitFixture.metric(#"sluice_decisions_total{outcome="denied"}"#, in: after.body) == 3)
        #expect(HTTPUnitFixture.metric(#"sluice_decisions_total{outcome="shadow_denied"}"#, in: after.body) == 1)
        // Every request counts, errors and /metrics included: the first /metrics, 4 + 2 + 1 + 1 decisions, 1 error.
        #expect(HTTPUnitFixture.metric("sluice_requests_total", in: after.body) == 10)
        #expect(HTTPUnitFixture.metric("sluice_keys", in: after.body) == 3)
        #expect(HTTPUnitFixture.metric("sluice_keys_max", in: after.body) != nil)
        #expect(after.body.hasSuffix("\n"))
        // By policy: the batch's and the multi-check's decisions each count under their own policy.
        #expect(HTTPUnitFixture.metric(#"sluice_policy_decisions_total{policy="small",outcome="allowed"}"#, in: after.body) == 3)
        #expect(HTTPUnitFixture.metric(#"sluice_policy_decisions_total{policy="small",outcome="denied"}"#, in: after.body) == 3)
        #expect(HTTPUnitFixture.metric(#"sluice_policy_decisions_total{policy="api",outcome="allowed"}"#, in: after.body) == 2)
        #expect(HTTPUnitFixture.metric(#"sluice_policy_decisions_total{policy="shadowed",outcome="shadow_denied"}"#, in: after.body) == 1)
        // Never a key in a label; every family has help text.
        #expect(!after.body.contains("key="))
        #expect(after.body.contains("# HELP sluice_policy_decisions_total "))
        // Every sample line is `name value` or `name{labels} value` with a number.
        for line in after.body.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ")
            #expect(parts.count == 2 && Double(parts[1]) != nil, "bad sample line: \(line)")
        }
    }

    // MARK: Encoding

    @Test func writeEncodesHeadAndBody() throws {
        let response = HTTPAPIResponse(status: .ok, headers: [("X-One", "1")], body: "{\"é\":1}")
        #expect(
            HTTPUnitFixture.wire(response)
                == "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nContent-Length: 8\r\nX-One: 1\r\n\r\n{\"é\":1}"
        )
        #expect(
            HTTPUnitFixture.wire(HTTPAPIResponse(status: .notFound, body: "", contentType: "text/plain"), keepAlive: false)
                == "HTTP/1.1 404 Not Found\r\nCache-Control: no-store\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            "an empty body has no type"
        )
        // Appends after what the buffer already holds (pipelined responses share one buffer).
        var buffer = ByteBuffer(string: "before")
        response.write(to: &buffer, keepAlive: true)
        #expect(String(buffer: buffer).hasPrefix("beforeHTTP/1.1 200 OK\r\n"))
    }

    @Test func queryDecoding() {
        let request = HTTPAPIRequest(method: .GET, uri: "/v1/check?a=1&b=x+y%20z&a=2&c&d=&%65=e&f=%E2%82%AC&g=%4&h=%zz")
        #expect(request.path == "/v1/check")
        let query = request.query
        #expect(query["a"] == "1")
        #expect(query["b"] == "x y z")
        #expect(query["c"] == "")
        #expect(query["d"] == "")
        #expect(query["e"] == "e")
        #expect(query["f"] == "€")
        #expect(query["g"] == "")
        #expect(query["h"] == "")
        #expect(HTTPAPIRequest(method: .GET, uri: "/healthz").query.isEmpty)
        #expect(HTTPAPIRequest(method: .GET, uri: "/healthz?").query.isEmpty)
    }
}

extension HTTPAPIProcessorTests {
    @Test func encodedQueryNamesAndAlgorithmCaseAreAccepted() throws {
        let fixture = try HTTPUnitFixture()
        #expect(fixture.get("/v1/check?policy=api&%6Bey=user").status == .ok)
        #expect(fixture.get("/v1/check?key=x&limit=5&period=1s&algorithm=FIXED_WINDOW").status == .ok)
    }

    /// A request that charges one bucket twice beyond its capacity can never pass, and says so instead of
    /// promising a retry time.
    @Test func repeatedBucketBeyondCapacityIsReportedAsNeverPassing() throws {
        let fixture = try HTTPUnitFixture()
        // small: token bucket of 3; 2 + 2 on the same key exceeds it.
        let response = fixture.post("/v1/check", #"{"checks":[{"policy":"small","key":"k","cost":2},{"policy":"small","key":"k","cost":2}]}"#)
        #expect(response.status == .tooManyRequests)
        #expect(response.header("Retry-After") == nil)
        #expect(response.body.contains(#""reason":"cost_exceeds_capacity""#))
        // Nothing was charged: a single request of 3 still passes.
        #expect(fixture.post("/v1/check", #"{"policy":"small","key":"k","cost":3}"#).status == .ok)
    }

    /// A shadow policy's numbers never become the response's headers when an enforced check is present.
    @Test func shadowPolicyNeverDecidesTheHeaders() throws {
        let fixture = try HTTPUnitFixture()
        let shadowName = try #require(try HTTPUnitFixture.policies().policies.first { $0.mode == .shadow }?.name)
        for _ in 0..<5 { _ = fixture.post("/v1/check", "{\"policy\":\"\(shadowName)\",\"key\":\"k\"}") }
        let response = fixture.post("/v1/check", "{\"checks\":[{\"policy\":\"api\",\"key\":\"k\"},{\"policy\":\"\(shadowName)\",\"key\":\"k\"}]}")
        #expect(response.status == .ok)
        #expect(response.header("RateLimit-Policy")?.hasPrefix("\"api\"") == true, "\(response.headers)")
    }
}
