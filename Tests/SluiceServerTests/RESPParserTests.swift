import SluiceConfig
import SluiceCore
import NIOCore
import NIOEmbedded
import NIOTestUtils
import Testing

@testable import SluiceServer

/// Helpers shared by the line-protocol unit tests (prefixed `Unit` so they never clash with the
/// end-to-end test support living in the same target).
enum UnitRESP {
    /// `arguments` encoded as a RESP array of bulk strings.
    static func array(_ arguments: [String]) -> String {
        var text = "*\(arguments.count)\r\n"
        for argument in arguments { text += "$\(argument.utf8.count)\r\n\(argument)\r\n" }
        return text
    }

    /// Every complete command in `text`; fails the test if bytes are left over.
    static func commands(_ text: String, limits: SluiceConfiguration.Limits = SluiceConfiguration.Limits()) throws -> [RESPCommand] {
        let parser = RESPParser(limits: limits)
        var buffer = ByteBuffer(string: text)
        var commands: [RESPCommand] = []
        while let command = try parser.parse(&buffer) { commands.append(command) }
        #expect(buffer.readableBytes == 0, "unparsed bytes left in \(text.debugDescription)")
        return commands
    }

    /// The single command in `text`.
    static func command(_ text: String) throws -> RESPCommand {
        let commands = try commands(text)
        try #require(commands.count == 1, "expected one command in \(text.debugDescription)")
        return commands[0]
    }

    /// The error parsing `bytes` ends with, or nil if every frame parses (or the input is just incomplete).
    static func firstError(_ bytes: [UInt8], limits: SluiceConfiguration.Limits = SluiceConfiguration.Limits()) -> RESPProtocolError? {
        let parser = RESPParser(limits: limits)
        var buffer = ByteBuffer(bytes: bytes)
        do {
            while try parser.parse(&buffer) != nil {}
            return nil
        } catch {
            return error
        }
    }
}

struct RESPParserTests {
    // MARK: Well-formed input

    @Test(
        arguments: [
            ("PING\r\n", [["PING"]]),
            ("PING\n", [["PING"]]),
            ("TAKE api user:42\r\n", [["TAKE", "api", "user:42"]]),
            ("  TAKE \t api\t\tk   \r\n", [["TAKE", "api", "k"]]),
            ("\tPEEK api k\t\n", [["PEEK", "api", "k"]]),
            ("\r\n\n   \r\n\t\nPING\r\n\r\n", [["PING"]]),
            ("PING\nECHO hi\r\nTAKE api k 2\n", [["PING"], ["ECHO", "hi"], ["TAKE", "api", "k", "2"]]),
            ("ECHO caf\u{E9}\r\n", [["ECHO", "caf\u{E9}"]]),
        ]
    )
    func inlineCommands(input: String, expected: [[String]]) throws {
        #expect(try UnitRESP.commands(input).map(\.strings) == expected)
    }

    @Test(
        arguments: [
            ("*1\r\n$4\r\nPING\r\n", [["PING"]]),
            ("*3\r\n$4\r\nTAKE\r\n$3\r\napi\r\n$7\r\nuser:42\r\n", [["TAKE", "api", "user:42"]]),
            ("*3\r\n$4\r\nTAKE\r\n$3\r\napi\r\n$0\r\n\r\n", [["TAKE", "api", ""]]),
            ("*2\r\n$4\r\nECHO\r\n$6\r\na\r\nb c\r\n", [["ECHO", "a\r\nb c"]]),
            ("*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n", [["PING"]]),
            ("*0\r\n", []),
            ("*-1\r\n", []),
            (
                "*1\r\n$4\r\nPING\r\nTAKE api k\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n\r\nPEEK api k\n",
                [["PING"], ["TAKE", "api", "k"], ["ECHO", "hi"], ["PEEK", "api", "k"]]
            ),
        ]
    )
    func respArraysAndPipelines(input: String, expected: [[String]]) throws {
        #expect(try UnitRESP.commands(input).map(\.strings) == expected)
    }

