public import NIOCore
public import SluiceCore

/// The line protocol's logic for one connection: commands in, reply bytes and an action out.
///
/// A value type with no channel: the handler feeds it parsed commands and writes what it produces, and
/// tests drive it directly. Errors a client can fix (unknown policy, bad cost, wrong arity) are error
/// replies and the connection stays open; only broken framing closes it, and that is the parser's call.
public struct LineCommandProcessor: Sendable {
    /// What the connection should do after a command.
    public enum Action: Sendable, Equatable {
        /// Keep reading.
        case proceed
        /// Flush what was written, then close (QUIT).
        case close
        /// A global policy's decision waits for Redis: write nothing more until it is answered, then let
        /// the ``Completion`` write the reply, and go on.
        case wait(PendingDecision, Completion)

        public static func == (lhs: Action, rhs: Action) -> Bool {
            switch (lhs, rhs) {
            case (.proceed, .proceed), (.close, .close): true
            case (.wait(let left, _), .wait(let right, _)): left === right
            default: false
            }
        }
    }

    /// Writes the reply of a command that waited for Redis, once the answer is in.
    public struct Completion: Sendable {
        let body: @Sendable (Decision, GlobalCharge?, Timestamp, inout ByteBuffer) -> ServerStatistics.Batch

        /// Writes the reply to `decision` (answered at `now`, having taken `charge`) and returns what to count.
        public func callAsFunction(_ decision: Decision, charge: GlobalCharge?, now: Timestamp, into output: inout ByteBuffer) -> ServerStatistics.Batch {
            body(decision, charge, now, &output)
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
    public private(set) var resp3 = false
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
    /// - Returns: whether to keep the connection.
    public mutating func execute(_ command: RESPCommand, now: Timestamp, into output: inout ByteBuffer) -> Action {
        batch.commands += 1
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
        } else if command.argument(0, equalsUppercase: "PING") {
            switch command.count {
            case 1: output.writeRESPSimpleString("PONG")
            case 2: command.withArgument(1) { output.writeRESPBulkString(bytes: $0) }
            default: wrongArity(command, into: &output)
            }
        } else if command.argument(0, equalsUppercase: "ECHO") {
            if command.count == 2 {
                command.withArgument(1) { output.writeRESPBulkString(bytes: $0) }
            } else {
                wrongArity(command, into: &output)
            }
        } else if command.argument(0, equalsUppercase: "INFO") {
            output.writeRESPBulkString(info())
        } else if command.argument(0, equalsUppercase: "QUIT") {
            output.writeRESPSimpleString("OK")
            return .close
        } else if command.argument(0, equalsUppercase: "HELLO") {
            hello(command, into: &output)
        } else if command.argument(0, equalsUppercase: "CLIENT") {
            client(command, into: &output)
        } else if command.argument(0, equalsUppercase: "SELECT") {
            if command.count != 2 {
                wrongArity(command, into: &output)
            } else if command.string(1) == "0" {
                output.writeRESPSimpleString("OK")
            } else {
                output.writeRESPError("ERR DB index is out of range")
            }
        } else if command.argument(0, equalsUppercase: "CONFIG") {
            // redis-benchmark reads CONFIG GET save/appendonly on start; Sluice has no Redis settings to show.
            if command.count >= 3, command.argument(1, equalsUppercase: "GET") {
                output.writeRESPMapHeader(0, resp3: resp3)
            } else {
                output.writeRESPError("ERR CONFIG supports only GET, which returns no settings")
            }
        } else if command.argument(0, equalsUppercase: "COMMAND") {
            // redis-cli asks for COMMAND DOCS to offer hints; Sluice has none to give.
            if command.count > 1, command.argument(1, equalsUppercase: "COUNT") {
                output.writeRESPInteger(0)
            } else if command.count > 1, command.argument(1, equalsUppercase: "DOCS") {
                output.writeRESPMapHeader(0, resp3: resp3)
            } else {
                output.writeRESPArrayHeader(0)
            }
        } else {
            unknownCommand(command, into: &output)
        }
        return .proceed
    }

    // MARK: Decisions

    /// Resolves `policy key cost` at `offset` into a check, or writes the error and returns nil.
    private func resolveCheck(_ command: RESPCommand, at offset: Int, costPresent: Bool, into output: inout ByteBuffer) -> Check? {
        let cost: Int64
        if costPresent {
            guard let parsed = command.positiveInteger(offset + 2) else {
                output.writeRESPError("ERR cost must be a positive integer, got '\(Self.excerpt(command.string(offset + 2)))'")
                return nil
            }
            cost = parsed
        } else {
            cost = 1
        }
        guard let index = command.withArgument(offset, { policies.index(ofName: $0) }) else {
            output.writeRESPError("ERR unknown policy '\(Self.excerpt(command.string(offset)))'")
            return nil
        }
        guard validateKey(command, at: offset + 1, into: &output) else { return nil }
        return command.withArgument(offset + 1) { policies.check(policy: index, key: $0, cost: cost) }
    }

