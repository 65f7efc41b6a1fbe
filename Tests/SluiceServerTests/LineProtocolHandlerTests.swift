import SluiceConfig
import Foundation
import NIOCore
import NIOEmbedded
import SluiceCore
import Testing

@testable import SluiceServer

struct LineProtocolHandlerTests {

    /// An active `EmbeddedChannel` with a ``LineProtocolHandler`` over `fixture`'s context.
    static func makeChannel(_ fixture: UnitFixture, limits: SluiceConfiguration.Limits = SluiceConfiguration.Limits()) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        let base = fixture.context
        let context = ServerContext(
            limiter: base.limiter, registry: base.registry, clock: base.clock, statistics: base.statistics, limits: limits, logger: base.logger
        )
        let handler = LineProtocolHandler(context: context, connectionID: UnitFixture.connectionID)
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 7379)).wait()
        return channel
    }

    /// Every outbound write so far, one string per write.
    static func writes(_ channel: EmbeddedChannel) throws -> [String] {
        var writes: [String] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { writes.append(String(buffer: buffer)) }
        return writes
    }

    static func read(_ channel: EmbeddedChannel, _ text: String) {
        channel.pipeline.syncOperations.fireChannelRead(NIOAny(ByteBuffer(string: text)))
    }

    // MARK: Batching

    @Test func pipelinedCommandsAreAnsweredInOneWriteAfterReadComplete() throws {
        let fixture = try UnitFixture()
        let channel = try Self.makeChannel(fixture)
        Self.read(channel, "TAKE api k\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nPEEK api k\n")
        // Nothing is written until the read is complete.
        #expect(try Self.writes(channel).isEmpty)
        channel.pipeline.syncOperations.fireChannelReadComplete()
        #expect(try Self.writes(channel) == [UnitFixture.decision(true, 3, 2, 334, 0) + "$2\r\nhi\r\n" + UnitFixture.decision(true, 3, 1, 667, 0)])
        #expect(channel.isActive)
        #expect(try channel.finish().isClean)
    }

    @Test func writeInboundDeliversReadAndReadComplete() throws {
        let fixture = try UnitFixture()
        let channel = try Self.makeChannel(fixture)
        try channel.writeInbound(ByteBuffer(string: "PING\r\nPING\r\nPING\r\n"))
        #expect(try Self.writes(channel) == ["+PONG\r\n+PONG\r\n+PONG\r\n"])
        // Replies are consumed, not passed on as inbound messages.
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
        try channel.writeInbound(ByteBuffer(string: "ECHO again\r\n"))
        #expect(try Self.writes(channel) == ["$5\r\nagain\r\n"])
        #expect(try channel.finish().isClean)
    }

    @Test func severalReadsBeforeReadCompleteShareOneWrite() throws {
        let fixture = try UnitFixture()
        let channel = try Self.makeChannel(fixture)
        Self.read(channel, "TAKE api k\r\n")
        Self.read(channel, "TAKE api k\r\n")
        Self.read(channel, "TAKE api k\r\nTAKE api k\r\n")
        channel.pipeline.syncOperations.fireChannelReadComplete()
        #expect(
            try Self.writes(channel) == [
                UnitFixture.decision(true, 3, 2, 334, 0) + UnitFixture.decision(true, 3, 1, 667, 0) + UnitFixture.decision(true, 3, 0, 1000, 0)
                    + UnitFixture.decision(false, 3, 0, 1000, 334)
            ]
        )
        // A read complete with nothing to say writes nothing.
        channel.pipeline.syncOperations.fireChannelReadComplete()
        #expect(try Self.writes(channel).isEmpty)
        try channel.writeInbound(ByteBuffer(string: "\r\n\r\n"))
        #expect(try Self.writes(channel).isEmpty)
        #expect(try channel.finish().isClean)
    }

    @Test func aLargePipelineIsOneWrite() throws {
        let fixture = try UnitFixture()
        let channel = try Self.makeChannel(fixture)
        let count = 500
        try channel.writeInbound(ByteBuffer(string: String(repeating: UnitRESP.array(["PING"]), count: count)))
        #expect(try Self.writes(channel) == [String(repeating: "+PONG\r\n", count: count)])
        #expect(fixture.context.statistics.snapshot().commands == count)
        #expect(try channel.finish().isClean)
    }

    // MARK: Frames split across reads

    @Test(
        arguments: [
            ["*3\r\n$4\r\nTAKE\r\n$3\r\nap", "i\r\n$1\r\nk\r\n"],
            ["TAKE ap", "i k\r\n"],
            ["TAKE api k\r", "\n"],
            ["*", "3\r", "\n$", "4\r\nTA", "KE\r\n$3\r\napi\r\n$1\r\nk", "\r", "\n"],
            ["\r\n", "\r\nTAKE", " api", " k", "\n"],
        ]
    )
    func framesSplitAcrossReadsStillDecode(chunks: [String]) throws {
        let fixture = try UnitFixture()
        let channel = try Self.makeChannel(fixture)
        for chunk in chunks.dropLast() {
            try channel.writeInbound(ByteBuffer(string: chunk))
            #expect(try Self.writes(channel).isEmpty, "after \(chunk.debugDescription)")
        }
        try channel.writeInbound(ByteBuffer(string: try #require(chunks.last)))
        #expect(try Self.writes(channel) == [UnitFixture.decision(true, 3, 2, 334, 0)])
        #expect(try channel.finish().isClean)
    }

    @Test func completeCommandsAreAnsweredWhileARestIsCarriedOver() throws {
        let fixture = try UnitFixture()
        let channel = try Self.makeChannel(fixture)
        try channel.writeInbound(ByteBuffer(string: "PING\r\nTA"))
        #expect(try Self.writes(channel) == ["+PONG\r\n"])
        try channel.writeInbound(ByteBuffer(string: "KE api k\r\n*2\r\n$4\r\nPEEK\r\n"))
        #expect(try Self.writes(channel) == [UnitFixture.decision(true, 3, 2, 334, 0)])
        try channel.writeInbound(ByteBuffer(string: "*3\r\n$4\r\nPEEK\r\n$3\r\napi\r\n$1\r\nk\r\n"))
        // The carried `*2 PEEK` header is followed by a `*` where a `$` belongs: broken framing.
        #expect(try Self.writes(channel) == ["-ERR Protocol error: expected '$', got '*'\r\n"])
        #expect(!channel.isActive)
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test func timeIsReadPerRead() throws {
        let fixture = try UnitFixture()
        let channel = try Self.makeChannel(fixture)
        try channel.writeInbound(ByteBuffer(string: "TAKE api k 3\r\nTAKE api k\r\n"))
        #expect(try Self.writes(channel) == [UnitFixture.decision(true, 3, 0, 1000, 0) + UnitFixture.decision(false, 3, 0, 1000, 334)])
        fixture.clock.advance(by: .milliseconds(334))
        // One token is back (0.67 ms early); the next one is 332.67 ms away.
        try channel.writeInbound(ByteBuffer(string: "TAKE api k\r\nTAKE api k\r\n"))
        #expect(try Self.writes(channel) == [UnitFixture.decision(true, 3, 0, 1000, 0) + UnitFixture.decision(false, 3, 0, 1000, 333)])
        #expect(try channel.finish().isClean)
    }

    // MARK: Closing

    @Test func quitClosesAfterTheReply() throws {
        let fixture = try UnitFixture()
        let channel = try Self.makeChannel(fixture)
        try channel.writeInbound(ByteBuffer(string: "PING\r\nQUIT\r\nTAKE api k\r\n"))
        // Commands after QUIT are not executed.
        #expect(try Self.writes(channel) == ["+PONG\r\n+OK\r\n"])
        #expect(!channel.isActive)
        #expect(try channel.finish(acceptAlreadyClosed: true).isClean)
        // TAKE after QUIT charged nothing.
        var processor = LineCommandProcessor(context: fixture.context, connectionID: 1)
        var output = ByteBuffer()
        _ = processor.execute(try UnitRESP.command("PEEK api k 3\r\n"), now: fixture.clock.now(), into: &output)
        #expect(String(buffer: output) == UnitFixture.decision(true, 3, 0, 1000, 0))
    }

    @Test func readsAfterQuitInTheSameBatchAreIgnored() throws {
        let fixture = try UnitFixture()
        let channel = try Self.makeChannel(fixture)
        Self.read(channel, "QUIT\r\n")
        Self.read(channel, "PING\r\n")
        channel.pipeline.syncOperations.fireChannelReadComplete()
        #expect(try Self.writes(channel) == ["+OK\r\n"])
        #expect(!channel.isActive)
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test(
        arguments: [
            ("PING\r\n*x\r\nPING\r\n", "+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n"),
            ("*1\r\n$-1\r\n", "-ERR Protocol error: invalid bulk length -1"),
            ("*1\r\n$65\r\n", "-ERR Protocol error: invalid bulk length 65, at most 64"),
            ("PING\r\nTAKE \u{01} k\r\n", "+PONG\r\n-ERR Protocol error: binary data"),
            (String(repeating: "a", count: 80), "-ERR Protocol error: inline command longer than 64 bytes"),
        ]
    )
    func protocolErrorRepliesAndCloses(input: String, expectedPrefix: String) throws {
        let fixture = try UnitFixture()
        let channel = try Self.makeChannel(fixture, limits: SluiceConfiguration.Limits(maxLineBytes: 64))
        try channel.writeInbound(ByteBuffer(string: input))
        let writes = try Self.writes(channel)
        #expect(writes.count == 1)
        let reply = try #require(writes.first)
        #expect(reply.hasPrefix(expectedPrefix), "\(reply)")
        #expect(reply.hasSuffix("\r\n"))
        #expect(!channel.isActive)
        #expect(fixture.context.statistics.snapshot().protocolErrors == 1)
        #expect(fixture.context.statistics.snapshot().connectionsOpen == 0)
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test func anOversizedLineSplitAcrossReadsIsRefused() throws {
        let fixture = try UnitFixture()
        let channel = try Self.makeChannel(fixture, limits: SluiceConfiguration.Limits(maxLineBytes: 64))
        try channel.writeInbound(ByteBuffer(string: "PING\r\n" + String(repeating: "a", count: 40)))
        #expect(try Self.writes(channel) == ["+PONG\r\n"])
        #expect(channel.isActive)
        try channel.writeInbound(ByteBuffer(string: String(repeating: "a", count: 40)))
        #expect(try Self.writes(channel) == ["-ERR Protocol error: inline command longer than 64 bytes\r\n"])
        #expect(!channel.isActive)
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test func gracefulShutdownClosesTheChannel() throws {
        let fixture = try UnitFixture()
        let channel = try Self.makeChannel(fixture)
        try channel.writeInbound(ByteBuffer(string: "PING\r\nTAKE api "))
        #expect(try Self.writes(channel) == ["+PONG\r\n"])
        channel.pipeline.syncOperations.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(!channel.isActive)
        // At most an empty flush goes out; the unfinished command is dropped.
        #expect(try Self.writes(channel).joined().isEmpty)
        #expect(fixture.context.statistics.snapshot().connectionsOpen == 0)
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test func otherUserEventsPassThrough() throws {
        final class Recorder: ChannelInboundHandler {
            typealias InboundIn = Never
            var events: [String] = []
            func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) { events.append("\(event)") }
        }
        let fixture = try UnitFixture()
        let channel = try Self.makeChannel(fixture)
        let recorder = Recorder()
        try channel.pipeline.syncOperations.addHandler(recorder)
        channel.pipeline.syncOperations.fireUserInboundEventTriggered("hello")
        #expect(recorder.events == ["hello"])
        #expect(channel.isActive)
        #expect(try channel.finish().isClean)
    }

    // MARK: Shared state

    @Test func statisticsAreAddedPerRead() throws {
        let fixture = try UnitFixture()
        let channel = try Self.makeChannel(fixture)
        #expect(fixture.context.statistics.snapshot().connectionsOpen == 1)
        #expect(fixture.context.statistics.snapshot().connectionsTotal == 1)
        Self.read(channel, "TAKE api k 3\r\nTAKE api k\r\nTAKE shadowed k\r\nTAKE shadowed k\r\nPING\r\n")
        #expect(fixture.context.statistics.snapshot().commands == 0)
        channel.pipeline.syncOperations.fireChannelReadComplete()
        let snapshot = fixture.context.statistics.snapshot()
        #expect(snapshot.commands == 5)
        #expect(snapshot.allowed == 2)
        #expect(snapshot.denied == 1)
        #expect(snapshot.shadowDenied == 1)
        _ = try Self.writes(channel)
        try channel.writeInbound(ByteBuffer(string: "INFO\r\n"))
        let info = try Self.writes(channel).joined()
        #expect(info.contains("decisions_allowed:2\r\n"))
        #expect(info.contains("connected_clients:1\r\n"))
        #expect(try channel.finish().isClean)
        #expect(fixture.context.statistics.snapshot().connectionsOpen == 0)
    }

    @Test func reloadedPoliciesApplyFromTheNextRead() throws {
        let fixture = try UnitFixture()
        let channel = try Self.makeChannel(fixture)
        try channel.writeInbound(ByteBuffer(string: "TAKE extra k\r\n"))
        #expect(try Self.writes(channel) == ["-ERR unknown policy 'extra'\r\n"])
        let policies = try UnitFixture.policies().policies + [
            Policy(name: "extra", rateLimit: RateLimit(algorithm: .fixedWindow, limit: 5, periodNanoseconds: 1_000_000_000))
        ]
        fixture.context.registry.replace(with: try PolicySet(policies))
        try channel.writeInbound(ByteBuffer(string: "TAKE extra k\r\n"))
        #expect(try Self.writes(channel) == [UnitFixture.decision(true, 5, 4, 1000, 0)])
        #expect(try channel.finish().isClean)
    }

    @Test func connectionsShareBuckets() throws {
        let fixture = try UnitFixture()
        let first = try Self.makeChannel(fixture)
        let second = try Self.makeChannel(fixture)
        try first.writeInbound(ByteBuffer(string: "TAKE win k\r\n"))
        try second.writeInbound(ByteBuffer(string: "TAKE win k\r\nTAKE win k\r\n"))
        #expect(try Self.writes(first) == [UnitFixture.decision(true, 2, 1, 60_000, 0)])
        #expect(try Self.writes(second) == [UnitFixture.decision(true, 2, 0, 60_000, 0) + UnitFixture.decision(false, 2, 0, 60_000, 60_000)])
        #expect(fixture.context.statistics.snapshot().connectionsOpen == 2)
        #expect(try first.finish().isClean)
        #expect(try second.finish().isClean)
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