    @Test func aCommandLargerThanTheFrameCapIsRefusedBeforeItIsComplete() throws {
        // 40 arguments of 1 KiB each fit the bulk cap (2 KiB) but not the 16 KiB frame cap: refused as soon
        // as the frame passes the cap, without waiting for (or buffering) the rest.
        let limits = SluiceConfiguration.Limits(maxLineBytes: 2048, maxArguments: 100, maxFrameBytes: 16_384)
        let argument = String(repeating: "k", count: 1024)
        var text = "*40\r\n"
        for _ in 0..<20 { text += "$1024\r\n\(argument)\r\n" }
        var buffer = ByteBuffer(string: text)
        #expect(throws: RESPProtocolError.self) { _ = try RESPParser(limits: limits).parse(&buffer) }
        let fits = UnitRESP.array(Array(repeating: argument, count: 15))
        #expect(try UnitRESP.commands(fits, limits: limits).count == 1)
    }

    @Test func manyArgumentsSpillPastTheInlineStorage() throws {
        let arguments = ["MTAKE"] + (1...12).map { "argument-\($0)" }
        let viaArray = try UnitRESP.command(UnitRESP.array(arguments))
        #expect(viaArray.count == 13)
        #expect(viaArray.strings == arguments)
        #expect(viaArray.length(12) == "argument-12".utf8.count)
        let viaInline = try UnitRESP.command(arguments.joined(separator: " ") + "\r\n")
        #expect(viaInline.strings == arguments)
    }

    @Test func bulkStringsCarryBinaryBytesUnchanged() throws {
        var bytes = Array("*2\r\n$4\r\nTAKE\r\n$4\r\n".utf8)
        let key: [UInt8] = [0x00, 0x0D, 0x0A, 0xFF]
        bytes += key + Array("\r\n".utf8)
        var buffer = ByteBuffer(bytes: bytes)
        let command = try #require(try RESPParser().parse(&buffer))
        #expect(command.count == 2)
        #expect(command.withArgument(1) { Array($0) } == key)
        #expect(buffer.readableBytes == 0)
    }

    @Test func argumentsAreSlicesOfTheirOwnFrame() throws {
        var buffer = ByteBuffer(string: "PING\r\n*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\nTAKE api k\r\n")
        let parser = RESPParser()
        let first = try #require(try parser.parse(&buffer))
        let second = try #require(try parser.parse(&buffer))
        let third = try #require(try parser.parse(&buffer))
        #expect(try parser.parse(&buffer) == nil)
        #expect(first.frame == ByteBuffer(string: "PING\r\n"))
        #expect(second.frame == ByteBuffer(string: "*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n"))
        #expect(second.string(1) == "hello")
        #expect(third.strings == ["TAKE", "api", "k"])
    }

    // MARK: Partial frames

    @Test(
        arguments: [
            "*3\r\n$4\r\nTAKE\r\n$3\r\napi\r\n$1\r\nk\r\n",
            "*2\r\n$4\r\nECHO\r\n$12\r\n0123456789ab\r\n",
            "*12\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n$1\r\ne\r\n$1\r\nf\r\n$1\r\ng\r\n$1\r\nh\r\n$1\r\ni\r\n$1\r\nj\r\n$1\r\nk\r\n$0\r\n\r\n",
            "TAKE api k\r\n",
            "PING\n",
        ]
    )
    func partialFrameReturnsNilAndConsumesNothing(frame: String) throws {
        let bytes = Array(frame.utf8)
        let parser = RESPParser()
        for length in 0..<bytes.count {
            var buffer = ByteBuffer(bytes: bytes[0..<length])
            #expect(try parser.parse(&buffer) == nil, "prefix of \(length) bytes")
            #expect(buffer.readableBytes == length, "prefix of \(length) bytes")
        }
        var buffer = ByteBuffer(bytes: bytes)
        let command = try #require(try parser.parse(&buffer))
        #expect(buffer.readableBytes == 0)
        #expect(command.frame.readableBytes == bytes.count)
    }

    @Test func skippedFramesAreConsumedBeforeAPartialOne() throws {
        var buffer = ByteBuffer(string: "\r\n*0\r\n*-1\r\n*1\r\n$4\r\nPI")
        #expect(try RESPParser().parse(&buffer) == nil)
        #expect(String(buffer: buffer) == "*1\r\n$4\r\nPI")
        buffer.writeString("NG\r\n")
        #expect(try RESPParser().parse(&buffer)?.strings == ["PING"])
    }

