import NIOCore
import SluiceCore

/// The open connections of one listener, so a graceful shutdown can ask each to finish and close.
final class ConnectionTracker: Sendable {
    private struct State {
        var channels: [ObjectIdentifier: any Channel] = [:]
        var quiescing = false
    }

    private let state = Locked(State())

    /// Records a new connection; one that arrives after shutdown began is asked to close at once.
    func add(_ channel: any Channel) {
        let quiescing = state.withLock { state in
            state.channels[ObjectIdentifier(channel)] = channel
            return state.quiescing
        }
        if quiescing { channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
    }

    func remove(_ channel: any Channel) {
        _ = state.withLock { $0.channels.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    /// Asks every open connection to flush its replies and close.
    func quiesceAll() {
        let channels = state.withLock { state in
            state.quiescing = true
            return Array(state.channels.values)
        }
        for channel in channels { channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
    }
}
