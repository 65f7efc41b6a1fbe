/// A request that breaks the wire format; the connection gets this as an error reply and is closed.
public struct RESPProtocolError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What was wrong, phrased for the client (`Protocol error: ...` is prepended on the wire).
    public let message: String

    init(_ message: String) { self.message = message }

    public var description: String { "Protocol error: \(message)" }
}
