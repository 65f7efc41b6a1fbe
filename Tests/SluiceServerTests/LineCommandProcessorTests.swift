import Logging
import NIOCore
import SluiceConfig
import SluiceCore
import Testing

@testable import SluiceServer

/// A processor over a fresh store and a manual clock, with three policies:
/// `api` (token bucket, 3 per 1s), `win` (fixed window, 2 per 1m) and `shadowed` (fixed window, 1 per 1m, shadow mode).
struct UnitFixture {
    static let connectionID = 7

    let clock = ManualClock()
    let context: ServerContext
    var processor: LineCommandProcessor

    static func policies() throws -> PolicySet {
        try PolicySet([
            Policy(name: "api", rateLimit: RateLimit(algorithm: .tokenBucket, limit: 3, periodNanoseconds: 1_000_000_000)),
            Policy(name: "win", rateLimit: RateLimit(algorithm: .fixedWindow, limit: 2, periodNanoseconds: 60_000_000_000)),
            Policy(
                name: "shadowed", rateLimit: RateLimit(algorithm: .fixedWindow, limit: 1, periodNanoseconds: 60_000_000_000),
                mode: .shadow
            ),
        ])
    }

    init(maximumKeyBytes: Int = 512) throws {
        context = ServerContext(
            limiter: RateLimiter(store: BucketStore(maximumKeys: 10_000)), registry: PolicyRegistry(try Self.policies()),
            clock: clock, limits: SluiceConfiguration.Limits(maxKeyBytes: maximumKeyBytes), logger: Logger(label: "sluice.tests.unit")
        )
        processor = LineCommandProcessor(context: context, connectionID: Self.connectionID)
    }

    /// Parses every command in `text`, executes them at the clock's time, and returns the reply bytes and the last action.
    @discardableResult
    mutating func run(_ text: String) throws -> (reply: String, action: LineCommandProcessor.Action) {
        var output = ByteBuffer()
        var action = LineCommandProcessor.Action.proceed
        let now = clock.now()
        for command in try UnitRESP.commands(text) {
            action = processor.execute(command, now: now, into: &output)
        }
        return (String(buffer: output), action)
    }

    /// The reply to `text`.
    mutating func reply(_ text: String) throws -> String { try run(text).reply }

    /// The `*5` reply of one decision.
    static func decision(_ allowed: Bool, _ limit: Int, _ remaining: Int, _ resetMilliseconds: Int, _ retryMilliseconds: Int) -> String {
        "*5\r\n:\(allowed ? 1 : 0)\r\n:\(limit)\r\n:\(remaining)\r\n:\(resetMilliseconds)\r\n:\(retryMilliseconds)\r\n"
    }
}

struct LineCommandProcessorTests {

    // MARK: TAKE, PEEK and costs

    @Test func takeUntilDeniedThenRefill() throws {
        var fixture = try UnitFixture()
        // 3 per second: one token every 333.33 ms; milliseconds are rounded up.
        #expect(try fixture.reply("TAKE api user:1\r\n") == UnitFixture.decision(true, 3, 2, 334, 0))
        #expect(try fixture.reply("TAKE api user:1\r\n") == UnitFixture.decision(true, 3, 1, 667, 0))
        #expect(try fixture.reply("TAKE api user:1\r\n") == UnitFixture.decision(true, 3, 0, 1000, 0))
        #expect(try fixture.reply("TAKE api user:1\r\n") == UnitFixture.decision(false, 3, 0, 1000, 334))
        #expect(try fixture.reply("TAKE api user:1\r\n") == UnitFixture.decision(false, 3, 0, 1000, 334))
        #expect(fixture.processor.batch.allowed == 3)
        #expect(fixture.processor.batch.denied == 2)
        #expect(fixture.processor.batch.commands == 5)

        // 333 ms later the next token is still 0.33 ms away.
        fixture.clock.advance(by: .milliseconds(333))
        #expect(try fixture.reply("TAKE api user:1\r\n") == UnitFixture.decision(false, 3, 0, 667, 1))
        fixture.clock.advance(by: .milliseconds(1))
        #expect(try fixture.reply("TAKE api user:1\r\n") == UnitFixture.decision(true, 3, 0, 1000, 0))
        // That token came 0.67 ms early, so the next one is 332.67 ms away.
        #expect(try fixture.reply("TAKE api user:1\r\n") == UnitFixture.decision(false, 3, 0, 1000, 333))

        // A full period refills the bucket completely.
        fixture.clock.advance(by: .seconds(1))
        #expect(try fixture.reply("TAKE api user:1\r\n") == UnitFixture.decision(true, 3, 2, 334, 0))
        // Other keys never shared the bucket.
        #expect(try fixture.reply("TAKE api user:2\r\n") == UnitFixture.decision(true, 3, 2, 334, 0))
    }