    @Test func lineOfExactlyTheCapIsAccepted() throws {
        let limits = SluiceConfiguration.Limits(maxLineBytes: 64)
        let line = String(repeating: "a", count: 64)
        #expect(try UnitRESP.commands(line + "\r\n", limits: limits).map(\.strings) == [[line]])
        let bulk = String(repeating: "b", count: 64)
        #expect(try UnitRESP.commands(UnitRESP.array(["ECHO", bulk]), limits: limits).map(\.strings) == [["ECHO", bulk]])
        let arguments = (1...4).map(String.init)
        let four = SluiceConfiguration.Limits(maxArguments: 4)
        #expect(try UnitRESP.commands(UnitRESP.array(arguments), limits: four).map(\.strings) == [arguments])
        #expect(try UnitRESP.commands("1 2 3 4\r\n", limits: four).map(\.strings) == [arguments])
    }

    // MARK: ByteToMessageDecoder

    @Test func decoderSurvivesDripFeeding() throws {
        let inputs = [
            "PING\r\n",
            "*1\r\n$4\r\nPING\r\n",
            "*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n",
            "TAKE api k\r\nPEEK\tapi  k\n",
            "*0\r\n*-1\r\n\r\n*3\r\n$4\r\nTAKE\r\n$3\r\napi\r\n$0\r\n\r\n",
            UnitRESP.array(["MTAKE"] + (1...9).map { "k\($0)" }),
            "\r\n",
        ]
        let pairs = try inputs.map { input in
            (ByteBuffer(string: input), try UnitRESP.commands(input))
        }
        #expect(pairs.map(\.1.count) == [1, 1, 1, 2, 1, 1, 0])
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) { RESPCommandDecoder() }
    }

    @Test func decoderPassesProtocolErrorsOn() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(RESPCommandDecoder(limits: .init(maxLineBytes: 64))))
        #expect(throws: RESPProtocolError.self) {
            try channel.writeInbound(ByteBuffer(string: "*1\r\n$65\r\n"))
        }
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    // MARK: Errors

    /// (input, expected fragment of the message), parsed with `maximumBulkBytes` 64 and `maximumArguments` 8.
    static let malformedInputs: [(String, String)] = [
        (String(repeating: "a", count: 70), "inline command longer than 64 bytes"),
        (String(repeating: "a", count: 65) + "\r\n", "inline command longer than 64 bytes"),
        (String(repeating: "a", count: 65) + "\n", "inline command longer than 64 bytes"),
        ("PING\r\n" + String(repeating: "a", count: 100), "inline command longer than 64 bytes"),
        ("*1\r\n$65\r\n", "invalid bulk length 65, at most 64"),
        ("*1\r\n$999999999999\r\n", "invalid bulk length"),
        ("*1\r\n$-1\r\n", "invalid bulk length -1"),
        ("*1\r\n$-5\r\n", "invalid bulk length"),
        ("*x\r\n", "invalid multibulk length"),
        ("*\r\n", "invalid multibulk length"),
        ("*1x\r\n", "invalid multibulk length"),
        ("*-\r\n", "invalid multibulk length"),
        ("*1\rX", "invalid multibulk length"),
        ("*1\r\n$x\r\n", "invalid bulk length"),
        ("*1\r\n$\r\n", "invalid bulk length"),
        ("*1\r\n$4 \r\n", "invalid bulk length"),
        ("*1\r\n:1\r\n", "expected '$', got ':'"),
        ("*2\r\n$4\r\nECHO\r\nhi\r\n", "expected '$', got 'h'"),
        ("*1\r\n$4\r\nPINGXX", "not followed by CRLF"),
        ("*1\r\n$4\r\nPING\rX", "not followed by CRLF"),
        ("*1\r\n$4\r\nPINGPONG\r\n", "not followed by CRLF"),
        ("*9\r\n", "too many arguments: 9, at most 8"),
        ("a b c d e f g h i\r\n", "too many arguments: 9, at most 8"),
        ("TAKE \u{01}api k\r\n", "binary data"),
        ("TAKE api k\0\r\n", "binary data"),
        ("TAKE api\rk\r\n", "binary data"),
        ("T\u{7F}\n", "binary data"),
        ("\u{1B}[A\r\n", "binary data"),
        ("*" + String(repeating: "1", count: 40), "invalid multibulk length"),
        ("*" + String(repeating: "0", count: 40) + "1\r\n", "invalid multibulk length"),
        ("*1\r\n$" + String(repeating: "1", count: 40), "invalid bulk length"),
        ("PING\r\n*x\r\n", "invalid multibulk length"),
    ]

    @Test(arguments: malformedInputs)
    func malformedInputIsRefused(input: String, fragment: String) throws {
        let limits = SluiceConfiguration.Limits(maxLineBytes: 64, maxArguments: 8)
        let error = try #require(UnitRESP.firstError(Array(input.utf8), limits: limits))
        #expect(error.message.contains(fragment), "\(error.message)")
        #expect(error.description == "Protocol error: \(error.message)")
    }

    @Test func errorsDoNotWaitForTheRestOfTheFrame() throws {
        // Each of these is refused from its header alone, before any body arrives.
        let limits = SluiceConfiguration.Limits(maxLineBytes: 64, maxArguments: 8)
        for header in ["*9\r\n", "*1\r\n$65\r\n", "*1\r\n$-1\r\n", "*1\r\n:", "*1234567890123456789"] {
            #expect(UnitRESP.firstError(Array(header.utf8), limits: limits) != nil, "\(header.debugDescription)")
        }
    }

    @Test func commandsBeforeAnErrorAreStillReturned() throws {
        var buffer = ByteBuffer(string: "PING\r\nECHO a\r\n*x\r\n")
        let parser = RESPParser()
        #expect(try parser.parse(&buffer)?.strings == ["PING"])
        #expect(try parser.parse(&buffer)?.strings == ["ECHO", "a"])
        #expect(throws: RESPProtocolError.self) { try parser.parse(&buffer) }
    }

    // MARK: RESPCommand

    static let positiveIntegers: [(String, Int64?)] = [
            ("1", 1),
            ("42", 42),
            ("007", 7),
            ("9223372036854775807", Int64.max),
            ("9223372036854775808", nil),
            ("9999999999999999999", nil),
            ("99999999999999999999", nil),
            ("0", nil),
            ("000", nil),
            ("-1", nil),
            ("+1", nil),
            ("1.5", nil),
            (" 1", nil),
            ("abc", nil),
            ("", nil),
        ]

    @Test(arguments: positiveIntegers)
    func positiveInteger(text: String, expected: Int64?) throws {
        let command = try UnitRESP.command(UnitRESP.array(["X", text]))
        #expect(command.positiveInteger(1) == expected)
    }

    @Test(arguments: [("take", true), ("TAKE", true), ("tAkE", true), ("TAKES", false), ("TAK", false), ("MTAKE", false)])
    func commandNamesMatchIgnoringCase(name: String, matches: Bool) throws {
        let command = try UnitRESP.command(name + "\r\n")
        #expect(command.argument(0, equalsUppercase: "TAKE") == matches)
    }

    @Test func commandsCompareByArguments() throws {
        #expect(try UnitRESP.command("TAKE api k\r\n") == UnitRESP.command(UnitRESP.array(["TAKE", "api", "k"])))
        #expect(try UnitRESP.command("TAKE api k\r\n") != UnitRESP.command("TAKE api j\r\n"))
    }
}