    private func validateKey(_ command: RESPCommand, at index: Int, into output: inout ByteBuffer) -> Bool {
        let length = command.length(index)
        if length == 0 {
            output.writeRESPError("ERR key must not be empty")
            return false
        }
        if length > context.maximumKeyBytes {
            output.writeRESPError("ERR key is \(length) bytes, longer than the limit of \(context.maximumKeyBytes)")
            return false
        }
        return true
    }

    private mutating func decideSingle(_ command: RESPCommand, now: Timestamp, consume: Bool, into output: inout ByteBuffer) -> Action {
        guard command.count == 3 || command.count == 4 else {
            wrongArity(command, into: &output)
            return .proceed
        }
        guard let check = resolveCheck(command, at: 1, costPresent: command.count == 4, into: &output) else { return .proceed }
        if policies.isGlobal[Int(check.policyIndex)] {
            return decideGlobal(check, command: command, keyAt: 2, now: now, consume: consume, into: &output)
        }
        let decision = context.limiter.decide(check, at: now, consume: consume)
        batch.count(decision)
        output.writeRESPDecision(decision)
        return .proceed
    }

    /// A global policy's check: decided now from a lease, or a wait for Redis.
    private mutating func decideGlobal(
        _ check: Check, command: RESPCommand, keyAt index: Int, now: Timestamp, consume: Bool, into output: inout ByteBuffer
    ) -> Action {
        let policy = policies.policies[Int(check.policyIndex)]
        guard let global = context.global else {
            output.writeRESPError("ERR policy '\(policy.name)' is global but this server has no Redis configured")
            return .proceed
        }
        switch command.withArgument(index, { global.decide(check, policy: policy, name: $0, now: now, consume: consume) }) {
        case .decided(let decision, _):
            batch.count(decision)
            output.writeRESPDecision(decision)
            return .proceed
        case .pending(let pending):
            return .wait(
                pending,
                Completion { decision, _, _, output in
                    output.writeRESPDecision(decision)
                    var counts = ServerStatistics.Batch()
                    counts.count(decision)
                    return counts
                }
            )
        }
    }

    private mutating func decideMany(_ command: RESPCommand, now: Timestamp, into output: inout ByteBuffer) -> Action {
        guard command.count >= 4, (command.count - 1) % 3 == 0 else {
            wrongArity(command, into: &output)
            return .proceed
        }
        var checks: [Check] = []
        checks.reserveCapacity((command.count - 1) / 3)
        var offset = 1
        while offset < command.count {
            guard let check = resolveCheck(command, at: offset, costPresent: true, into: &output) else { return .proceed }
            checks.append(check)
            offset += 3
        }
        let grouped: GlobalChecks?
        do {
            grouped = try GlobalChecks.resolve(checks, names: { command.bytes(1 + 3 * $0 + 1) }, policies: policies, context: context)
        } catch {
            output.writeRESPError("ERR \(error.message)")
            return .proceed
        }
        let result: RateLimiter.MultiDecision
        if let grouped {
            switch grouped.start(now: now) {
            case .decided(let decided): result = decided
            case .pending(let pending):
                return .wait(
                    pending,
                    Completion { decision, charge, now, output in
                        var counts = ServerStatistics.Batch()
                        Self.writeMulti(grouped.finish(decision, charge: charge, now: now), into: &output, counting: &counts)
                        return counts
                    }
                )
            }
        } else {
            result = context.limiter.decide(checks, at: now)
        }
        Self.writeMulti(result, into: &output, counting: &batch)
        return .proceed
    }

    /// MTAKE's reply: the verdict, then one decision per check; counted once, by the verdict.
    static func writeMulti(_ result: RateLimiter.MultiDecision, into output: inout ByteBuffer, counting batch: inout ServerStatistics.Batch) {
        output.writeRESPArrayHeader(1 + result.decisions.count)
        output.writeRESPInteger(result.isAllowed ? 1 : 0)
        for decision in result.decisions {
            output.writeRESPDecision(decision)
        }
        if result.isAllowed {
            batch.allowed += 1
        } else {
            batch.denied += 1
        }
        batch.shadowDenied += result.decisions.count { $0.isShadowed }
    }

