import NIOCore

extension LineCommandProcessor {
    /// The commands that are not decisions: what stock clients send on connect (`HELLO`, `CLIENT`, `SELECT`,
    /// `CONFIG GET`, `COMMAND`), `PING`, `ECHO`, `INFO` and `QUIT`; anything else is an unknown command.
    mutating func executeConnectionCommand(_ command: RESPCommand, into output: inout ByteBuffer) -> Action {
        if command.argument(0, equalsUppercase: "PING") {
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
            output.writeRESPBulkString(context.status().info(version: Self.version))
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

    /// `HELLO [2|3] [AUTH user pass] [SETNAME name]`: nothing changes unless the whole command is valid, as in
    /// Redis, so a refused HELLO keeps the protocol and the name.
    private mutating func hello(_ command: RESPCommand, into output: inout ByteBuffer) {
        var index = 1
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
                return output.writeRESPError("ERR syntax error in HELLO option '\(excerpt(command.string(index)))'")
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
            output.writeRESPError("ERR unknown subcommand '\(excerpt(command.string(1)))'. Try CLIENT HELP.")
        }
    }
}
