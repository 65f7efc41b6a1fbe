import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
@testable import SluiceServer
import SluiceCore
import Testing

/// Regression tests for the problems a review of the servers and the core found.
struct ReviewFixesTests {
    typealias F = HTTPUnitFixture
    typealias A = HTTPUnitForwardAuth
    typealias H = HTTPServerHandlerTests
    typealias W = HTTPUnitWireResponse

    // MARK: Forward auth

    /// A proxy that appends its own X-Forwarded-For line (instead of extending the client's) must not let
    /// the client's forged first line choose the bucket: the right-most address across all lines counts.
    @Test func everyForwardedForLineIsRead() throws {
        let auth = try A()
        for attempt in 0..<3 {
            let response = try auth.check(
                "POST", "/login", peer: A.loopback, headers: [("X-Forwarded-For", "6.6.6.\(attempt)"), ("X-Forwarded-For", "203.0.113.9")]
            )
            #expect(response.status == .ok)
        }
        let fourth = try auth.check("POST", "/login", peer: A.loopback, headers: [("X-Forwarded-For", "6.6.6.99"), ("X-Forwarded-For", "203.0.113.9")])
        #expect(fourth.status == .tooManyRequests, "a forged first line escaped the per-IP limit")
    }

    /// Spellings of /login that an application treats as /login are matched by the /login rule.
    @Test(arguments: ["//login", "/%6Cogin", "/./login", "/static/../login", "/login/", "/%6c%6F%67%69%6E"])
    func pathSpellingsCannotSidestepARule(uri: String) throws {
        let auth = try A()
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

    // MARK: /v1/check

    @Test func encodedQueryNamesAndAlgorithmCaseAreAccepted() throws {
        let fixture = try F()
        #expect(fixture.get("/v1/check?policy=api&%6Bey=user").status == .ok)
        #expect(fixture.get("/v1/check?key=x&limit=5&period=1s&algorithm=FIXED_WINDOW").status == .ok)
    }

    /// A request that charges one bucket twice beyond its capacity can never pass, and says so instead of
    /// promising a retry time.
    @Test func repeatedBucketBeyondCapacityIsReportedAsNeverPassing() throws {
        let fixture = try F()
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
        let fixture = try F()
        let shadowName = try #require(try F.policies().policies.first { $0.mode == .shadow }?.name)
        for _ in 0..<5 { _ = fixture.post("/v1/check", "{\"policy\":\"\(shadowName)\",\"key\":\"k\"}") }
        let response = fixture.post("/v1/check", "{\"checks\":[{\"policy\":\"api\",\"key\":\"k\"},{\"policy\":\"\(shadowName)\",\"key\":\"k\"}]}")
        #expect(response.status == .ok)
        #expect(response.header("RateLimit-Policy")?.hasPrefix("\"api\"") == true, "\(response.headers)")
    }

    // MARK: HTTP connection handling

    /// NIO's decoder stops parsing after an Upgrade; the connection is answered and closed, not left open.
    @Test(arguments: ["GET /healthz HTTP/1.1\r\nHost: s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", "CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\n\r\n"])
    func upgradeAndConnectCloseTheConnection(request: String) throws {
        let fixture = try F()
        let channel = try H.makeChannel(fixture)
        try H.send(channel, request)
        let responses = try W.parse(H.writes(channel).joined())
        #expect(responses.first?.field("Connection") == "close")
        #expect(!channel.isActive, "the connection stayed open after an upgrade request")
    }

    /// A body sent in many small chunks arrives whole (and is appended without copying what came before).
    @Test func aBodyInManySmallChunksArrivesWhole() throws {
        let fixture = try F()
        let channel = try H.makeChannel(fixture)
        let body = #"{"policy":"api","key":"chunked-user","cost":1}"#
        var request = "POST /v1/check HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: chunked\r\n\r\n"
        for character in body { request += "1\r\n\(character)\r\n" }
        request += "0\r\n\r\n"
        try H.send(channel, request)
        let responses = try W.parse(H.writes(channel).joined())
        #expect(responses.first?.status == 200)
        #expect(responses.first?.body.contains(#""policy":"api""#) == true)
    }

    /// `100 Continue` follows the responses owed to earlier pipelined requests.
    @Test func interimResponseKeepsPipelineOrder() throws {
        let fixture = try F()
        let channel = try H.makeChannel(fixture)
        let body = #"{"policy":"api","key":"k"}"#
        try H.send(channel, H.get("/healthz") + "POST /v1/check HTTP/1.1\r\nHost: s\r\nExpect: 100-continue\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body)
        let text = try H.writes(channel).joined()
        let healthz = try #require(text.range(of: "HTTP/1.1 200 OK"))
        let interim = try #require(text.range(of: "HTTP/1.1 100 Continue"))
        #expect(healthz.lowerBound < interim.lowerBound, "100 Continue overtook an earlier response:\n\(text)")
    }
}

/// The line protocol bounds the replies one read can queue: small commands with large replies (INFO) pause
/// parsing at 1 MiB of replies until those are written, then continue; nothing is lost or reordered.
struct LineReplyCapTests {
    @Test func largeRepliesArePacedAndAllArrive() throws {
        let fixture = try UnitFixture()
        let channel = try LineProtocolHandlerTests.makeChannel(fixture)
        let count = 10_000
        var request = ""
        for _ in 0..<count { request += "INFO\r\n" }
        request += "PING\r\n"
        try channel.writeInbound(ByteBuffer(string: request))
        let writes = try LineProtocolHandlerTests.writes(channel)
        #expect(writes.count >= 3, "replies were not paced: \(writes.count) writes")
        for write in writes {
            #expect(write.utf8.count <= LineProtocolHandler.maximumReplyBytesPerRead + 2048, "one write of \(write.utf8.count) bytes")
        }
        let all = writes.joined()
        #expect(all.components(separatedBy: "# Server\r\n").count - 1 == count)
        #expect(all.hasSuffix("+PONG\r\n"), "the last command's reply did not come last")
        #expect(channel.isActive)
    }
}
