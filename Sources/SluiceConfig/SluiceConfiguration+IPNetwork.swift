#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension SluiceConfiguration {
    /// A CIDR block: `10.0.0.0/8`, `127.0.0.1/32`, `::1/128`, `fd00::/8`; a bare address means /32 or /128.
    ///
    /// The address is kept with its host bits zeroed, so `10.1.2.3/8` and `10.0.0.0/8` are the same network and
    /// both read back as `10.0.0.0/8`. An IPv4 network and an IPv6 network are different values even when one is
    /// the other's IPv4-mapped form, but ``contains(_:)`` matches across the two families.
    public struct IPNetwork: Sendable, Hashable, LosslessStringConvertible {
        /// The network's address: 4 bytes (IPv4) or 16 bytes (IPv6), in network order, host bits zeroed.
        public let address: [UInt8]
        /// The number of leading bits that must match: 0 through 32 for IPv4, 0 through 128 for IPv6.
        public let prefixLength: Int

        /// The first 12 bytes of an IPv4-mapped IPv6 address, `::ffff:0:0/96`.
        private static let ipv4MappedPrefix: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]

        /// Creates a network from checked parts, zeroing the host bits.
        ///
        /// - Parameters:
        ///   - address: 4 or 16 bytes.
        ///   - prefixLength: 0 through 8 × `address.count`.
        init(address: [UInt8], prefixLength: Int) {
            precondition(address.count == 4 || address.count == 16, "an IP address has 4 or 16 bytes")
            precondition((0...address.count * 8).contains(prefixLength), "prefix length out of range")
            self.address = address.enumerated().map { index, byte in byte & Self.mask(prefixLength, byte: index) }
            self.prefixLength = prefixLength
        }

        /// Parses `address/prefix`, or a bare address as a single-host network; nil for anything else.
        ///
        /// - Parameter description: the text, such as `10.0.0.0/8`, `::1` or `fd00::/8`; the prefix length is
        ///   0 through 32 for IPv4 and 0 through 128 for IPv6. Zones (`fe80::1%eth0`) are not accepted.
        public init?(_ description: String) {
            switch Self.parse(description) {
            case .success(let network): self = network
            case .failure: return nil
            }
        }

        /// `address/prefix`, the address in dotted-quad (IPv4) or RFC 5952 (IPv6) form: `10.0.0.0/8`, `fd00::/8`.
        public var description: String {
            "\(Self.format(address))/\(prefixLength)"
        }

        /// Whether `address` (4 or 16 bytes) is inside; an IPv4 address also matches as IPv4-mapped IPv6
        /// (::ffff:a.b.c.d) against an IPv4 network and vice versa.
        ///
        /// So `10.0.0.0/8` contains both `10.1.2.3` and `::ffff:10.1.2.3` (a dual-stack socket's view of an IPv4
        /// peer), and `::ffff:10.0.0.0/104` or `::/0` contain `10.1.2.3`.
        ///
        /// - Parameter address: an address as ``parseAddress(_:)`` returns it.
        /// - Returns: whether the first ``prefixLength`` bits agree; false for an address of another length.
        /// - Complexity: O(1); at most 16 byte comparisons, no allocation.
        public func contains(_ address: [UInt8]) -> Bool {
            switch (self.address.count, address.count) {
            case (4, 4), (16, 16):
                return matches { address[$0] }
            case (4, 16):
                guard address.starts(with: Self.ipv4MappedPrefix) else { return false }
                return matches { address[12 + $0] }
            case (16, 4):
                return matches { $0 < 12 ? Self.ipv4MappedPrefix[$0] : address[$0 - 12] }
            default:
                return false
            }
        }

        /// Parses an address (no prefix) into 4 or 16 bytes; nil if invalid.
        ///
        /// - Parameter text: a dotted-quad IPv4 address (`192.0.2.1`, four decimal parts) or an IPv6 address
        ///   (`2001:db8::1`, `::ffff:192.0.2.1`), without brackets, prefix or zone.
        /// - Returns: the address in network byte order: 4 bytes for IPv4, 16 for IPv6.
        public static func parseAddress(_ text: String) -> [UInt8]? {
            // inet_pton reads a C string: an embedded NUL would hide whatever follows it.
            guard !text.isEmpty, !text.utf8.contains(0) else { return nil }
            let isIPv6 = text.contains(":")
            var bytes = [UInt8](repeating: 0, count: isIPv6 ? 16 : 4)
            let result = bytes.withUnsafeMutableBytes { buffer in
                inet_pton(isIPv6 ? AF_INET6 : AF_INET, text, buffer.baseAddress)
            }
            return result == 1 ? bytes : nil
        }

        /// The reason a text is not a network, as a sentence fragment for a ``ConfigurationError``.
        struct ParseFailure: Error {
            let reason: String
        }

        /// Parses `text`, saying precisely what is wrong when it fails.
        static func parse(_ text: String) -> Result<IPNetwork, ParseFailure> {
            let slash = text.firstIndex(of: "/")
            let addressText = slash.map { String(text[..<$0]) } ?? text
            guard let address = parseAddress(addressText) else {
                let reason = "must be an IP address or a CIDR block, as in \"10.0.0.0/8\", \"127.0.0.1\" or \"fd00::/8\""
                return .failure(ParseFailure(reason: reason))
            }
            let maximum = address.count * 8
            guard let slash else { return .success(IPNetwork(address: address, prefixLength: maximum)) }
            let prefixText = text[text.index(after: slash)...]
            guard !prefixText.isEmpty, prefixText.count <= 3, prefixText.allSatisfy({ $0.isASCII && $0.isNumber }),
                let prefixLength = Int(prefixText), prefixLength <= maximum
            else {
                let family = address.count == 4 ? "IPv4" : "IPv6"
                let reason = "the prefix length of an \(family) network must be an integer from 0 to \(maximum)"
                return .failure(ParseFailure(reason: reason))
            }
            return .success(IPNetwork(address: address, prefixLength: prefixLength))
        }

        /// Whether the first ``prefixLength`` bits of the address whose byte `i` is `byte(i)` equal ``address``'s.
        private func matches(_ byte: (Int) -> UInt8) -> Bool {
            var index = 0
            while index * 8 < prefixLength {
                let mask = Self.mask(prefixLength, byte: index)
                if byte(index) & mask != address[index] { return false }
                index += 1
            }
            return true
        }

        /// The bits of byte `index` that a `prefixLength`-bit prefix covers.
        private static func mask(_ prefixLength: Int, byte index: Int) -> UInt8 {
            let covered = min(max(prefixLength - index * 8, 0), 8)
            return covered == 0 ? 0 : ~(UInt8(0xff) >> covered)
        }

        /// An address as text: dotted quad for 4 bytes; RFC 5952 for 16 (lowercase, the longest run of two or more
        /// zero groups shortened to `::`, IPv4-mapped addresses as `::ffff:a.b.c.d`).
        private static func format(_ address: [UInt8]) -> String {
            if address.count == 4 { return address.map { String($0) }.joined(separator: ".") }
            if address.starts(with: ipv4MappedPrefix) {
                return "::ffff:" + address[12...].map { String($0) }.joined(separator: ".")
            }
            let groups = (0..<8).map { UInt16(address[2 * $0]) << 8 | UInt16(address[2 * $0 + 1]) }
            // The longest run of zero groups, the first on a tie; a single zero group is not shortened.
            var best: Range<Int>?
            var start: Int?
            for index in 0...8 {
                if index < 8, groups[index] == 0 {
                    if start == nil { start = index }
                } else if let runStart = start {
                    if index - runStart >= 2, index - runStart > (best?.count ?? 0) { best = runStart..<index }
                    start = nil
                }
            }
            let hex = groups.map { String($0, radix: 16) }
            guard let best else { return hex.joined(separator: ":") }
            let head = hex[..<best.lowerBound].joined(separator: ":")
            let tail = hex[best.upperBound...].joined(separator: ":")
            return head + "::" + tail
        }
    }
}
