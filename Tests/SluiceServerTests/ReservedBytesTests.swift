import Foundation
import NIOCore
import Testing

@testable import SluiceServer

/// Writing into reserved room: the bytes come out the same whatever the estimate, and nothing is written
/// past the room.
struct ReservedBytesTests {
    static func render(estimate: Int, repeats: Int) -> String {
        var buffer = ByteBuffer(string: "before|")
        buffer.writeReserved(estimate: estimate) { out in
            for index in 0..<repeats {
                out.append("field-")
                out.appendDecimal(Int64(index))
                out.append(ascii: UInt8(ascii: ":"))
                out.append("value \(index) é")
                out.append("\r\n")
            }
            out.appendDecimal(.min)
            out.append(ascii: UInt8(ascii: " "))
            out.appendDecimal(.max)
        }
        buffer.writeString("|after")
        return String(buffer: buffer)
    }

    @Test(arguments: [0, 1, 63, 64, 200, 4096])
    func anEstimateTooSmallTakesMoreRoomAndTheSameBytes(estimate: Int) {
        let expected = "before|" + (0..<40).map { "field-\($0):value \($0) é\r\n" }.joined() + "-9223372036854775808 9223372036854775807|after"
        #expect(Self.render(estimate: estimate, repeats: 40) == expected)
    }

    @Test func nothingWrittenIsNothingAppended() {
        var buffer = ByteBuffer(string: "x")
        buffer.writeReserved(estimate: 0) { _ in }
        #expect(String(buffer: buffer) == "x")
    }

    /// A plain name is copied between quotes; any other is escaped exactly as `JSONText.quoted` escapes it.
    @Test(arguments: ["api", "", "a b-c_d.e:f/9~", "say \"hi\"", "back\\slash", "tab\tnew\nline", "é", "\u{85}", "\u{7F}", "\u{2028}"])
    func aQuotedNameIsTheJSONStringOfIt(name: String) {
        var buffer = ByteBuffer()
        buffer.writeReserved(estimate: 0) { $0.appendJSONQuoted(name) }
        #expect(String(buffer: buffer) == JSONText.quoted(name))
        let decoded = try? JSONSerialization.jsonObject(with: Data(("[" + String(buffer: buffer) + "]").utf8)) as? [String]
        #expect(decoded == [name])
    }

    /// Decimals at every length and each side of every power of ten, against Swift's own formatting.
    @Test func decimalsAreWrittenAsSwiftWritesThem() {
        var values: [Int64] = [0, 1, 9, 10, 11, 99, 100, 101, .max, .min, .min + 1, -1, -9, -10]
        var power: Int64 = 1
        for _ in 0..<18 {
            power *= 10
            values += [power - 1, power, power + 1, -(power - 1), -power, -(power + 1), power / 3, -power / 7]
        }
        for value in values {
            var buffer = ByteBuffer()
            buffer.writeReserved(estimate: 0) { $0.appendDecimal(value) }
            #expect(String(buffer: buffer) == String(value))
        }
    }
}
