import SluiceCore
import Testing

struct DurationTests {
    @Test(arguments: [
        ("250ms", 250_000_000),
        ("1ms", 1_000_000),
        ("1s", 1_000_000_000),
        ("1m", 60_000_000_000),
        ("1h", 3_600_000_000_000),
        ("1d", 86_400_000_000_000),
        ("1000ms", 1_000_000_000),
        ("90m", 5_400_000_000_000),
        ("007s", 7_000_000_000),
        ("106751d", 106_751 * 86_400_000_000_000),
    ] as [(String, Int64)])
    func parsesValidDurations(text: String, nanoseconds: Int64) throws {
        #expect(try PolicyDuration.parseNanoseconds(text) == nanoseconds)
    }

    @Test(arguments: [
        "1", "1.5s", "-1s", "+1s", "0s", "0ms", "000s", "1w", "", " 1s", "1s ", "1 s", "s", "ms", "1S", "1sec", "1ms1",
        "1e3s", "0x10s", "\u{FF11}s", "1\u{0661}s",
    ])
    func rejectsMalformedDurations(text: String) {
        let error = #expect(throws: PolicyError.self) { try PolicyDuration.parseNanoseconds(text) }
        #expect(error?.code == .invalidDuration)
        // The message quotes the input and says what a duration looks like.
        #expect(error?.message.contains("'\(text)'") == true)
        #expect(error?.message.contains("250ms, 1s, 1m, 1h or 1d") == true)
    }

    @Test(arguments: [
        "106752d",
        "9223372036854775807ms",
        "2562048h",
        "9223372036854775808s",  // does not even fit Int64 before the unit is applied
        "99999999999999999999999999ms",
    ])
    func rejectsOverflowingDurations(text: String) {
        let error = #expect(throws: PolicyError.self) { try PolicyDuration.parseNanoseconds(text) }
        #expect(error?.code == .invalidDuration)
        #expect(error?.message.contains("'\(text)'") == true)
        #expect(error?.message.contains("too long") == true, "got: \(error?.message ?? "no error")")
    }

    @Test(arguments: [
        (60_000_000_000, "1m"),
        (1_500_000_000, "1500ms"),
        (86_400_000_000_000, "1d"),
        (7_200_000_000_000, "2h"),
        (1, "1ns"),
        (999_999, "999999ns"),
    ] as [(Int64, String)])
    func formatsInTheLargestExactUnit(nanoseconds: Int64, text: String) {
        #expect(PolicyDuration.format(nanoseconds: nanoseconds) == text)
    }

    @Test(arguments: [1_000_000, 250_000_000, 61_000_000_000, 86_400_000_000_000, 366 * 86_400_000_000_000] as [Int64])
    func formatRoundTripsThroughParse(nanoseconds: Int64) throws {
        #expect(try PolicyDuration.parseNanoseconds(PolicyDuration.format(nanoseconds: nanoseconds)) == nanoseconds)
    }
}

struct RateLimitValidationTests {
    struct InvalidCase: Sendable, CustomStringConvertible {
        var algorithm: Algorithm
        var limit: Int64
        var period: Int64
        var burst: Int64?
        var code: PolicyError.Code
        var messageFragment: String
        var description: String { "\(algorithm.rawValue) \(limit)/\(period)ns burst \(burst.map(String.init) ?? "nil")" }
    }

    static let invalidCases: [InvalidCase] = [
        .init(algorithm: .tokenBucket, limit: 0, period: TestTime.second, code: .invalidLimit, messageFragment: "limit must be an integer from 1 to 4294967295"),
        .init(algorithm: .fixedWindow, limit: 0, period: TestTime.second, code: .invalidLimit, messageFragment: "got 0"),
        .init(algorithm: .slidingWindow, limit: -5, period: TestTime.second, code: .invalidLimit, messageFragment: "got -5"),
        .init(algorithm: .tokenBucket, limit: RateLimit.maximumLimit + 1, period: TestTime.second, code: .invalidLimit, messageFragment: "got 4294967296"),
        .init(algorithm: .fixedWindow, limit: RateLimit.maximumLimit + 1, period: TestTime.second, code: .invalidLimit, messageFragment: "from 1 to 4294967295 for fixed_window"),
        .init(algorithm: .slidingWindow, limit: RateLimit.maximumSlidingWindowLimit + 1, period: TestTime.second, code: .invalidLimit, messageFragment: "from 1 to 16777215 for sliding_window, got 16777216"),
        .init(algorithm: .tokenBucket, limit: 1, period: 999_999, code: .invalidPeriod, messageFragment: "period must be from 1ms to 366d, got 999999ns"),
        .init(algorithm: .fixedWindow, limit: 1, period: 1, code: .invalidPeriod, messageFragment: "got 1ns"),
        .init(algorithm: .slidingWindow, limit: 1, period: -TestTime.second, code: .invalidPeriod, messageFragment: "period must be from 1ms to 366d"),
        .init(algorithm: .fixedWindow, limit: 1, period: 367 * TestTime.day, code: .invalidPeriod, messageFragment: "got 367d"),
        .init(algorithm: .fixedWindow, limit: 10, period: TestTime.second, burst: 20, code: .invalidBurst, messageFragment: "burst applies only to token_bucket; remove it from this fixed_window policy"),
        .init(algorithm: .slidingWindow, limit: 10, period: TestTime.second, burst: 5, code: .invalidBurst, messageFragment: "sliding_window"),
        .init(algorithm: .tokenBucket, limit: 10, period: TestTime.second, burst: 0, code: .invalidBurst, messageFragment: "burst must be an integer from 1 to 4294967295, got 0"),
        .init(algorithm: .tokenBucket, limit: 10, period: TestTime.second, burst: -1, code: .invalidBurst, messageFragment: "got -1"),
        .init(algorithm: .tokenBucket, limit: 10, period: TestTime.second, burst: RateLimit.maximumLimit + 1, code: .invalidBurst, messageFragment: "got 4294967296"),
        // 100 tokens of one per 366 days is 36,600 days of refill: more than 10 years.
        .init(algorithm: .tokenBucket, limit: 1, period: 366 * TestTime.day, burst: 100, code: .invalidBurst, messageFragment: "at most 10 years"),
    ]

