/// A host and TCP port to listen on, written `host:port` or, for IPv6, `[address]:port`.
///
/// Port 0 asks the system for a free port (tests use it). The host is not resolved here: `localhost`,
/// `0.0.0.0`, `127.0.0.1` and `[::1]` are all accepted as written and bound by the server.
public struct ListenAddress: Sendable, Hashable, LosslessStringConvertible {
    /// The highest TCP port.
    public static let maximumPort = 65_535

    /// The host name or IP address, without brackets.
    public var host: String
    /// The TCP port, 0 through 65535.
    public var port: Int

    /// Creates an address.
    ///
    /// - Parameters:
    ///   - host: a host name or IP address, without brackets.
    ///   - port: 0 through 65535; 0 for any free port.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port` or `[ipv6]:port`; nil for anything else.
    ///
    /// - Parameter description: the text, such as `127.0.0.1:7379` or `[::1]:0`.
    public init?(_ description: String) {
        switch Self.parse(description) {
        case .success(let address): self = address
        case .failure: return nil
        }
    }

    /// `host:port`, with brackets around an IPv6 host.
    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// The reason `text` is not an address, as a sentence fragment for a ``ConfigurationError``.
    struct ParseFailure: Error {
        let reason: String
    }

    /// Parses `text`, saying precisely what is wrong when it fails.
    static func parse(_ text: String) -> Result<ListenAddress, ParseFailure> {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                return .failure(ParseFailure(reason: "an IPv6 address needs a closing bracket, as in \"[::1]:7379\""))
            }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.first == ":" else {
                return .failure(ParseFailure(reason: "a port must follow the bracketed address, as in \"[::1]:7379\""))
            }
            portText = rest.dropFirst()
            guard Self.isIPv6Literal(host) else {
                return .failure(ParseFailure(reason: "the bracketed host must be an IPv6 address, as in \"[::1]:7379\""))
            }
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                return .failure(ParseFailure(reason: "missing the port; write host:port, as in \"127.0.0.1:7379\""))
            }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            guard !host.contains(":") else {
                return .failure(ParseFailure(reason: "an IPv6 address needs brackets, as in \"[::1]:7379\""))
            }
            guard !host.isEmpty else {
                let reason = "missing the host; write host:port, as in \"127.0.0.1:7379\" or \"0.0.0.0:7379\""
                return .failure(ParseFailure(reason: reason))
            }
            guard host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_") })
            else {
                return .failure(ParseFailure(reason: "the host must be a host name or an IP address, as in \"127.0.0.1:7379\""))
            }
        }
        guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy({ $0.isASCII && $0.isNumber }),
            let port = Int(portText), port <= maximumPort
        else {
            return .failure(ParseFailure(reason: "the port must be an integer from 0 to \(maximumPort)"))
        }
        return .success(ListenAddress(host: String(host), port: port))
    }

    /// Whether `host` is an IPv6 address, optionally with a zone after `%` (`fe80::1%eth0`).
    private static func isIPv6Literal(_ host: Substring) -> Bool {
        let address = host.prefix { $0 != "%" }
        let zone = host.dropFirst(address.count).dropFirst()
        let addressIsValid = address.contains(":")
            && address.allSatisfy { $0.isASCII && ($0.isHexDigit || $0 == ":" || $0 == ".") }
        let zoneIsValid = address.count == host.count
            || (!zone.isEmpty && zone.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) })
        return addressIsValid && zoneIsValid
    }
}
