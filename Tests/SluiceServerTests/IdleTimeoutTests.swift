import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import SluiceServer

/// The idle timeout, kept by the protocol handlers themselves, on the event loop's clock (EmbeddedEventLoop's,
/// advanced by hand): a connection that reads nothing for the timeout is closed and counted; every completed read,
/// and a read still in progress, keeps it open.
struct IdleTimeoutTests {
    static let timeout = TimeAmount.milliseconds(500)

    /// An active connection served by the line protocol's handler, keeping an idle timeout counted in `statistics`.
    static func lineConnection(_ statistics: ServerStatistics) throws -> (EmbeddedChannel, LineProtocolHandler) {
        let fixture = try UnitFixture()
        let handler = LineProtocolHandler(
            context: fixture.context, connectionID: UnitFixture.connectionID, idleTimeout: IdleTimeout(timeout: timeout, statistics: statistics)
        )
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return (channel, handler)
    }

    /// Open 499 ms on, closed (and counted) at 500.
    static func expectClosedAtTheTimeout(_ channel: EmbeddedChannel, _ statistics: ServerStatistics) {
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(499))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(!channel.isActive)
        #expect(statistics.idleClosed.load(ordering: .relaxed) == 1)
    }

    @Test func aConnectionThatSendsNothingClosesAtTheTimeout() throws {
        let statistics = ServerStatistics()
        let (channel, _) = try Self.lineConnection(statistics)
        Self.expectClosedAtTheTimeout(channel, statistics)
    }

    @Test func eachReadStartsTheTimeoutAgain() throws {
        let statistics = ServerStatistics()
        let (channel, _) = try Self.lineConnection(statistics)
        for _ in 0..<5 {
            channel.embeddedEventLoop.advanceTime(by: .milliseconds(400))
            try channel.writeInbound(ByteBuffer(string: "PING\r\n"))
            #expect(channel.isActive)
        }
        #expect(String(buffer: try #require(try channel.readOutbound(as: ByteBuffer.self))) == "+PONG\r\n")
        // From the last read.
        Self.expectClosedAtTheTimeout(channel, statistics)
    }

    @Test func aReadInProgressIsNotIdle() throws {
        let (channel, _) = try Self.lineConnection(ServerStatistics())
        channel.pipeline.fireChannelRead(ByteBuffer(string: "PI"))  // no read completion yet
        channel.embeddedEventLoop.advanceTime(by: .seconds(3))
        #expect(channel.isActive)
        channel.pipeline.fireChannelReadComplete()
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(499))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(501))
        #expect(!channel.isActive)
    }

    @Test func aRemovedHandlersTimeoutClosesNothing() throws {
        let statistics = ServerStatistics()
        let (channel, handler) = try Self.lineConnection(statistics)
        try channel.pipeline.syncOperations.removeHandler(handler).wait()
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        #expect(channel.isActive)
        #expect(statistics.idleClosed.load(ordering: .relaxed) == 0)
        _ = try channel.finish()
    }

    @Test func anHTTPConnectionIsKeptOpenByRequestsAndClosedBySilence() throws {
        let fixture = try HTTPUnitFixture()
        let statistics = ServerStatistics()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(
            HTTPServerHandler(processor: fixture.processor, context: fixture.context, idleTimeout: IdleTimeout(timeout: Self.timeout, statistics: statistics))
        )
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 50_000)).wait()
        for _ in 0..<3 {
            channel.embeddedEventLoop.advanceTime(by: .milliseconds(400))
            try HTTPServerHandlerTests.send(channel, HTTPServerHandlerTests.get("/healthz"))
            #expect(channel.isActive)
        }
        #expect(try HTTPServerHandlerTests.writes(channel).allSatisfy { $0.hasPrefix("HTTP/1.1 200 OK\r\n") })
        Self.expectClosedAtTheTimeout(channel, statistics)
    }
}
