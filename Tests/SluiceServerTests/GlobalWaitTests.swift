import SluiceConfig
import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import SluiceCore
import Synchronization
import Testing

@testable import SluiceServer

/// A global limiter whose every decision waits until the test answers it: a scripted stand-in for Redis,
/// for the handlers' waiting state machine. (Redis itself is exercised by SluiceRedisTests and the
/// executable tests.)
final class ScriptedGlobalLimiter: GlobalLimiter {
    let waiting = Locked<[PendingDecision]>([])
    let refunds = Atomic<Int>(0)
    let timeout: Duration = .milliseconds(50)

    func decide(_ check: Check, policy: Policy, key: UnsafeRawBufferPointer, now: Timestamp, consume: Bool) -> GlobalDecision {
        let pending = PendingDecision { _ in
            // The failure policy of these tests: deny.
            (
                Decision(outcome: .denied, limit: check.rateLimit.capacity, remaining: 0, resetAfterNanoseconds: 1_000_000_000, retryAfterNanoseconds: 1_000_000_000)
                    .answering(check), nil
            )
        }
        waiting.withLock { $0.append(pending) }
        return .pending(pending)
    }

    func refund(_ check: Check, policy: Policy, key: UnsafeRawBufferPointer, charge: GlobalCharge, now: Timestamp) {
        refunds.add(1, ordering: .relaxed)
    }

    func status() -> GlobalLimiterStatus {
        GlobalLimiterStatus(
            isConnected: true, endpoint: "scripted", localDecisions: 0, redisDecisions: 0, fallbackDecisions: 0, leaseRequests: 0,
            strictCalls: 0, errors: 0, reconnections: 0, leases: 0
        )
    }

    /// Answers the oldest waiting decision (or the newest) as allowed, with `remaining` left.
    /// Resets are counted, and confirmed.
    let resets = Locked<Int>(0)

    func reset(_ check: Check, policy: Policy, key: [UInt8]) async -> Bool {
        resets.withLock { $0 += 1 }
        return true
    }

    func allowOldest(remaining: Int64 = 4, newest: Bool = false) {
        let pending = waiting.withLock { $0.isEmpty ? nil : newest ? $0.removeLast() : $0.removeFirst() }
        pending?.answer(
            Decision(outcome: .allowed, limit: 5, remaining: remaining, resetAfterNanoseconds: 60_000_000_000, retryAfterNanoseconds: 0),
            charge: GlobalCharge(fromLease: false, window: 0)
        )
    }

    /// Answers the oldest waiting decision as denied, taking nothing.
    func denyOldest() {
        let pending = waiting.withLock { $0.isEmpty ? nil : $0.removeFirst() }
        pending?.answer(
            Decision(outcome: .denied, limit: 5, remaining: 0, resetAfterNanoseconds: 1_000_000_000, retryAfterNanoseconds: 1_000_000_000)
        )
    }

    var count: Int { waiting.withLock { $0.count } }
}

struct GlobalWaitTests {

    static func context(_ global: ScriptedGlobalLimiter, clock: ManualClock) throws -> ServerContext {
        let policies = try PolicySet([
            Policy(name: "api", rateLimit: RateLimit(algorithm: .fixedWindow, limit: 3, periodNanoseconds: 60_000_000_000)),
            Policy(
                name: "g", rateLimit: RateLimit(algorithm: .fixedWindow, limit: 5, periodNanoseconds: 60_000_000_000),
                scope: .global(Policy.Global())
            ),
            Policy(
                name: "g2", rateLimit: RateLimit(algorithm: .fixedWindow, limit: 5, periodNanoseconds: 60_000_000_000),
                scope: .global(Policy.Global(sync: .strict))
            ),
        ])
        return ServerContext(
            limiter: RateLimiter(store: BucketStore(maximumKeys: 10_000), global: global), registry: PolicyRegistry(policies), clock: clock,
            logger: Logger(label: "sluice.tests.global")
        )
    }