    private mutating func throttle(_ command: RESPCommand, now: Timestamp, into output: inout ByteBuffer) {
        guard command.count >= 4, command.count <= 6 else { return wrongArity(command, into: &output) }
        guard let limit = command.positiveInteger(2) else {
            return output.writeRESPError("ERR limit must be a positive integer, got '\(Self.excerpt(command.string(2)))'")
        }
        let period: Int64
        if let milliseconds = command.positiveInteger(3) {
            guard milliseconds <= RateLimit.maximumPeriodNanoseconds / 1_000_000 else {
                return output.writeRESPError("ERR period must be from 1ms to 366d, got \(milliseconds)ms")
            }
            period = milliseconds * 1_000_000
        } else {
            do {
                period = try PolicyDuration.parseNanoseconds(command.string(3))
            } catch {
                return output.writeRESPError("ERR period \(error.message), or an integer number of milliseconds")
            }
        }
        var cost: Int64 = 1
        var algorithm = Algorithm.tokenBucket
        var next = 4
        if next < command.count, command.positiveInteger(next) == nil, Algorithm(rawValue: command.string(next).lowercased()) != nil {
            // THROTTLE key limit period algorithm: the cost may be left out.
        } else if next < command.count {
            guard let parsed = command.positiveInteger(next) else {
                return output.writeRESPError("ERR cost must be a positive integer, got '\(Self.excerpt(command.string(next)))'")
            }
            cost = parsed
            next += 1
        }
        if next < command.count {
            guard next == command.count - 1 else {
                return output.writeRESPError("ERR syntax error: THROTTLE key limit period [cost] [algorithm]")
            }
            guard let parsed = Algorithm(rawValue: command.string(next).lowercased()) else {
                return output.writeRESPError(
                    "ERR unknown algorithm '\(Self.excerpt(command.string(next)))'; use token_bucket, sliding_window or fixed_window"
                )
            }
            algorithm = parsed
        }
        let rateLimit: RateLimit
        do {
            rateLimit = try RateLimit(algorithm: algorithm, limit: limit, periodNanoseconds: period)
        } catch {
            return output.writeRESPError("ERR \(error.message)")
        }
        guard validateKey(command, at: 1, into: &output) else { return }
        let seed = Check.inlineSeed(for: rateLimit)
        let key = command.withArgument(1) { BucketKey(seed: seed, bytes: $0) }
        let decision = context.limiter.decide(Check(rateLimit: rateLimit, key: key, cost: cost), at: now)
        batch.count(decision)
        output.writeRESPDecision(decision)
    }

    private func reset(_ command: RESPCommand, into output: inout ByteBuffer) {
        guard command.count == 3 else { return wrongArity(command, into: &output) }
        guard let index = command.withArgument(1, { policies.index(ofName: $0) }) else {
            return output.writeRESPError("ERR unknown policy '\(Self.excerpt(command.string(1)))'")
        }
        guard !policies.isGlobal[index] else {
            return output.writeRESPError("ERR policy '\(policies.policies[index].name)' is global: its buckets live in Redis, RESET applies to local policies")
        }
        guard validateKey(command, at: 2, into: &output) else { return }
        let existed = command.withArgument(2) { context.limiter.reset(BucketKey(seed: policies.seeds[index], bytes: $0)) }
        output.writeRESPInteger(existed ? 1 : 0)
    }

    // MARK: Connection and introspection

    private mutating func hello(_ command: RESPCommand, into output: inout ByteBuffer) {
        var index = 1
        // Nothing changes unless the whole command is valid, as in Redis: a refused HELLO keeps the protocol and name.
        var useRESP3 = resp3
        var name = clientName
        if command.count > 1 {
            guard let version = command.positiveInteger(1), version == 2 || version == 3 else {
                return output.writeRESPError("NOPROTO sorry, this protocol version is not supported")
            }
            useRESP3 = version == 3
            index = 2
        }
        while index < command.count {
            if command.argument(index, equalsUppercase: "SETNAME"), index + 1 < command.count {
                name = command.string(index + 1)
                index += 2
            } else if command.argument(index, equalsUppercase: "AUTH"), index + 2 < command.count {
                index += 3  // no users are configured: any credentials are accepted, as Redis does without ACLs
            } else {
                return output.writeRESPError("ERR syntax error in HELLO option '\(Self.excerpt(command.string(index)))'")
            }
        }
        resp3 = useRESP3
        clientName = name
        output.writeRESPMapHeader(7, resp3: resp3)
        output.writeRESPBulkString("server")
        output.writeRESPBulkString("sluice")
        output.writeRESPBulkString("version")
        output.writeRESPBulkString(Self.version)
        output.writeRESPBulkString("proto")
        output.writeRESPInteger(resp3 ? 3 : 2)
        output.writeRESPBulkString("id")
        output.writeRESPInteger(Int64(connectionID))
        output.writeRESPBulkString("mode")
        output.writeRESPBulkString("standalone")
        output.writeRESPBulkString("role")
        output.writeRESPBulkString("master")
        output.writeRESPBulkString("modules")
        output.writeRESPArrayHeader(0)
    }

