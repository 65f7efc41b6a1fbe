import SluiceConfig
import SluiceWorkload
import Testing

struct IPNetworkTests {
    typealias IPNetwork = SluiceConfiguration.IPNetwork

    @Test(arguments: [
        ("10.0.0.0/8", [10, 0, 0, 0] as [UInt8], 8, "10.0.0.0/8"),
        ("127.0.0.1", [127, 0, 0, 1], 32, "127.0.0.1/32"),
        ("127.0.0.1/32", [127, 0, 0, 1], 32, "127.0.0.1/32"),
        ("0.0.0.0/0", [0, 0, 0, 0], 0, "0.0.0.0/0"),
        ("192.168.1.128/25", [192, 168, 1, 128], 25, "192.168.1.128/25"),
        ("::1/128", [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 128, "::1/128"),
        ("::1", [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 128, "::1/128"),
        ("fd00::/8", [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 8, "fd00::/8"),
        ("::/0", [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 0, "::/0"),
        ("2001:db8::/32", [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 32, "2001:db8::/32"),
        ("::ffff:10.0.0.0/104", [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 0], 104, "::ffff:10.0.0.0/104"),
        ("fe80::/10", [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 10, "fe80::/10"),
    ])
    func parses(text: String, address: [UInt8], prefixLength: Int, description: String) throws {
        let network = try #require(IPNetwork(text))
        #expect(network.address == address)
        #expect(network.prefixLength == prefixLength)
        #expect(network.description == description)
        #expect(IPNetwork(network.description) == network)
    }

    @Test(arguments: [
        ("10.1.2.3/8", "10.0.0.0/8"), ("192.168.1.200/25", "192.168.1.128/25"), ("255.255.255.255/0", "0.0.0.0/0"),
        ("10.0.0.255/31", "10.0.0.254/31"), ("fdff:1:2::3/8", "fd00::/8"), ("febf::1/10", "fe80::/10"),
        ("2001:db8:ffff::1/33", "2001:db8:8000::/33"), ("::ffff:10.9.8.7/104", "::ffff:10.0.0.0/104"),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/0", "::/0"),
    ])
    func hostBitsAreZeroed(text: String, canonical: String) throws {
        let network = try #require(IPNetwork(text))
        #expect(network.description == canonical)
        #expect(network == IPNetwork(canonical))
    }

    @Test(arguments: [
        ("2001:DB8::1", "2001:db8::1/128"),  // lowercase
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1/128"),  // the first of two equal runs
        ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1/128"),  // the longer run
        ("1:0:1:1:1:1:1:1", "1:0:1:1:1:1:1:1/128"),  // a single zero group stays
        ("0:0:0:0:0:0:0:0", "::/128"), ("1::", "1::/128"), ("0:0:0:0:0:0:0:1", "::1/128"),
        ("::ffff:c000:0201", "::ffff:192.0.2.1/128"), ("2001:db8::0001", "2001:db8::1/128"),
    ])
    func ipv6IsWrittenAsRFC5952(text: String, description: String) throws {
        let network = try #require(IPNetwork(text))
        #expect(network.description == description)
        #expect(IPNetwork(description) == network)
    }

    @Test(arguments: [
        "10.0.0.0/33", "1.2.3", "::g", "fe80::1/129", "", "/8", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/+8",
        "10.0.0.0/8/8", "10.0.0.0/1000", "10.0.0.0/ 8", "10.0.0.0/eight", "256.0.0.1", "1.2.3.4.5", "1.2.3.-4",
        "0x0a.0.0.1", "fe80::1%eth0", "[::1]", "[::1]/128", " 10.0.0.1", "10.0.0.1 ", "1.2.3.4\u{0}", "localhost",
        "1:2:3:4:5:6:7:8:9", "1::2::3", ":::", "12345::", "::ffff:1.2.3", "١٠.0.0.1",
    ])
    func rejects(text: String) {
        #expect(IPNetwork(text) == nil)
    }

    @Test(arguments: [
        ("192.0.2.1", [192, 0, 2, 1] as [UInt8]?), ("0.0.0.0", [0, 0, 0, 0]), ("255.255.255.255", [255, 255, 255, 255]),
        ("::", [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        ("::ffff:192.0.2.1", [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1]),
        ("2001:db8::1", [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
        ("192.0.2.1/32", nil), ("[::1]", nil), ("", nil), ("::g", nil), ("1.2.3", nil), ("fe80::1%lo", nil),
    ])
    func parsesAddresses(text: String, bytes: [UInt8]?) {
        #expect(IPNetwork.parseAddress(text) == bytes)
    }

    @Test(arguments: [
        ("10.0.0.0/8", "10.255.1.2", true), ("10.0.0.0/8", "11.0.0.0", false), ("10.0.0.0/8", "9.255.255.255", false),
        ("127.0.0.1/32", "127.0.0.1", true), ("127.0.0.1/32", "127.0.0.2", false),
        ("192.168.1.128/25", "192.168.1.127", false), ("192.168.1.128/25", "192.168.1.255", true),
        ("0.0.0.0/0", "1.2.3.4", true), ("0.0.0.0/0", "255.255.255.255", true),
        ("::1/128", "::1", true), ("::1/128", "::2", false), ("::1/128", "127.0.0.1", false),
        ("fd00::/8", "fdff::1", true), ("fd00::/8", "fe00::1", false), ("fe80::/10", "febf::1", true),
        ("fe80::/10", "fec0::1", false), ("2001:db8::/32", "2001:db8:ffff::1", true), ("2001:db8::/32", "2001:db9::", false),
        ("::/0", "2001:db8::1", true),
        // IPv4-mapped IPv6 against an IPv4 network…
        ("10.0.0.0/8", "::ffff:10.1.2.3", true), ("10.0.0.0/8", "::ffff:11.1.2.3", false),
        ("0.0.0.0/0", "::ffff:1.2.3.4", true), ("0.0.0.0/0", "::1", false), ("10.0.0.0/8", "::10.1.2.3", false),
        ("10.0.0.0/8", "2001:db8::a01:203", false), ("127.0.0.1/32", "::ffff:127.0.0.1", true),
        // …and IPv4 against an IPv6 network, as its mapped form.
        ("::ffff:10.0.0.0/104", "10.9.9.9", true), ("::ffff:10.0.0.0/104", "11.0.0.1", false),
        ("::ffff:0:0/96", "203.0.113.9", true), ("::/0", "10.0.0.1", true), ("::/96", "10.0.0.1", false),
        ("2001:db8::/32", "10.0.0.1", false), ("::1/128", "0.0.0.1", false),
    ])
    func contains(network: String, address: String, expected: Bool) throws {
        let network = try #require(IPNetwork(network))
        let bytes = try #require(IPNetwork.parseAddress(address))
        #expect(network.contains(bytes) == expected)
    }

    @Test func containsRejectsOtherLengths() throws {
        for network in ["0.0.0.0/0", "::/0", "10.0.0.0/8"] {
            let network = try #require(IPNetwork(network))
            #expect(!network.contains([]))
            #expect(!network.contains([10, 0, 0]))
            #expect(!network.contains([10, 0, 0, 0, 0]))
            #expect(!network.contains([UInt8](repeating: 0, count: 15)))
            #expect(!network.contains([UInt8](repeating: 0, count: 17)))
        }
    }

    /// `contains` against a reference that compares bit by bit, over random networks and nearby addresses.
    @Test func containsMatchesABitwiseReference() throws {
        var generator = SplitMix64(seed: 0x1_9E7_C1D2)
        func bit(_ bytes: [UInt8], _ index: Int) -> Bool { bytes[index / 8] & (0x80 >> (index % 8)) != 0 }
        for _ in 0..<5_000 {
            let length = Bool.random(using: &generator) ? 4 : 16
            let base = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let prefixLength = Int.random(in: 0...(length * 8), using: &generator)
            let network = try #require(IPNetwork("\(Self.text(base))/\(prefixLength)"))
            // Flip one bit (or none), so addresses land on both sides of the boundary.
            var candidate = base
            let flipped = Int.random(in: -1..<(length * 8), using: &generator)
            if flipped >= 0 { candidate[flipped / 8] ^= 0x80 >> (flipped % 8) }
            let expected = (0..<prefixLength).allSatisfy { bit(candidate, $0) == bit(base, $0) }
            #expect(network.contains(candidate) == expected, "\(network) \(candidate)")
            #expect(expected == (flipped < 0 || flipped >= prefixLength))
            if length == 4 {
                #expect(network.contains([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] + candidate) == expected)
            }
            // Host bits are zeroed: the network's own address reads back from its description.
            #expect(IPNetwork(network.description) == network)
            #expect((prefixLength..<(length * 8)).allSatisfy { !bit(network.address, $0) })
        }
    }

    @Test func defaultTrustedProxiesAreLoopback() throws {
        let defaults = SluiceConfiguration.ForwardAuth.defaultTrustedProxies
        #expect(defaults.map(\.description) == ["127.0.0.1/32", "::1/128"])
        #expect(defaults == [try #require(IPNetwork("127.0.0.1/32")), try #require(IPNetwork("::1/128"))])
        #expect(defaults.contains { $0.contains([127, 0, 0, 1]) })
        #expect(!defaults.contains { $0.contains([127, 0, 0, 2]) })
    }

    /// Text for 4 or 16 bytes: dotted quad, or eight full hexadecimal groups.
    private static func text(_ bytes: [UInt8]) -> String {
        if bytes.count == 4 { return bytes.map { String($0) }.joined(separator: ".") }
        return (0..<8).map { String(UInt16(bytes[2 * $0]) << 8 | UInt16(bytes[2 * $0 + 1]), radix: 16) }
            .joined(separator: ":")
    }
}
