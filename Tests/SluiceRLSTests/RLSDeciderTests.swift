import SluiceConfig
import SluiceCore
import Testing

@testable import SluiceRLS

/// Deciding Envoy's requests: all or nothing, hits_addend, replaces, unlimited, shadow, overrides, caps.
struct RLSDeciderTests {
    static let config = """
        domain: shop
        descriptors:
          - key: user
            rate_limit: { unit: minute, requests_per_unit: 3, name: per-user }
          - key: path
            value: /checkout
            rate_limit: { unit: minute, requests_per_unit: 2 }
          - key: path
            value: /login
            shadow_mode: true
            rate_limit: { unit: minute, requests_per_unit: 1 }
          - key: blocked
            rate_limit: { unit: second, requests_per_unit: 0 }
          - key: internal
            rate_limit: { unlimited: true }
          - key: tb
            rate_limit: { unit: second, requests_per_unit: 10, algorithm: token_bucket, burst: 2 }
          - key: a
            rate_limit: { unit: minute, requests_per_unit: 5, name: specific }
          - key: b
            rate_limit: { unit: minute, requests_per_unit: 7, replaces: [{ name: specific }] }
        """

    let clock = ManualClock()
    let limiter = RateLimiter(store: BucketStore(maximumKeys: 10_000))
    let matcher: DescriptorMatcher
    let decider: RLSDecider

    init() throws {
        matcher = try DescriptorMatcher(domains: [RLSDomain.parse(yaml: Self.config, file: "shop.yaml")])
        decider = RLSDecider(limiter: limiter, clock: clock, settings: SluiceConfiguration.RLS(maxDescriptors: 4, maxEntries: 3))
    }

    static func descriptor(_ pairs: (String, String)..., hits: UInt64? = nil) -> RLSRequest.Descriptor {
        RLSRequest.Descriptor(entries: pairs.map { DescriptorEntry(key: $0.0, value: $0.1) }, hitsAddend: hits)
    }

    func decide(_ descriptors: RLSRequest.Descriptor..., hits: UInt32 = 0, domain: String = "shop") async throws -> RLSAnswer {
        try await decider.decide(RLSRequest(domain: domain, descriptors: descriptors, hitsAddend: hits), matcher: matcher)
    }

