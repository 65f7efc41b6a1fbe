import FuzzSupport
import Logging
import NIOCore
import SluiceConfig
import SluiceCore
import SluiceServer

/// The line protocol's parser and commands, fed arbitrary bytes.
///
/// Invariants: a command the parser accepts, encoded again as a RESP array, parses to the same arguments; a
/// rejected input throws an error with a message and leaves the parser able to parse a fresh frame; every
/// reply is one well-formed RESP value; a decision's numbers agree (remaining within the limit, no wait when
/// allowed).
enum FuzzRESP {
    static let limits = SluiceConfiguration.Limits(maxKeyBytes: 64, maxLineBytes: 256, maxArguments: 16, maxFrameBytes: 1024)
    static let context: ServerContext = {
        do {
            let policies = try PolicySet([
                Policy(name: "api", rateLimit: RateLimit(algorithm: .tokenBucket, limit: 5, periodNanoseconds: 1_000_000_000)),
                Policy(name: "win", rateLimit: RateLimit(algorithm: .fixedWindow, limit: 3, periodNanoseconds: 60_000_000_000)),
                Policy(name: "slide", rateLimit: RateLimit(algorithm: .slidingWindow, limit: 4, periodNanoseconds: 10_000_000_000), mode: .shadow),
            ])
            return ServerContext(
                limiter: RateLimiter(store: BucketStore(maximumKeys: 4_096)), registry: PolicyRegistry(policies), clock: ManualClock(),
                limits: limits, logger: Logger(label: "fuzz")
            )
        } catch {
            fatalError("the fuzz policies are valid: \(error)")
        }
    }()

    static func run(_ input: UnsafeRawBufferPointer) {
        var buffer = ByteBuffer(bytes: input)
        let parser = RESPParser(limits: limits)
        var processor = LineCommandProcessor(context: context, connectionID: 1)
        let now = context.clock.now()
        while true {
            let command: RESPCommand?
            do {
                command = try parser.parse(&buffer)
            } catch {
                Fuzz.require(!error.description.isEmpty, "a protocol error says what is wrong")
                // No partial state: the same parser takes a fresh, valid frame.
                var fresh = ByteBuffer(string: "*1\r\n$4\r\nPING\r\n")
                let ping = try? parser.parse(&fresh)
                Fuzz.require(ping?.strings == ["PING"], "the parser recovers after an error")
                return
            }
            guard let command else { return }
            Fuzz.require(command.count > 0, "a command has a name")
            reencodes(command)
            var reply = ByteBuffer()
            let action = processor.execute(command, now: now, into: &reply)
            guard case .proceed = action else { return }
            checkReply(reply, to: command)
        }
    }

    /// The command, encoded again as a RESP array, parses to the same arguments.
    static func reencodes(_ command: RESPCommand) {
        var encoded = ByteBuffer()
        encoded.writeString("*\(command.count)\r\n")
        for index in 0..<command.count {
            let bytes = command.bytes(index)
            encoded.writeString("$\(bytes.count)\r\n")
            encoded.writeBytes(bytes)
            encoded.writeString("\r\n")
        }
        let parser = RESPParser(limits: SluiceConfiguration.Limits(maxLineBytes: 1 << 20, maxArguments: 1 << 16, maxFrameBytes: 1 << 24))
        let again = try? parser.parse(&encoded)
        Fuzz.require(again.map { $0.count == command.count && (0..<command.count).allSatisfy { again?.bytes($0) == command.bytes($0) } } == true,
            "re-encoded command parses back to the same arguments")
        Fuzz.require(encoded.readableBytes == 0, "the re-encoded frame is consumed whole")
    }

    /// One whole RESP value; a TAKE/PEEK/THROTTLE decision's numbers agree.
    static func checkReply(_ reply: ByteBuffer, to command: RESPCommand) {
        var reader = reply
        let value = RESPValue.read(&reader)
        Fuzz.require(value != nil && reader.readableBytes == 0, "one well-formed reply per command: \(String(buffer: reply))")
        let name = command.string(0).uppercased()
        guard ["TAKE", "PEEK", "THROTTLE"].contains(name), case .array(let items)? = value, items.count == 5 else { return }
        let numbers = items.compactMap { if case .integer(let number) = $0 { number } else { nil } }
        Fuzz.require(numbers.count == 5, "a decision is five integers")
        let (allowed, limit, remaining, retry) = (numbers[0], numbers[1], numbers[2], numbers[4])
        Fuzz.require(allowed == 0 || allowed == 1, "allowed is 0 or 1")
        Fuzz.require(remaining >= 0 && remaining <= limit, "remaining \(remaining) within limit \(limit)")
        Fuzz.require(allowed == 0 || retry == 0, "no wait when allowed")
    }
}

/// A RESP value, read strictly (RESP2 and the RESP3 types Sluice sends).
indirect enum RESPValue: Equatable {
    case simple(String), error(String), integer(Int64), bulk([UInt8]?), array([RESPValue]), map([RESPValue]), null, double(String)

    static func read(_ buffer: inout ByteBuffer) -> RESPValue? {
        guard let type = buffer.readInteger(as: UInt8.self), let line = readLine(&buffer) else { return nil }
        switch type {
        case UInt8(ascii: "+"): return .simple(line)
        case UInt8(ascii: "-"): return line.isEmpty ? nil : .error(line)
        case UInt8(ascii: ":"): return Int64(line).map { .integer($0) }
        case UInt8(ascii: "_"): return line.isEmpty ? .null : nil
        case UInt8(ascii: ","): return .double(line)
        case UInt8(ascii: "$"):
            guard let length = Int(line) else { return nil }
            if length == -1 { return .bulk(nil) }
            guard length >= 0, let bytes = buffer.readBytes(length: length), buffer.readString(length: 2) == "\r\n" else { return nil }
            return .bulk(bytes)
        case UInt8(ascii: "*"), UInt8(ascii: "%"):
            guard let count = Int(line), count >= -1 else { return nil }
            if count == -1 { return .array([]) }
            var items: [RESPValue] = []
            for _ in 0..<(type == UInt8(ascii: "%") ? count * 2 : count) {
                guard let item = read(&buffer) else { return nil }
                items.append(item)
            }
            return type == UInt8(ascii: "%") ? .map(items) : .array(items)
        default: return nil
        }
    }

    private static func readLine(_ buffer: inout ByteBuffer) -> String? {
        guard let end = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\r")), buffer.getInteger(at: end + 1, as: UInt8.self) == UInt8(ascii: "\n")
        else { return nil }
        let line = buffer.readString(length: end - buffer.readerIndex)
        buffer.moveReaderIndex(forwardBy: 2)
        return line
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRESP(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzRESP.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@main
enum Main {
    static func main() { Fuzz.main(fuzzRESP) }
}