    @Test(arguments: invalidCases)
    func rejectsOutOfRangeLimits(_ invalid: InvalidCase) {
        let error = #expect(throws: PolicyError.self) {
            try RateLimit(algorithm: invalid.algorithm, limit: invalid.limit, periodNanoseconds: invalid.period, burst: invalid.burst)
        }
        #expect(error?.code == invalid.code)
        #expect(error?.message.contains(invalid.messageFragment) == true, "got: \(error?.message ?? "no error")")
        #expect(error?.description == error?.message)
    }

    @Test(arguments: [
        (.tokenBucket, RateLimit.maximumLimit, TestTime.millisecond, nil),
        (.tokenBucket, 1, 366 * TestTime.day, 9),
        (.tokenBucket, 3, TestTime.second, 1),
        (.fixedWindow, RateLimit.maximumLimit, 366 * TestTime.day, nil),
        (.fixedWindow, 10, TestTime.second, 10),  // a burst equal to the limit is allowed
        (.slidingWindow, RateLimit.maximumSlidingWindowLimit, TestTime.millisecond, nil),
        (.slidingWindow, 1, 366 * TestTime.day, nil),
    ] as [(Algorithm, Int64, Int64, Int64?)])
    func acceptsLimitsAtTheEdgesOfTheRange(algorithm: Algorithm, limit: Int64, period: Int64, burst: Int64?) throws {
        let rateLimit = try RateLimit(algorithm: algorithm, limit: limit, periodNanoseconds: period, burst: burst)
        #expect(rateLimit.limit == limit)
        #expect(rateLimit.periodNanoseconds == period)
        #expect(rateLimit.capacity == (burst ?? limit))
    }

    @Test func fingerprintsDependOnEveryField() throws {
        let base = try RateLimit(algorithm: .tokenBucket, limit: 10, periodNanoseconds: TestTime.second, burst: 20)
        let variants = [
            try RateLimit(algorithm: .tokenBucket, limit: 11, periodNanoseconds: TestTime.second, burst: 20),
            try RateLimit(algorithm: .tokenBucket, limit: 10, periodNanoseconds: TestTime.minute, burst: 20),
            try RateLimit(algorithm: .tokenBucket, limit: 10, periodNanoseconds: TestTime.second, burst: 21),
            try RateLimit(algorithm: .fixedWindow, limit: 10, periodNanoseconds: TestTime.second),
            try RateLimit(algorithm: .slidingWindow, limit: 10, periodNanoseconds: TestTime.second),
        ]
        let same = try RateLimit(algorithm: .tokenBucket, limit: 10, periodNanoseconds: TestTime.second, burst: 20)
        #expect(base.fingerprint == same.fingerprint)
        #expect(Set(variants.map(\.fingerprint) + [base.fingerprint]).count == variants.count + 1)
    }
}

struct PolicyTests {
    @Test(arguments: ["a", "api", "user:42", "A-Z_a.z:0-9", String(repeating: "x", count: 64)])
    func acceptsValidNames(name: String) throws {
        let rateLimit = try RateLimit(algorithm: .fixedWindow, limit: 1, periodNanoseconds: TestTime.second)
        #expect(try Policy(name: name, rateLimit: rateLimit).name == name)
    }

    @Test(arguments: ["", String(repeating: "x", count: 65), "has space", "slash/", "é", "tab\t", "emoji🙂"])
    func rejectsInvalidNames(name: String) throws {
        let rateLimit = try RateLimit(algorithm: .fixedWindow, limit: 1, periodNanoseconds: TestTime.second)
        let error = #expect(throws: PolicyError.self) { try Policy(name: name, rateLimit: rateLimit) }
        #expect(error?.code == .invalidName)
        #expect(error?.message.contains("1 to 64 characters") == true)
    }

    @Test func policySetRejectsDuplicateNamesAndFindsByName() throws {
        let rateLimit = try RateLimit(algorithm: .fixedWindow, limit: 1, periodNanoseconds: TestTime.second)
        let api = try Policy(name: "api", rateLimit: rateLimit)
        let login = try Policy(name: "login", rateLimit: rateLimit, mode: .shadow)
        let error = #expect(throws: PolicyError.self) { try PolicySet([api, login, api]) }
        #expect(error?.code == .invalidName)
        #expect(error?.message.contains("'api' is defined twice") == true)

        let set = try PolicySet([api, login])
        #expect(set.index(ofName: "api") == 0)
        #expect(set.index(ofName: "login") == 1)
        #expect(set.index(ofName: "logi") == nil)
        #expect(set.index(ofName: "") == nil)
        #expect(set.seeds == [api.bucketSeed, login.bucketSeed])
        #expect(api.bucketSeed != login.bucketSeed)
    }
}