    @Test("each descriptor gets a status with its limit, what remains and when the window resets; 0 hits count as 1")
    func statuses() async throws {
        clock.set(Timestamp(nanoseconds: 1_767_225_600_000_000_000 + 20_000_000_000))  // 20 s into a minute
        let answer = try await decide(Self.descriptor(("user", "alice")), Self.descriptor(("path", "/other")))
        #expect(!answer.isOverLimit)
        #expect(answer.statuses[0] == RLSAnswer.Status(
            isOverLimit: false, currentLimit: .init(requestsPerUnit: 3, unit: .minute, name: "per-user"), remaining: 2, resetSeconds: 40
        ))
        #expect(answer.statuses[1] == .unmatched)
    }

    @Test("all or nothing: a request over any limit charges no descriptor (envoyproxy/ratelimit charges them all)")
    func allOrNothing() async throws {
        for _ in 0..<2 { #expect(try await !decide(Self.descriptor(("path", "/checkout"))).isOverLimit) }
        let denied = try await decide(Self.descriptor(("user", "bob")), Self.descriptor(("path", "/checkout")))
        #expect(denied.isOverLimit)
        #expect(denied.statuses.map(\.isOverLimit) == [false, true])
        // bob was not charged: three requests of his own still pass.
        for _ in 0..<3 { #expect(try await !decide(Self.descriptor(("user", "bob"))).isOverLimit) }
        #expect(try await decide(Self.descriptor(("user", "bob"))).isOverLimit)
    }

    @Test("hits_addend: the request's for every descriptor, a descriptor's own over it, 0 on a descriptor only checks")
    func hitsAddend() async throws {
        let three = try await decide(Self.descriptor(("user", "carol")), hits: 3)
        #expect(three.statuses[0].remaining == 0)
        #expect(try await decide(Self.descriptor(("user", "carol"))).isOverLimit)
        let own = try await decide(Self.descriptor(("user", "dave"), hits: 2), hits: 1)
        #expect(own.statuses[0].remaining == 1)
        let check = try await decide(Self.descriptor(("user", "dave"), hits: 0))
        #expect(check.statuses[0].remaining == 1, "a check with 0 hits counts nothing")
        #expect(try await decide(Self.descriptor(("user", "dave"), hits: 0)).statuses[0].remaining == 1)
        let tooMany = try await decide(Self.descriptor(("user", "erin")), hits: 4)
        #expect(tooMany.isOverLimit, "more hits than the limit never pass")
    }

    @Test("requests_per_unit 0 denies without a bucket, and then nothing else is charged")
    func denyAll() async throws {
        let answer = try await decide(Self.descriptor(("blocked", "x")), Self.descriptor(("user", "frank")))
        #expect(answer.isOverLimit)
        #expect(answer.statuses[0].isOverLimit && answer.statuses[0].remaining == 0)
        #expect(answer.statuses[1].remaining == 3, "frank's bucket is only peeked")
    }

    @Test("unlimited answers OK with 4294967295 remaining and no limit; shadow mode answers OK with 0 remaining")
    func unlimitedAndShadow() async throws {
        let unlimited = try await decide(Self.descriptor(("internal", "svc")))
        #expect(unlimited.statuses[0] == .unlimited)
        #expect(unlimited.statuses[0].remaining == UInt32.max)
        _ = try await decide(Self.descriptor(("path", "/login")))
        let shadowed = try await decide(Self.descriptor(("path", "/login")))
        #expect(!shadowed.isOverLimit)
        #expect(shadowed.statuses[0].remaining == 0)
        #expect(shadowed.statuses[0].currentLimit?.requestsPerUnit == 1)
    }

    @Test("replaces: a named limit another matched limit replaces is answered without a limit and not charged")
    func replaces() async throws {
        let answer = try await decide(Self.descriptor(("a", "1")), Self.descriptor(("b", "1")))
        #expect(answer.statuses[0] == .unmatched)
        #expect(answer.statuses[1].currentLimit?.requestsPerUnit == 7)
        let alone = try await decide(Self.descriptor(("a", "1")))
        #expect(alone.statuses[0].remaining == 4, "the replaced request did not charge a's bucket")
    }

    @Test("Sluice's algorithm and burst apply; the limit reported is Envoy's requests_per_unit")
    func tokenBucket() async throws {
        let first = try await decide(Self.descriptor(("tb", "k")))
        #expect(first.statuses[0].currentLimit?.requestsPerUnit == 10)
        #expect(first.statuses[0].remaining == 1, "burst 2")
        _ = try await decide(Self.descriptor(("tb", "k")))
        #expect(try await decide(Self.descriptor(("tb", "k"))).isOverLimit)
        clock.advance(by: .milliseconds(100))
        #expect(try await !decide(Self.descriptor(("tb", "k"))).isOverLimit, "one token per 100 ms")
    }

    @Test("Envoy's limit override replaces the configured limit in a known domain; an unknown domain is OK without a limit")
    func overridesAndUnknownDomains() async throws {
        var descriptor = Self.descriptor(("user", "gina"))
        descriptor.override = (1, .hour)
        let first = try await decide(descriptor)
        #expect(first.statuses[0].currentLimit == .init(requestsPerUnit: 1, unit: .hour, name: ""))
        #expect(try await decide(descriptor).isOverLimit)
        let unknown = try await decide(Self.descriptor(("user", "gina")), domain: "elsewhere")
        #expect(unknown.statuses == [.unmatched])
        descriptor.override = (1, nil)
        await #expect(throws: RLSRequestError.self) { try await decide(descriptor) }
    }

    @Test(arguments: [
        (RLSRequest(domain: "", descriptors: [descriptor(("user", "x"))]), RLSRequestError.Code.invalidArgument, "domain must not be empty"),
        (RLSRequest(domain: "shop", descriptors: []), .invalidArgument, "descriptor list must not be empty"),
        (RLSRequest(domain: "shop", descriptors: Array(repeating: descriptor(("user", "x")), count: 5)), .resourceExhausted, "5 descriptors, at most 4"),
        (RLSRequest(domain: "shop", descriptors: [descriptor(("a", "1"), ("b", "2"), ("c", "3"), ("d", "4"))]), .resourceExhausted, "4 entries, at most 3"),
    ])
    func refused(request: RLSRequest, code: RLSRequestError.Code, message: String) async throws {
        do {
            _ = try await decider.decide(request, matcher: matcher)
            Issue.record("accepted: \(message)")
        } catch {
            #expect(error.code == code)
            #expect(error.message.contains(message), "\(error.message)")
        }
    }
}

extension RLSDeciderTests {
    @Test("a descriptor of 0 hits is never over the limit and cannot make a request charge others for nothing")
    func checkOnlyNeverDenies() async throws {
        for _ in 0..<2 { _ = try await decide(Self.descriptor(("path", "/checkout"))) }  // full: 2 of 2
        for _ in 0..<3 {
            let answer = try await decide(Self.descriptor(("user", "hank")), Self.descriptor(("path", "/checkout"), hits: 0))
            #expect(!answer.isOverLimit)
            #expect(answer.statuses[1] == RLSAnswer.Status(
                isOverLimit: false, currentLimit: .init(requestsPerUnit: 2, unit: .minute, name: ""), remaining: 0,
                resetSeconds: answer.statuses[1].resetSeconds
            ))
        }
        // hank's three requests passed although /checkout was full: a fourth is over his limit of 3.
        #expect(try await decide(Self.descriptor(("user", "hank"))).isOverLimit)
        // requests_per_unit 0 with 0 hits: OK, nothing remains.
        let blocked = try await decide(Self.descriptor(("blocked", "x"), hits: 0))
        #expect(!blocked.isOverLimit && blocked.statuses[0].remaining == 0)
    }

    @Test("over the limit, a status says 0 remaining and when the window resets, whatever the hits")
    func overLimitStatus() async throws {
        let answer = try await decide(Self.descriptor(("user", "ivy")), hits: 4)
        #expect(answer.isOverLimit)
        #expect(answer.statuses[0].remaining == 0)
        #expect((answer.statuses[0].resetSeconds ?? 0) > 0)
    }

    @Test("a refund (is_negative_hits) is answered OK and charges nothing")
    func negativeHits() async throws {
        var refund = Self.descriptor(("user", "jo"), hits: 2)
        refund.isNegative = true
        let answer = try await decide(refund)
        #expect(!answer.isOverLimit && answer.statuses[0].remaining == 3)
        #expect(try await decide(Self.descriptor(("user", "jo"))).statuses[0].remaining == 2)
    }

    @Test("the headers' status: the first with the fewest remaining, unless one is over the limit (the last of those)")
    func mostRestrictive() {
        let limit = RLSAnswer.Status.CurrentLimit(requestsPerUnit: 5, unit: .minute, name: "")
        func status(_ remaining: UInt32, over: Bool = false, _ name: String) -> RLSAnswer.Status {
            RLSAnswer.Status(isOverLimit: over, currentLimit: .init(requestsPerUnit: limit.requestsPerUnit, unit: .minute, name: name), remaining: remaining, resetSeconds: 1)
        }
        #expect(RLSAnswer(isOverLimit: false, statuses: [status(3, "a"), .unmatched, status(1, "b"), status(1, "c")]).mostRestrictive?.currentLimit?.name == "b")
        #expect(RLSAnswer(isOverLimit: true, statuses: [status(0, over: true, "a"), status(0, "b"), status(0, over: true, "c")]).mostRestrictive?.currentLimit?.name == "c")
        #expect(RLSAnswer(isOverLimit: false, statuses: [.unmatched, .unlimited]).mostRestrictive == nil)
    }
}
