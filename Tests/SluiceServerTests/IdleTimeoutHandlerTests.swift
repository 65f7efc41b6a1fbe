import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import SluiceServer

/// The idle timeout on the event loop's clock (EmbeddedEventLoop's, advanced by hand): a connection that reads
/// nothing for the timeout is closed and counted; every completed read, and a read still in progress, keeps it open.
struct IdleTimeoutHandlerTests {
    static let timeout = TimeAmount.milliseconds(500)

    static func connected() throws -> (EmbeddedChannel, ServerStatistics) {
        let statistics = ServerStatistics()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(IdleTimeoutHandler(timeout: timeout, statistics: statistics), name: idleHandlerName)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return (channel, statistics)
    }

    /// Open 499 ms on, closed (and counted) at 500.
    static func expectClosedAtTheTimeout(_ channel: EmbeddedChannel, _ statistics: ServerStatistics) {
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(499))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(!channel.isActive)
        #expect(statistics.idleClosed.load(ordering: .relaxed) == 1)
    }

    @Test func aConnectionThatReadsNothingClosesAtTheTimeout() throws {
        let (channel, statistics) = try Self.connected()
        Self.expectClosedAtTheTimeout(channel, statistics)
    }

    @Test func eachReadStartsTheTimeoutAgain() throws {
        let (channel, statistics) = try Self.connected()
        for _ in 0..<5 {
            channel.embeddedEventLoop.advanceTime(by: .milliseconds(400))
            try channel.writeInbound(ByteBuffer(string: "x"))
            #expect(channel.isActive)
        }
        // From the last read.
        Self.expectClosedAtTheTimeout(channel, statistics)
    }

    @Test func aReadInProgressIsNotIdle() throws {
        let (channel, _) = try Self.connected()
        channel.pipeline.fireChannelRead(ByteBuffer(string: "x"))  // no read completion yet
        channel.embeddedEventLoop.advanceTime(by: .seconds(3))
        #expect(channel.isActive)
        channel.pipeline.fireChannelReadComplete()
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(499))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(501))
        #expect(!channel.isActive)
    }

    @Test func removedItClosesNothing() throws {
        let (channel, statistics) = try Self.connected()
        try channel.pipeline.syncOperations.removeHandler(name: idleHandlerName).wait()
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        #expect(channel.isActive)
        #expect(statistics.idleClosed.load(ordering: .relaxed) == 0)
        _ = try channel.finish()
    }
}