    private mutating func client(_ command: RESPCommand, into output: inout ByteBuffer) {
        guard command.count >= 2 else { return wrongArity(command, into: &output) }
        if command.argument(1, equalsUppercase: "SETNAME"), command.count == 3 {
            clientName = command.string(2)
            output.writeRESPSimpleString("OK")
        } else if command.argument(1, equalsUppercase: "GETNAME") {
            if let clientName { output.writeRESPBulkString(clientName) } else { output.writeRESPNull(resp3: resp3) }
        } else if command.argument(1, equalsUppercase: "ID") {
            output.writeRESPInteger(Int64(connectionID))
        } else if command.argument(1, equalsUppercase: "SETINFO") || command.argument(1, equalsUppercase: "MAINT_NOTIFICATIONS")
            || command.argument(1, equalsUppercase: "NO-EVICT") || command.argument(1, equalsUppercase: "NO-TOUCH")
        {
            // Sent by client libraries on connect (redis-py 8 sends SETINFO and MAINT_NOTIFICATIONS); nothing to do.
            output.writeRESPSimpleString("OK")
        } else {
            output.writeRESPError("ERR unknown subcommand '\(Self.excerpt(command.string(1)))'. Try CLIENT HELP.")
        }
    }

    private func info() -> String {
        let stats = context.statistics.snapshot()
        let store = context.limiter.store
        return """
            # Server\r
            sluice_version:\(Self.version)\r
            uptime_in_seconds:\(stats.uptimeSeconds)\r
            \r
            # Clients\r
            connected_clients:\(stats.connectionsOpen)\r
            total_connections_received:\(stats.connectionsTotal)\r
            \r
            # Stats\r
            total_commands_processed:\(stats.commands)\r
            decisions_allowed:\(stats.allowed)\r
            decisions_denied:\(stats.denied)\r
            decisions_shadow_denied:\(stats.shadowDenied)\r
            protocol_errors:\(stats.protocolErrors)\r
            \r
            # Keyspace\r
            keys:\(store.keyCount)\r
            max_keys:\(store.maximumKeys)\r
            shards:\(store.shardCount)\r
            evicted_idle_keys:\(store.idleEvictions)\r
            evicted_pressure_keys:\(store.pressureEvictions)\r
            policies:\(policies.policies.count)\r
            \(redisInfo())
            """
    }

    /// The `# Redis` section of INFO, empty without Redis.
    private func redisInfo() -> String {
        guard let status = context.global?.status() else { return "" }
        let served = status.localDecisions + status.redisDecisions
        let share = served == 0 ? "0.0000" : String(Double(status.localDecisions) / Double(served))
        return """
            \r
            # Redis\r
            redis_state:\(status.isConnected ? "up" : "down")\r
            redis_endpoint:\(status.endpoint)\r
            global_local_decisions:\(status.localDecisions)\r
            global_redis_decisions:\(status.redisDecisions)\r
            global_local_share:\(share)\r
            global_fallback_decisions:\(status.fallbackDecisions)\r
            lease_requests:\(status.leaseRequests)\r
            strict_calls:\(status.strictCalls)\r
            redis_errors:\(status.errors)\r
            redis_reconnections:\(status.reconnections)\r
            leases:\(status.leases)\r

            """
    }

    // MARK: Errors

    private func wrongArity(_ command: RESPCommand, into output: inout ByteBuffer) {
        output.writeRESPError("ERR wrong number of arguments for '\(Self.excerpt(command.string(0)).lowercased())' command")
    }

    private func unknownCommand(_ command: RESPCommand, into output: inout ByteBuffer) {
        var message = "ERR unknown command '\(Self.excerpt(command.string(0)))', with args beginning with:"
        for index in 1..<min(command.count, 4) { message += " '\(Self.excerpt(command.string(index)))'" }
        output.writeRESPError(message)
    }

    /// At most 64 characters of client input, for error messages.
    static func excerpt(_ text: String) -> String {
        text.count <= 64 ? text : String(text.prefix(64)) + "..."
    }
}
