public import NIOCore
public import SluiceCore

/// The line protocol's logic for one connection: commands in, reply bytes and an action out.
///
/// A value type with no channel: the handler feeds it parsed commands and writes what it produces, and
/// tests drive it directly. Errors a client can fix (unknown policy, bad cost, wrong arity) are error
/// replies and the connection stays open; only broken framing closes it, and that is the parser's call.
///
/// Decisions (`TAKE`, `PEEK`, `MTAKE`, `THROTTLE`, `RESET`) live in `LineCommandProcessor+Decisions.swift`;
/// what stock clients send on connect, and `INFO`, in `LineCommandProcessor+Connection.swift`.
public struct LineCommandProcessor: Sendable {
    /// What the connection should do after a command.
    public enum Action: Sendable, Equatable {
        /// Keep reading.
        case proceed
        /// Flush what was written, then close (QUIT).
        case close
        /// A global policy's decision waits for Redis: its reply takes its place in the reply order and is
        /// written once the answer is in.
        case wait(PendingAnswer<ByteBuffer>)

        public static func == (lhs: Action, rhs: Action) -> Bool {
            switch (lhs, rhs) {
            case (.proceed, .proceed), (.close, .close): true
            case (.wait(let left), .wait(let right)): left.waits.elementsEqual(right.waits, by: ===)
            default: false
            }
        }
    }

    /// The server version reported by HELLO and INFO.
    public static let version = "0.1.0"

    let context: ServerContext
    let connectionID: Int
    /// The configuration in force, refreshed once per read.
    var configuration: PolicyRegistry.Reader
    var policies: PolicySet { configuration.snapshot.policies }
    /// Whether the client asked for RESP3 with `HELLO 3`.
    public internal(set) var resp3 = false
    var clientName: String?
    /// Counts for the current read, flushed to ``ServerStatistics`` by the handler.
    public var batch = ServerStatistics.Batch()

    /// Creates a processor for connection `connectionID`.
    public init(context: ServerContext, connectionID: Int) {
        self.context = context
        self.connectionID = connectionID
        configuration = context.registry.reader()
    }

    /// Picks up a reloaded policy set; call once per read, before executing its commands.
    public mutating func refreshPolicies() { configuration.refresh() }

    /// Executes one command, appending its reply to `output`.
    ///
    /// - Parameters:
    ///   - command: the parsed command.
    ///   - now: the time for every decision in this batch.
    ///   - output: where the reply goes.
    /// - Returns: whether to keep the connection, close it, or wait for Redis.
    public mutating func execute(_ command: RESPCommand, now: Timestamp, into output: inout ByteBuffer) -> Action {
        batch.commands += 1
        // The decision commands first: they are nearly all of the traffic.
        if command.argument(0, equalsUppercase: "TAKE") {
            return decideSingle(command, now: now, consume: true, into: &output)
        } else if command.argument(0, equalsUppercase: "PEEK") {
            return decideSingle(command, now: now, consume: false, into: &output)
        } else if command.argument(0, equalsUppercase: "MTAKE") {
            return decideMany(command, now: now, into: &output)
        } else if command.argument(0, equalsUppercase: "THROTTLE") {
            throttle(command, now: now, into: &output)
        } else if command.argument(0, equalsUppercase: "RESET") {
            reset(command, into: &output)
        } else {
            return executeConnectionCommand(command, into: &output)
        }
        return .proceed
    }

    // MARK: Errors

    func wrongArity(_ command: RESPCommand, into output: inout ByteBuffer) {
        output.writeRESPError("ERR wrong number of arguments for '\(excerpt(command.string(0)).lowercased())' command")
    }

    func unknownCommand(_ command: RESPCommand, into output: inout ByteBuffer) {
        var message = "ERR unknown command '\(excerpt(command.string(0)))', with args beginning with:"
        for index in 1..<min(command.count, 4) { message += " '\(excerpt(command.string(index)))'" }
        output.writeRESPError(message)
    }
}