    @Test func fixedWindowUntilDeniedThenNextWindow() throws {
        var fixture = try UnitFixture()
        // The manual clock starts on a minute boundary.
        #expect(try fixture.reply("TAKE win k\r\n") == UnitFixture.decision(true, 2, 1, 60_000, 0))
        fixture.clock.advance(by: .milliseconds(59_000))
        #expect(try fixture.reply("TAKE win k\r\n") == UnitFixture.decision(true, 2, 0, 1000, 0))
        #expect(try fixture.reply("TAKE win k\r\n") == UnitFixture.decision(false, 2, 0, 1000, 1000))
        fixture.clock.advance(by: .milliseconds(999))
        #expect(try fixture.reply("TAKE win k\r\n") == UnitFixture.decision(false, 2, 0, 1, 1))
        fixture.clock.advance(by: .milliseconds(1))
        #expect(try fixture.reply("TAKE win k\r\n") == UnitFixture.decision(true, 2, 1, 60_000, 0))
    }

    @Test func peekConsumesNothing() throws {
        var fixture = try UnitFixture()
        for _ in 0..<5 {
            #expect(try fixture.reply("PEEK api k\r\n") == UnitFixture.decision(true, 3, 2, 334, 0))
        }
        #expect(try fixture.reply("PEEK api k 3\r\n") == UnitFixture.decision(true, 3, 0, 1000, 0))
        #expect(try fixture.reply("TAKE api k\r\n") == UnitFixture.decision(true, 3, 2, 334, 0))
        #expect(try fixture.reply("PEEK api k\r\n") == UnitFixture.decision(true, 3, 1, 667, 0))
        #expect(try fixture.reply("PEEK api k 3\r\n") == UnitFixture.decision(false, 3, 2, 334, 334))
        #expect(try fixture.reply("TAKE api k 2\r\n") == UnitFixture.decision(true, 3, 0, 1000, 0))
        #expect(try fixture.reply("PEEK api k\r\n") == UnitFixture.decision(false, 3, 0, 1000, 334))
        #expect(try fixture.reply("PEEK api k\r\n") == UnitFixture.decision(false, 3, 0, 1000, 334))
        // Peeks are counted as decisions too.
        #expect(fixture.processor.batch.allowed == 9)
        #expect(fixture.processor.batch.denied == 3)
    }

    @Test func costArgument() throws {
        var fixture = try UnitFixture()
        #expect(try fixture.reply("TAKE api k 2\r\n") == UnitFixture.decision(true, 3, 1, 667, 0))
        #expect(try fixture.reply("TAKE api k 2\r\n") == UnitFixture.decision(false, 3, 1, 667, 334))
        #expect(try fixture.reply("TAKE api k 1\r\n") == UnitFixture.decision(true, 3, 0, 1000, 0))
        // More than the capacity can never pass: retry -1.
        #expect(try fixture.reply("TAKE api k 4\r\n") == UnitFixture.decision(false, 3, 0, 1000, -1))
        #expect(try fixture.reply("TAKE api fresh 4\r\n") == UnitFixture.decision(false, 3, 3, 0, -1))
        #expect(try fixture.reply("PEEK api fresh 4\r\n") == UnitFixture.decision(false, 3, 3, 0, -1))
        #expect(try fixture.reply("TAKE win fresh 3\r\n") == UnitFixture.decision(false, 2, 2, 0, -1))
        #expect(try fixture.reply("TAKE api fresh 3\r\n") == UnitFixture.decision(true, 3, 0, 1000, 0))
    }

    @Test func keysWithSpacesArriveAsRESPArrays() throws {
        var fixture = try UnitFixture()
        #expect(try fixture.reply(UnitRESP.array(["TAKE", "api", "k k", "2"])) == UnitFixture.decision(true, 3, 1, 667, 0))
        #expect(try fixture.reply("TAKE api k\r\n") == UnitFixture.decision(true, 3, 2, 334, 0))
    }

    @Test func timeAdvancingRefills() throws {
        var fixture = try UnitFixture()
        #expect(try fixture.reply("TAKE api k 3\r\n") == UnitFixture.decision(true, 3, 0, 1000, 0))
        #expect(try fixture.reply("PEEK api k\r\n") == UnitFixture.decision(false, 3, 0, 1000, 334))
        fixture.clock.advance(by: .milliseconds(334))
        #expect(try fixture.reply("PEEK api k\r\n") == UnitFixture.decision(true, 3, 0, 1000, 0))
        fixture.clock.advance(by: .milliseconds(333))
        #expect(try fixture.reply("PEEK api k\r\n") == UnitFixture.decision(true, 3, 1, 667, 0))
        fixture.clock.advance(by: .milliseconds(333))
        #expect(try fixture.reply("PEEK api k\r\n") == UnitFixture.decision(true, 3, 2, 334, 0))
        fixture.clock.advance(by: .seconds(10))
        #expect(try fixture.reply("TAKE api k 3\r\n") == UnitFixture.decision(true, 3, 0, 1000, 0))
    }