    static func lineChannel(_ context: ServerContext) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(LineProtocolHandler(context: context, connectionID: 1))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 7379)).wait()
        return channel
    }

    static func writes(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    @Test func commandsPipelinedBehindAWaitingOneAreAnsweredAfterItInOrder() throws {
        let global = ScriptedGlobalLimiter()
        let channel = try Self.lineChannel(try Self.context(global, clock: ManualClock()))
        try channel.writeInbound(ByteBuffer(string: "PING\r\nTAKE g user\r\nPING\r\nTAKE api user\r\n"))
        // The reply before the waiting command is out; the replies after it wait for it.
        #expect(try Self.writes(channel) == "+PONG\r\n")
        #expect(global.count == 1)
        // More input while waiting is decided too (a second global decision waits alongside the first)...
        try channel.writeInbound(ByteBuffer(string: "TAKE api user\r\nTAKE g other\r\nECHO last\r\n"))
        #expect(global.count == 2)
        // ...and answering the second first writes nothing: the first still owes its reply.
        global.allowOldest(remaining: 3, newest: true)
        channel.embeddedEventLoop.run()
        #expect(try Self.writes(channel) == "")
        global.allowOldest()
        channel.embeddedEventLoop.run()
        #expect(
            try Self.writes(channel)
                == UnitFixture.decision(true, 5, 4, 60_000, 0) + "+PONG\r\n" + UnitFixture.decision(true, 3, 2, 60_000, 0) + UnitFixture.decision(true, 3, 1, 60_000, 0)
                + UnitFixture.decision(true, 5, 3, 60_000, 0) + "$4\r\nlast\r\n"
        )
        #expect(channel.isActive)
        #expect(try channel.finish().isClean)
    }

    @Test func aConnectionWaitsForAtMost128DecisionsThenStopsParsing() throws {
        let global = ScriptedGlobalLimiter()
        let channel = try Self.lineChannel(try Self.context(global, clock: ManualClock()))
        try channel.writeInbound(ByteBuffer(string: String(repeating: "TAKE g k\r\n", count: 130) + "PING\r\n"))
        #expect(global.count == 128)
        global.allowOldest()
        channel.embeddedEventLoop.run()
        // One answered: parsing resumes, and stops again at 128 waiting (the 129th command now waits).
        #expect(global.count == 128)
        while global.count > 0 {
            global.allowOldest()
            channel.embeddedEventLoop.run()
        }
        let written = try Self.writes(channel)
        #expect(written.hasSuffix("+PONG\r\n"))
        #expect(written.components(separatedBy: "*5\r\n").count - 1 == 130)
        #expect(try channel.finish().isClean)
    }

    @Test func quitAfterWaitingCommandsClosesOnceTheirRepliesAreOut() throws {
        let global = ScriptedGlobalLimiter()
        let channel = try Self.lineChannel(try Self.context(global, clock: ManualClock()))
        try channel.writeInbound(ByteBuffer(string: "TAKE g user\r\nQUIT\r\nPING\r\n"))
        #expect(channel.isActive)
        global.allowOldest()
        channel.embeddedEventLoop.run()
        #expect(try Self.writes(channel) == UnitFixture.decision(true, 5, 4, 60_000, 0) + "+OK\r\n")
        #expect(!channel.isActive)
    }

    @Test func anUnansweredDecisionFollowsTheFailurePolicyAfterTheTimeout() throws {
        let global = ScriptedGlobalLimiter()
        let channel = try Self.lineChannel(try Self.context(global, clock: ManualClock()))
        try channel.writeInbound(ByteBuffer(string: "TAKE g user\r\nPING\r\n"))
        #expect(try Self.writes(channel) == "")
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(49))
        #expect(try Self.writes(channel) == "")
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(try Self.writes(channel) == UnitFixture.decision(false, 5, 0, 1000, 1000) + "+PONG\r\n")
        // A late answer changes nothing.
        global.allowOldest()
        channel.embeddedEventLoop.run()
        #expect(try Self.writes(channel) == "")
        #expect(try channel.finish().isClean)
    }

    @Test func mtakeDecidesTheGlobalCheckFirstAndRefundsItWhenALocalOneDenies() throws {
        let global = ScriptedGlobalLimiter()
        let channel = try Self.lineChannel(try Self.context(global, clock: ManualClock()))
        try channel.writeInbound(ByteBuffer(string: "MTAKE g user 1 api user 1\r\n"))
        global.allowOldest()
        channel.embeddedEventLoop.run()
        #expect(try Self.writes(channel) == "*3\r\n:1\r\n" + UnitFixture.decision(true, 5, 4, 60_000, 0) + UnitFixture.decision(true, 3, 2, 60_000, 0))
        #expect(global.refunds.load(ordering: .relaxed) == 0)

        // api has 2 left; a cost of 3 denies after the global check allowed: the global charge goes back.
        try channel.writeInbound(ByteBuffer(string: "MTAKE g user 1 api user 3\r\n"))
        global.allowOldest(remaining: 3)
        channel.embeddedEventLoop.run()
        #expect(try Self.writes(channel) == "*3\r\n:0\r\n" + UnitFixture.decision(true, 5, 3, 60_000, 0) + UnitFixture.decision(false, 3, 2, 60_000, 60_000))
        #expect(global.refunds.load(ordering: .relaxed) == 1)
        // Nothing local was consumed by the denied request.
        try channel.writeInbound(ByteBuffer(string: "PEEK api user\r\n"))
        #expect(try Self.writes(channel) == UnitFixture.decision(true, 3, 1, 60_000, 0))

        // Two global policies in one request: both are asked at once; one denies, so the other's charge goes back.
        try channel.writeInbound(ByteBuffer(string: "MTAKE g user 1 g2 user 1\r\n"))
        #expect(global.count == 2)
        global.allowOldest(remaining: 2)
        channel.embeddedEventLoop.run()
        #expect(try Self.writes(channel) == "", "the reply waits for both")
        global.denyOldest()
        channel.embeddedEventLoop.run()
        #expect(try Self.writes(channel) == "*3\r\n:0\r\n" + UnitFixture.decision(true, 5, 2, 60_000, 0) + UnitFixture.decision(false, 5, 0, 1_000, 1_000))
        #expect(global.refunds.load(ordering: .relaxed) == 2)
        // Both allowed: the request passes.
        try channel.writeInbound(ByteBuffer(string: "MTAKE g user 1 g2 user 1\r\n"))
        global.allowOldest(remaining: 1)
        global.allowOldest(remaining: 4)
        channel.embeddedEventLoop.run()
        #expect(try Self.writes(channel) == "*3\r\n:1\r\n" + UnitFixture.decision(true, 5, 1, 60_000, 0) + UnitFixture.decision(true, 5, 4, 60_000, 0))
        #expect(global.count == 0)
        try channel.writeInbound(ByteBuffer(string: "RESET g user\r\n"))
        #expect(try Self.writes(channel).hasPrefix("-ERR policy 'g' is global"))
        #expect(try channel.finish().isClean)
    }

    @Test func httpRequestsPipelinedBehindAWaitingOneAreAnsweredInOrder() throws {
        let global = ScriptedGlobalLimiter()
        let context = try Self.context(global, clock: ManualClock())
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([
            HTTPServerHandler(processor: HTTPAPIProcessor(context: context), context: context),
        ])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 50_000)).wait()
        try channel.writeInbound(
            ByteBuffer(string: "GET /v1/check?policy=g&key=k HTTP/1.1\r\nHost: s\r\n\r\nGET /healthz HTTP/1.1\r\nHost: s\r\n\r\n")
        )
        #expect(try Self.writes(channel) == "")
        global.allowOldest()
        channel.embeddedEventLoop.run()
        let responses = try HTTPUnitWireResponse.parse(try Self.writes(channel))
        #expect(responses.map(\.status) == [200, 200])
        #expect(responses.first?.field("X-RateLimit-Remaining") == "4")
        #expect(responses.last?.body == #"{"status":"ok"}"#)

        // Unanswered: the failure policy (deny here) after the timeout, as a 429.
        try channel.writeInbound(ByteBuffer(string: "GET /v1/check?policy=g&key=k HTTP/1.1\r\nHost: s\r\n\r\n"))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(50))
        let denied = try HTTPUnitWireResponse.parse(try Self.writes(channel))
        #expect(denied.map(\.status) == [429])
        #expect(denied.first?.field("Retry-After") == "1")

        // A batch with a global item waits for it, and answers every item together, in order.
        let body = #"{"checks":[{"policy":"api","key":"k"},{"policy":"g","key":"k"},{"policy":"nope","key":"k"}]}"#
        try channel.writeInbound(ByteBuffer(string: "POST /v1/check/batch HTTP/1.1\r\nHost: s\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"))
        #expect(try Self.writes(channel) == "")
        global.allowOldest(newest: true)
        channel.embeddedEventLoop.run()
        let batch = try HTTPUnitWireResponse.parse(try Self.writes(channel))
        #expect(batch.map(\.status) == [207])
        let items = batch.first?.body.split(separator: "},{").map(String.init) ?? []
        #expect(items.count == 3, "three items in order: \(batch.first?.body ?? "")")
        #expect(items.first?.contains("\"status\":200") == true)
        #expect(items.dropFirst().first?.contains("\"status\":200") == true && items.dropFirst().first?.contains("\"policy\":\"g\"") == true)
        #expect(items.last?.contains("unknown_policy") == true)

        // Readiness and metrics show Redis.
        try channel.writeInbound(ByteBuffer(string: "GET /readyz HTTP/1.1\r\nHost: s\r\n\r\nGET /metrics HTTP/1.1\r\nHost: s\r\n\r\n"))
        let status = try HTTPUnitWireResponse.parse(try Self.writes(channel))
        #expect(status.first?.body.contains(#""redis":"up""#) == true)
        #expect(status.last?.body.contains("sluice_redis_up 1.0\n") == true)
        #expect(status.last?.body.contains("sluice_global_decisions_total{path=\"fallback\"} 0\n") == true)
        #expect(try channel.finish().isClean)
    }
}
