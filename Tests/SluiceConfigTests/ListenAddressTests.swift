import SluiceConfig
import Testing

struct ListenAddressTests {
    @Test(arguments: [
        ("127.0.0.1:7379", "127.0.0.1", 7379), ("[::1]:7380", "::1", 7380), ("localhost:0", "localhost", 0),
        ("0.0.0.0:65535", "0.0.0.0", 65535), ("[fe80::1%eth0]:80", "fe80::1%eth0", 80), ("sluice-1.internal:6379", "sluice-1.internal", 6379),
    ])
    func parses(text: String, host: String, port: Int) throws {
        let address = try #require(ListenAddress(text))
        #expect(address == ListenAddress(host: host, port: port))
        #expect(address.description == text)
    }

    @Test(arguments: [
        ("localhost", "missing the port; write host:port, as in \"127.0.0.1:7379\"; got \"localhost\""),
        ("::1:7379", "an IPv6 address needs brackets, as in \"[::1]:7379\"; got \"::1:7379\""),
        ("[::1]7379", "a port must follow the bracketed address, as in \"[::1]:7379\"; got \"[::1]7379\""),
        ("[::1:7379", "an IPv6 address needs a closing bracket, as in \"[::1]:7379\"; got \"[::1:7379\""),
        ("[]:7379", "the bracketed host must be an IPv6 address, as in \"[::1]:7379\"; got \"[]:7379\""),
        (":7379", "missing the host; write host:port, as in \"127.0.0.1:7379\" or \"0.0.0.0:7379\"; got \":7379\""),
        ("127.0.0.1:65536", "the port must be an integer from 0 to 65535; got \"127.0.0.1:65536\""),
        ("127.0.0.1:http", "the port must be an integer from 0 to 65535; got \"127.0.0.1:http\""),
        ("127.0.0.1:-1", "the port must be an integer from 0 to 65535; got \"127.0.0.1:-1\""),
        ("127.0.0.1:", "the port must be an integer from 0 to 65535; got \"127.0.0.1:\""),
        ("my host:80", "the host must be a host name or an IP address, as in \"127.0.0.1:7379\"; got \"my host:80\""),
    ])
    func rejectsInConfiguration(text: String, message: String) throws {
        #expect(ListenAddress(text) == nil)
        let error = try #require(parseError(onePolicy + "\nlisten:\n  http: \"\(text)\"\n"))
        #expect(error.code == .invalidValue)
        #expect(error.description == "listen.http (line 4): \(message)")
    }

    @Test func rejectsNonStrings() throws {
        let error = try #require(parseError(onePolicy + "\nlisten:\n  line: 7379\n"))
        #expect(error.description == "listen.line (line 4): missing the port; write host:port, as in \"127.0.0.1:7379\"; got 7379")
        let unquotedIPv6 = try #require(parseError(onePolicy + "\nlisten:\n  line: [::1]:7379\n"))
        #expect(unquotedIPv6.code == .invalidYAML)
        #expect(unquotedIPv6.line == 4)
        let list = try #require(parseError(onePolicy + "\nlisten:\n  line: [127.0.0.1, 7379]\n"))
        #expect(list.description == "listen.line (line 4): must be a \"host:port\" string (quote a bracketed IPv6 address: \"[::1]:7379\"), got a list")
        let mapping = try #require(parseError(onePolicy + "\nlisten:\n  line: { host: localhost, port: 1 }\n"))
        #expect(mapping.description == "listen.line (line 4): must be a \"host:port\" string such as \"127.0.0.1:7379\", got a mapping")
    }
}