    @Test func commandsOfOneBatchShareOneTime() throws {
        var fixture = try UnitFixture()
        let (reply, action) = try fixture.run("TAKE api k\r\nTAKE api k\r\nTAKE api k\r\nTAKE api k\r\n")
        #expect(action == .proceed)
        #expect(
            reply == UnitFixture.decision(true, 3, 2, 334, 0) + UnitFixture.decision(true, 3, 1, 667, 0) + UnitFixture.decision(true, 3, 0, 1000, 0)
                + UnitFixture.decision(false, 3, 0, 1000, 334)
        )
    }

    // MARK: THROTTLE

    @Test(
        arguments: [
            ("THROTTLE k 5 10s\r\n", UnitFixture.decision(true, 5, 4, 2000, 0)),
            ("THROTTLE k 5 10000\r\n", UnitFixture.decision(true, 5, 4, 2000, 0)),
            ("THROTTLE k 5 10s 3\r\n", UnitFixture.decision(true, 5, 2, 6000, 0)),
            ("THROTTLE k 5 10000 3\r\n", UnitFixture.decision(true, 5, 2, 6000, 0)),
            ("THROTTLE k 5 10s token_bucket\r\n", UnitFixture.decision(true, 5, 4, 2000, 0)),
            ("THROTTLE k 5 10s TOKEN_BUCKET\r\n", UnitFixture.decision(true, 5, 4, 2000, 0)),
            ("THROTTLE k 5 10s fixed_window\r\n", UnitFixture.decision(true, 5, 4, 10_000, 0)),
            ("THROTTLE k 5 10s 3 fixed_window\r\n", UnitFixture.decision(true, 5, 2, 10_000, 0)),
            ("THROTTLE k 5 1m 2 sliding_window\r\n", UnitFixture.decision(true, 5, 3, 120_000, 0)),
            ("THROTTLE k 5 250ms\r\n", UnitFixture.decision(true, 5, 4, 50, 0)),
            ("THROTTLE k 1 1d\r\n", UnitFixture.decision(true, 1, 0, 86_400_000, 0)),
            ("THROTTLE k 5 10s 6\r\n", UnitFixture.decision(false, 5, 5, 0, -1)),
            ("throttle k 5 10s 5 Fixed_Window\r\n", UnitFixture.decision(true, 5, 0, 10_000, 0)),
        ]
    )
    func throttle(command: String, expected: String) throws {
        var fixture = try UnitFixture()
        #expect(try fixture.reply(command) == expected)
    }

    @Test func throttleUntilDenied() throws {
        var fixture = try UnitFixture()
        #expect(try fixture.reply("THROTTLE k 2 1s\r\n") == UnitFixture.decision(true, 2, 1, 500, 0))
        #expect(try fixture.reply("THROTTLE k 2 1000\r\n") == UnitFixture.decision(true, 2, 0, 1000, 0))
        #expect(try fixture.reply("THROTTLE k 2 1s\r\n") == UnitFixture.decision(false, 2, 0, 1000, 500))
        fixture.clock.advance(by: .milliseconds(500))
        #expect(try fixture.reply("THROTTLE k 2 1s\r\n") == UnitFixture.decision(true, 2, 0, 1000, 0))
        // A different limit is a different bucket, as is a different key.
        #expect(try fixture.reply("THROTTLE k 3 1s\r\n") == UnitFixture.decision(true, 3, 2, 334, 0))
        #expect(try fixture.reply("THROTTLE other 2 1s\r\n") == UnitFixture.decision(true, 2, 1, 500, 0))
        #expect(fixture.processor.batch.allowed == 5)
        #expect(fixture.processor.batch.denied == 1)
    }

    @Test func throttleBucketsAreSeparateFromPolicies() throws {
        var fixture = try UnitFixture()
        // Same numbers as policy `api`, but an inline limit never shares a policy's bucket.
        #expect(try fixture.reply("THROTTLE k 3 1s 3\r\n") == UnitFixture.decision(true, 3, 0, 1000, 0))
        #expect(try fixture.reply("TAKE api k\r\n") == UnitFixture.decision(true, 3, 2, 334, 0))
        #expect(try fixture.reply("THROTTLE k 3 1s\r\n") == UnitFixture.decision(false, 3, 0, 1000, 334))
    }

    @Test(
        arguments: [
            ("THROTTLE k 5 10x\r\n", "-ERR period '10x' is not a duration"),
            ("THROTTLE k 5 10\u{B5}s\r\n", "-ERR period"),
            ("THROTTLE k 5 0\r\n", "-ERR period '0' is not a duration"),
            ("THROTTLE k 5 -1s\r\n", "-ERR period"),
            ("THROTTLE k 5 1.5s\r\n", "-ERR period"),
            ("THROTTLE k 5 367d\r\n", "-ERR period must be from 1ms to 366d"),
            ("THROTTLE k 5 31622400001\r\n", "-ERR period must be from 1ms to 366d"),
            ("THROTTLE k 5 9223372036854775807\r\n", "-ERR period must be from 1ms to 366d"),
            ("THROTTLE k 5 99999999999999999999s\r\n", "-ERR period"),
            ("THROTTLE k 5 10s 1 leaky_bucket\r\n", "-ERR unknown algorithm 'leaky_bucket'"),
            ("THROTTLE k 5 10s leaky_bucket\r\n", "-ERR"),
            ("THROTTLE k 5 10s 1 1\r\n", "-ERR unknown algorithm '1'"),
            ("THROTTLE k 0 10s\r\n", "-ERR limit must be a positive integer, got '0'"),
            ("THROTTLE k -5 10s\r\n", "-ERR limit must be a positive integer, got '-5'"),
            ("THROTTLE k many 10s\r\n", "-ERR limit must be a positive integer, got 'many'"),
            ("THROTTLE k 4294967296 10s\r\n", "-ERR limit must be an integer from 1 to 4294967295"),
            ("THROTTLE k 16777216 10s sliding_window\r\n", "-ERR limit must be an integer from 1 to 16777215"),
            ("THROTTLE k 5 10s 0\r\n", "-ERR cost must be a positive integer, got '0'"),
            ("THROTTLE k 5 10s -1\r\n", "-ERR cost must be a positive integer, got '-1'"),
            ("THROTTLE k 5 10s 0 token_bucket\r\n", "-ERR cost must be a positive integer, got '0'"),
        ]
    )
    func throttleErrors(command: String, expectedPrefix: String) throws {
        var fixture = try UnitFixture()
        let reply = try fixture.reply(command)
        #expect(reply.hasPrefix(expectedPrefix), "\(reply)")
        #expect(reply.hasSuffix("\r\n"))
        #expect(reply.utf8.count(where: { $0 == UInt8(ascii: "\n") }) == 1)
        #expect(fixture.processor.batch.allowed + fixture.processor.batch.denied == 0)
    }

    // MARK: MTAKE

    @Test func mtakeAllowedChargesEveryCheck() throws {
        var fixture = try UnitFixture()
        #expect(
            try fixture.reply("MTAKE api u 1 win u 1\r\n")
                == "*3\r\n:1\r\n" + UnitFixture.decision(true, 3, 2, 334, 0) + UnitFixture.decision(true, 2, 1, 60_000, 0)
        )
        #expect(try fixture.reply("PEEK api u\r\n") == UnitFixture.decision(true, 3, 1, 667, 0))
        #expect(try fixture.reply("PEEK win u\r\n") == UnitFixture.decision(true, 2, 0, 60_000, 0))
        #expect(fixture.processor.batch.allowed == 3)
    }

    @Test func mtakeIsAllOrNothing() throws {
        var fixture = try UnitFixture()
        #expect(try fixture.reply("TAKE win u 2\r\n") == UnitFixture.decision(true, 2, 0, 60_000, 0))
        fixture.processor.batch = ServerStatistics.Batch()
        // The second check denies: the first one's charge is given back, and its decision shows what it would answer.
        #expect(
            try fixture.reply("MTAKE api u 1 win u 1\r\n")
                == "*3\r\n:0\r\n" + UnitFixture.decision(true, 3, 2, 334, 0) + UnitFixture.decision(false, 2, 0, 60_000, 60_000)
        )
        #expect(fixture.processor.batch.denied == 1)
        #expect(fixture.processor.batch.allowed == 0)
        // The bucket of `api` is untouched: still full.
        #expect(try fixture.reply("PEEK api u 3\r\n") == UnitFixture.decision(true, 3, 0, 1000, 0))
        // Denial by the first check: the second check is reported, and nothing is consumed either.
        #expect(
            try fixture.reply("MTAKE win u 1 api u 1\r\n")
                == "*3\r\n:0\r\n" + UnitFixture.decision(false, 2, 0, 60_000, 60_000) + UnitFixture.decision(true, 3, 2, 334, 0)
        )
        #expect(try fixture.reply("PEEK api u 3\r\n") == UnitFixture.decision(true, 3, 0, 1000, 0))
        // Repeating a denied MTAKE never drains the first bucket.
        for _ in 0..<5 { try fixture.run("MTAKE api u 1 win u 1\r\n") }
        #expect(try fixture.reply("TAKE api u 3\r\n") == UnitFixture.decision(true, 3, 0, 1000, 0))
    }

    @Test func mtakeCostExceedingCapacityDeniesWithoutCharging() throws {
        var fixture = try UnitFixture()
        #expect(
            try fixture.reply("MTAKE api u 2 win u 3\r\n")
                == "*3\r\n:0\r\n" + UnitFixture.decision(true, 3, 1, 667, 0) + UnitFixture.decision(false, 2, 2, 0, -1)
        )
        #expect(try fixture.reply("PEEK api u 3\r\n") == UnitFixture.decision(true, 3, 0, 1000, 0))
    }

    @Test func mtakeArgumentErrorsChargeNothing() throws {
        var fixture = try UnitFixture()
        #expect(try fixture.reply("MTAKE api u 1 nope u 1\r\n") == "-ERR unknown policy 'nope'\r\n")
        #expect(try fixture.reply("MTAKE api u 1 win u x\r\n") == "-ERR cost must be a positive integer, got 'x'\r\n")
        #expect(try fixture.reply(UnitRESP.array(["MTAKE", "api", "u", "1", "win", "", "1"])) == "-ERR key must not be empty\r\n")
        #expect(try fixture.reply("PEEK api u 3\r\n") == UnitFixture.decision(true, 3, 0, 1000, 0))
        #expect(fixture.processor.batch.allowed == 1)
        #expect(fixture.processor.batch.denied == 0)
    }

    // MARK: RESET

    @Test func resetRestoresTheBucket() throws {
        var fixture = try UnitFixture()
        #expect(try fixture.reply("RESET api k\r\n") == ":0\r\n")
        try fixture.run("TAKE api k 3\r\n")
        #expect(try fixture.reply("TAKE api k\r\n") == UnitFixture.decision(false, 3, 0, 1000, 334))
        #expect(try fixture.reply("RESET api k\r\n") == ":1\r\n")
        #expect(try fixture.reply("PEEK api k 3\r\n") == UnitFixture.decision(true, 3, 0, 1000, 0))
        #expect(try fixture.reply("TAKE api k\r\n") == UnitFixture.decision(true, 3, 2, 334, 0))
        // Only that policy's bucket for that key is reset.
        try fixture.run("TAKE win k 2\r\nTAKE win j 2\r\n")
        #expect(try fixture.reply("reset win k\r\n") == ":1\r\n")
        #expect(try fixture.reply("PEEK win k\r\n") == UnitFixture.decision(true, 2, 1, 60_000, 0))
        #expect(try fixture.reply("PEEK win j\r\n") == UnitFixture.decision(false, 2, 0, 60_000, 60_000))
        #expect(try fixture.reply("PEEK api k\r\n") == UnitFixture.decision(true, 3, 1, 667, 0))
        #expect(try fixture.reply("RESET win never-seen\r\n") == ":0\r\n")
    }

    // MARK: Shadow mode

    @Test func shadowPolicyAlwaysAllowsButCounts() throws {
        var fixture = try UnitFixture()
        #expect(try fixture.reply("TAKE shadowed k\r\n") == UnitFixture.decision(true, 1, 0, 60_000, 0))
        #expect(try fixture.reply("TAKE shadowed k\r\n") == UnitFixture.decision(true, 1, 0, 60_000, 0))
        #expect(try fixture.reply("TAKE shadowed k 5\r\n") == UnitFixture.decision(true, 1, 0, 60_000, 0))
        #expect(try fixture.reply("PEEK shadowed k\r\n") == UnitFixture.decision(true, 1, 0, 60_000, 0))
        #expect(fixture.processor.batch.allowed == 1)
        #expect(fixture.processor.batch.shadowDenied == 3)
        #expect(fixture.processor.batch.denied == 0)
    }

    @Test func shadowDenialsInMtakeAreCountedAndDoNotDeny() throws {
        var fixture = try UnitFixture()
        try fixture.run("TAKE shadowed k\r\n")
        fixture.processor.batch = ServerStatistics.Batch()
        #expect(
            try fixture.reply("MTAKE shadowed k 1 api k 1\r\n")
                == "*3\r\n:1\r\n" + UnitFixture.decision(true, 1, 0, 60_000, 0) + UnitFixture.decision(true, 3, 2, 334, 0)
        )
        #expect(fixture.processor.batch.allowed == 1)
        #expect(fixture.processor.batch.shadowDenied == 1)
        #expect(fixture.processor.batch.denied == 0)
        // The enforced check was charged.
        #expect(try fixture.reply("PEEK api k\r\n") == UnitFixture.decision(true, 3, 1, 667, 0))
    }

    // MARK: Connection commands

    @Test(
        arguments: [
            ("PING\r\n", "+PONG\r\n"),
            ("ping\r\n", "+PONG\r\n"),
            ("PING hello\r\n", "$5\r\nhello\r\n"),
            (UnitRESP.array(["PING", "a b\r\nc"]), "$6\r\na b\r\nc\r\n"),
            ("ECHO hi\r\n", "$2\r\nhi\r\n"),
            (UnitRESP.array(["ECHO", ""]), "$0\r\n\r\n"),
            ("SELECT 0\r\n", "+OK\r\n"),
            ("SELECT 1\r\n", "-ERR DB index is out of range\r\n"),
            ("select x\r\n", "-ERR DB index is out of range\r\n"),
            ("COMMAND\r\n", "*0\r\n"),
            ("COMMAND DOCS\r\n", "*0\r\n"),
            ("command docs TAKE\r\n", "*0\r\n"),
            ("COMMAND COUNT\r\n", ":0\r\n"),
            ("CONFIG GET save\r\n", "*0\r\n"),
            ("config get appendonly\r\n", "*0\r\n"),
            ("CONFIG SET save x\r\n", "-ERR CONFIG supports only GET, which returns no settings\r\n"),
            ("CONFIG\r\n", "-ERR CONFIG supports only GET, which returns no settings\r\n"),
            ("CLIENT SETINFO LIB-NAME redis-py\r\n", "+OK\r\n"),
            ("CLIENT SETINFO LIB-VER 6.0.0\r\n", "+OK\r\n"),
            ("CLIENT MAINT_NOTIFICATIONS on moving-endpoint-type internal-ip\r\n", "+OK\r\n"),
            ("CLIENT NO-EVICT on\r\n", "+OK\r\n"),
            ("CLIENT ID\r\n", ":7\r\n"),
            ("client id\r\n", ":7\r\n"),
            ("CLIENT GETNAME\r\n", "$-1\r\n"),
            ("CLIENT SETNAME app\r\n", "+OK\r\n"),
            ("CLIENT KILL ID 1\r\n", "-ERR unknown subcommand 'KILL'. Try CLIENT HELP.\r\n"),
            ("CLIENT LIST\r\n", "-ERR unknown subcommand 'LIST'. Try CLIENT HELP.\r\n"),
        ]
    )
    func connectionCommands(command: String, expected: String) throws {
        var fixture = try UnitFixture()
        let (reply, action) = try fixture.run(command)
        #expect(reply == expected)
        #expect(action == .proceed)
    }

    @Test func quitRepliesOkAndCloses() throws {
        var fixture = try UnitFixture()
        let (reply, action) = try fixture.run("QUIT\r\n")
        #expect(reply == "+OK\r\n")
        #expect(action == .close)
        #expect(try fixture.run("quit\r\n").action == .close)
        #expect(try fixture.run("PING\r\n").action == .proceed)
    }

    @Test func clientName() throws {
        var fixture = try UnitFixture()
        #expect(try fixture.reply("CLIENT GETNAME\r\n") == "$-1\r\n")
        #expect(try fixture.reply("CLIENT SETNAME worker-1\r\n") == "+OK\r\n")
        #expect(try fixture.reply("CLIENT GETNAME\r\n") == "$8\r\nworker-1\r\n")
        #expect(try fixture.reply("client setname other\r\n") == "+OK\r\n")
        #expect(try fixture.reply("Client GetName\r\n") == "$5\r\nother\r\n")
    }

    static func helloReply(proto: Int) -> String {
        let header = proto == 3 ? "%7\r\n" : "*14\r\n"
        let version = LineCommandProcessor.version
        return header + "$6\r\nserver\r\n$6\r\nsluice\r\n$7\r\nversion\r\n$\(version.utf8.count)\r\n\(version)\r\n"
            + "$5\r\nproto\r\n:\(proto)\r\n$2\r\nid\r\n:7\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n"
            + "$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"
    }

    @Test func helloNegotiatesTheProtocol() throws {
        var fixture = try UnitFixture()
        #expect(try fixture.reply("HELLO\r\n") == Self.helloReply(proto: 2))
        #expect(!fixture.processor.resp3)
        #expect(try fixture.reply("HELLO 2\r\n") == Self.helloReply(proto: 2))
        #expect(!fixture.processor.resp3)
        #expect(try fixture.reply("HELLO 3\r\n") == Self.helloReply(proto: 3))
        #expect(fixture.processor.resp3)
        // RESP3 changes the null and the map replies.
        #expect(try fixture.reply("CLIENT GETNAME\r\n") == "_\r\n")
        #expect(try fixture.reply("COMMAND DOCS\r\n") == "%0\r\n")
        #expect(try fixture.reply("HELLO\r\n") == Self.helloReply(proto: 3))
        #expect(try fixture.reply("HELLO 2\r\n") == Self.helloReply(proto: 2))
        #expect(try fixture.reply("CLIENT GETNAME\r\n") == "$-1\r\n")
        // Decisions are the same in both protocols.
        #expect(try fixture.reply("HELLO 3\r\nTAKE api k\r\n") == Self.helloReply(proto: 3) + UnitFixture.decision(true, 3, 2, 334, 0))
    }

    @Test(arguments: ["HELLO 4\r\n", "HELLO 1\r\n", "HELLO 0\r\n", "HELLO three\r\n", "HELLO 9999999999999999999\r\n"])
    func helloRefusesOtherProtocols(command: String) throws {
        var fixture = try UnitFixture()
        try fixture.run("HELLO 3\r\n")
        #expect(try fixture.reply(command) == "-NOPROTO sorry, this protocol version is not supported\r\n")
        #expect(fixture.processor.resp3)
    }

    @Test func helloOptions() throws {
        var fixture = try UnitFixture()
        #expect(try fixture.reply("HELLO 3 SETNAME app\r\n") == Self.helloReply(proto: 3))
        #expect(try fixture.reply("CLIENT GETNAME\r\n") == "$3\r\napp\r\n")
        #expect(try fixture.reply("HELLO 2 AUTH default secret SETNAME other\r\n") == Self.helloReply(proto: 2))
        #expect(try fixture.reply("CLIENT GETNAME\r\n") == "$5\r\nother\r\n")
    }

    @Test(arguments: ["HELLO 3 BOGUS\r\n", "HELLO 3 SETNAME\r\n", "HELLO 3 AUTH user\r\n", "HELLO 3 SETNAME changed BOGUS\r\n"])
    func failedHelloChangesNothing(command: String) throws {
        var fixture = try UnitFixture()
        try fixture.run("CLIENT SETNAME before\r\n")
        let reply = try fixture.reply(command)
        #expect(reply.hasPrefix("-ERR syntax error in HELLO option"), "\(reply)")
        // As in Redis, a refused HELLO leaves the protocol (and the name) as they were.
        #expect(!fixture.processor.resp3)
        #expect(try fixture.reply("CLIENT GETNAME\r\n") == "$6\r\nbefore\r\n")
        #expect(try fixture.reply("COMMAND DOCS\r\n") == "*0\r\n")
    }

    @Test func infoReportsCounters() throws {
        var fixture = try UnitFixture()
        try fixture.run("TAKE api k\r\nTAKE api k\r\nTAKE win k 3\r\nTAKE shadowed k\r\nTAKE shadowed k\r\n")
        fixture.context.statistics.add(fixture.processor.batch)
        let reply = try fixture.reply("INFO\r\n")
        let body = try #require(reply.split(separator: "\r\n", maxSplits: 1, omittingEmptySubsequences: false).last)
        #expect(reply.hasPrefix("$\(body.utf8.count - 2)\r\n"), "the bulk length covers the body")
        #expect(reply.hasSuffix("\r\n\r\n"))
        for line in [
            "# Server", "sluice_version:\(LineCommandProcessor.version)", "decisions_allowed:3", "decisions_denied:1",
            "decisions_shadow_denied:1", "total_commands_processed:5", "protocol_errors:0", "keys:2", "max_keys:10000",
            "policies:3",
        ] {
            #expect(reply.contains("\r\n\(line)\r\n") || reply.hasPrefix("$\(body.utf8.count - 2)\r\n\(line)\r\n"), "\(line)")
        }
        #expect(try fixture.reply("info everything\r\n").contains("decisions_allowed:3\r\n"))
    }

    // MARK: Errors

    @Test(
        arguments: [
            ("FLUSHALL\r\n", "-ERR unknown command 'FLUSHALL', with args beginning with:\r\n"),
            ("SET a b c d\r\n", "-ERR unknown command 'SET', with args beginning with: 'a' 'b' 'c'\r\n"),
            ("GET k\r\n", "-ERR unknown command 'GET', with args beginning with: 'k'\r\n"),
            ("TAKEX api k\r\n", "-ERR unknown command 'TAKEX', with args beginning with: 'api' 'k'\r\n"),
            (UnitRESP.array(["BAD\r\nCMD", "x"]), "-ERR unknown command 'BAD  CMD', with args beginning with: 'x'\r\n"),
            (UnitRESP.array([""]), "-ERR unknown command '', with args beginning with:\r\n"),
        ]
    )
    func unknownCommand(command: String, expected: String) throws {
        var fixture = try UnitFixture()
        let (reply, action) = try fixture.run(command)
        #expect(reply == expected)
        #expect(action == .proceed)
    }

    @Test func longInputIsShortenedInErrors() throws {
        var fixture = try UnitFixture()
        let name = String(repeating: "x", count: 100)
        #expect(try fixture.reply("TAKE \(name) k\r\n") == "-ERR unknown policy '\(String(repeating: "x", count: 64))...'\r\n")
    }

    @Test(
        arguments: [
            ("TAKE\r\n", "take"), ("TAKE api\r\n", "take"), ("take api k 1 2\r\n", "take"),
            ("PEEK api\r\n", "peek"), ("PEEK api k 1 2\r\n", "peek"),
            ("MTAKE\r\n", "mtake"), ("MTAKE api k\r\n", "mtake"), ("MTAKE api k 1 win\r\n", "mtake"),
            ("MTAKE api k 1 win k\r\n", "mtake"), ("MTAKE api k 1 2\r\n", "mtake"),
            ("THROTTLE\r\n", "throttle"), ("THROTTLE k 1\r\n", "throttle"),
            ("THROTTLE k 1 1s 1 token_bucket extra\r\n", "throttle"),
            ("RESET\r\n", "reset"), ("RESET api\r\n", "reset"), ("RESET api k 1\r\n", "reset"),
            ("PING a b\r\n", "ping"), ("ECHO\r\n", "echo"), ("ECHO a b\r\n", "echo"),
            ("SELECT\r\n", "select"), ("SELECT 0 1\r\n", "select"), ("CLIENT\r\n", "client"),
        ]
    )
    func wrongArity(command: String, name: String) throws {
        var fixture = try UnitFixture()
        let (reply, action) = try fixture.run(command)
        #expect(reply == "-ERR wrong number of arguments for '\(name)' command\r\n")
        #expect(action == .proceed)
        #expect(fixture.processor.batch.commands == 1)
    }

    @Test(arguments: ["TAKE nope k\r\n", "PEEK nope k\r\n", "RESET nope k\r\n", "MTAKE nope k 1\r\n", "TAKE API k\r\n"])
    func unknownPolicy(command: String) throws {
        var fixture = try UnitFixture()
        let name = try UnitRESP.command(command).string(1)
        #expect(try fixture.reply(command) == "-ERR unknown policy '\(name)'\r\n")
    }

    @Test(arguments: ["0", "-1", "abc", "1.5", "+1", "1e3", "99999999999999999999", "9999999999999999999", "9223372036854775808"])
    func invalidCost(cost: String) throws {
        var fixture = try UnitFixture()
        let expected = "-ERR cost must be a positive integer, got '\(cost)'\r\n"
        #expect(try fixture.reply("TAKE api k \(cost)\r\n") == expected)
        #expect(try fixture.reply("PEEK api k \(cost)\r\n") == expected)
        #expect(try fixture.reply("MTAKE api k \(cost)\r\n") == expected)
        #expect(try fixture.reply("THROTTLE k 5 1s \(cost)\r\n") == expected)
        #expect(try fixture.reply(UnitRESP.array(["TAKE", "api", "k", ""])) == "-ERR cost must be a positive integer, got ''\r\n")
        #expect(fixture.processor.batch.allowed + fixture.processor.batch.denied == 0)
    }

    @Test func hugeCostsThatParseCanNeverPass() throws {
        var fixture = try UnitFixture()
        #expect(try fixture.reply("TAKE api k 9223372036854775807\r\n") == UnitFixture.decision(false, 3, 3, 0, -1))
        #expect(try fixture.reply("TAKE win k 9223372036854775807\r\n") == UnitFixture.decision(false, 2, 2, 0, -1))
        #expect(try fixture.reply("THROTTLE k 5 1s 9223372036854775807 sliding_window\r\n") == UnitFixture.decision(false, 5, 5, 0, -1))
    }

    @Test(
        arguments: [
            ["TAKE", "api", ""], ["PEEK", "api", "", "1"], ["RESET", "api", ""], ["THROTTLE", "", "5", "1s"],
            ["MTAKE", "api", "", "1"],
        ]
    )
    func emptyKey(arguments: [String]) throws {
        var fixture = try UnitFixture()
        #expect(try fixture.reply(UnitRESP.array(arguments)) == "-ERR key must not be empty\r\n")
    }

    @Test func keyLengthIsCapped() throws {
        var fixture = try UnitFixture(maximumKeyBytes: 8)
        let error = "-ERR key is 9 bytes, longer than the limit of 8\r\n"
        #expect(try fixture.reply("TAKE api 123456789\r\n") == error)
        #expect(try fixture.reply("PEEK api 123456789\r\n") == error)
        #expect(try fixture.reply("RESET api 123456789\r\n") == error)
        #expect(try fixture.reply("THROTTLE 123456789 5 1s\r\n") == error)
        #expect(try fixture.reply("MTAKE api k 1 win 123456789 1\r\n") == error)
        // Bytes, not characters: four two-byte characters plus one byte.
        #expect(try fixture.reply(UnitRESP.array(["TAKE", "api", "\u{E9}\u{E9}\u{E9}\u{E9}x"])) == error)
        #expect(try fixture.reply("TAKE api 12345678\r\n") == UnitFixture.decision(true, 3, 2, 334, 0))
        // The MTAKE above charged nothing for its valid first check.
        #expect(try fixture.reply("PEEK api k 3\r\n") == UnitFixture.decision(true, 3, 0, 1000, 0))
    }

    @Test(arguments: [("TAKE", "PEEK", "MTAKE"), ("take", "peek", "mtake"), ("Take", "Peek", "mTake"), ("tAKE", "pEeK", "MtAkE")])
    func commandNamesIgnoreCase(take: String, peek: String, mtake: String) throws {
        var fixture = try UnitFixture()
        #expect(try fixture.reply("\(take) api k\r\n") == UnitFixture.decision(true, 3, 2, 334, 0))
        #expect(try fixture.reply("\(peek) api k\r\n") == UnitFixture.decision(true, 3, 1, 667, 0))
        #expect(try fixture.reply("\(mtake) api k 1\r\n") == "*2\r\n:1\r\n" + UnitFixture.decision(true, 3, 1, 667, 0))
        #expect(try fixture.reply("ReSeT api k\r\n") == ":1\r\n")
        #expect(try fixture.reply("tHrOtTlE k 1 1s\r\n") == UnitFixture.decision(true, 1, 0, 1000, 0))
    }

    @Test func policyNamesAreCaseSensitive() throws {
        var fixture = try UnitFixture()
        #expect(try fixture.reply("TAKE Api k\r\n") == "-ERR unknown policy 'Api'\r\n")
    }

    @Test func errorsKeepTheConnectionOpenAndLaterCommandsRun() throws {
        var fixture = try UnitFixture()
        let (reply, action) = try fixture.run("NOPE\r\nTAKE nope k\r\nTAKE api k 0\r\nTAKE api k\r\n")
        #expect(action == .proceed)
        #expect(
            reply == "-ERR unknown command 'NOPE', with args beginning with:\r\n-ERR unknown policy 'nope'\r\n"
                + "-ERR cost must be a positive integer, got '0'\r\n" + UnitFixture.decision(true, 3, 2, 334, 0)
        )
        #expect(fixture.processor.batch.commands == 4)
    }

    // MARK: Reload

    @Test func reloadedPoliciesApplyAfterRefresh() throws {
        var fixture = try UnitFixture()
        try fixture.run("TAKE api k\r\n")
        let reloaded = try PolicySet([
            Policy(name: "api", rateLimit: RateLimit(algorithm: .tokenBucket, limit: 3, periodNanoseconds: 1_000_000_000)),
            Policy(name: "fresh", rateLimit: RateLimit(algorithm: .fixedWindow, limit: 9, periodNanoseconds: 1_000_000_000)),
        ])
        fixture.context.registry.replace(with: reloaded)
        // Until the handler refreshes (once per read), the connection keeps its set.
        #expect(try fixture.reply("TAKE fresh k\r\n") == "-ERR unknown policy 'fresh'\r\n")
        fixture.processor.refreshPolicies()
        #expect(try fixture.reply("TAKE fresh k\r\n") == UnitFixture.decision(true, 9, 8, 1000, 0))
        #expect(try fixture.reply("TAKE win k\r\n") == "-ERR unknown policy 'win'\r\n")
        // An unchanged policy keeps its buckets.
        #expect(try fixture.reply("TAKE api k\r\n") == UnitFixture.decision(true, 3, 1, 667, 0))
    }
}