/// The decision reply, written byte by byte in place: every field's sign and width, the widest values included.
struct RESPDecisionReplyTests {
    static let cases: [(Decision, String)] = [
        (Decision(outcome: .allowed, limit: 10, remaining: 9, resetAfterNanoseconds: 1, retryAfterNanoseconds: 0), "*5\r\n:1\r\n:10\r\n:9\r\n:1\r\n:0\r\n"),
        (
            Decision(outcome: .denied, limit: 1_000_000_000, remaining: 0, resetAfterNanoseconds: 999_000_001, retryAfterNanoseconds: 5_000_000),
            "*5\r\n:0\r\n:1000000000\r\n:0\r\n:1000\r\n:5\r\n"
        ),
        (Decision(outcome: .denied, limit: 5, remaining: 0, resetAfterNanoseconds: 0, retryAfterNanoseconds: -1), "*5\r\n:0\r\n:5\r\n:0\r\n:0\r\n:-1\r\n"),
        (
            Decision(outcome: .denied, limit: .max, remaining: .min, resetAfterNanoseconds: .max, retryAfterNanoseconds: .max),
            "*5\r\n:0\r\n:9223372036854775807\r\n:-9223372036854775808\r\n:9223372036855\r\n:9223372036855\r\n"
        ),
    ]

    @Test("A decision is *5 integers: allowed, limit, remaining, reset and retry in milliseconds", arguments: cases)
    func decisionReply(decision: Decision, expected: String) {
        var buffer = ByteBufferAllocator().buffer(capacity: 0)
        buffer.writeRESPDecision(decision)
        #expect(String(buffer: buffer) == expected)
    }
}
