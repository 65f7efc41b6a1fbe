extension SluiceConfiguration.ForwardAuth {
    /// How a limit's bucket key is taken from the forwarded request. YAML: `ip`, `api_key`, `header:NAME`, or
    /// several joined by `+` (e.g. `ip+header:X-Account`, for login-style limits keyed by address and account
    /// together).
    ///
    /// A key built from several parts takes each part's value, in the order written; a request that lacks any
    /// part has no key for this limit.
    public struct KeySource: Sendable, Hashable, LosslessStringConvertible {
        /// One source of a bucket key.
        public enum Part: Sendable, Hashable {
            /// `ip`: the client's address (taken from `X-Forwarded-For` only when the peer is a trusted proxy).
            case ip
            /// `api_key`: the API key the request presents.
            case apiKey
            /// `header:NAME`: the value of the request header `NAME`, an RFC 7230 token without `+`, stored as
            /// written (HTTP header names compare case-insensitively).
            case header(String)
        }

        /// The parts, in the order their values make up the key; at least one, none twice.
        public var parts: [Part]

        /// Creates a key source; ``SluiceConfiguration``'s initializer checks it.
        ///
        /// - Parameter parts: at least one part, none twice, header names RFC 7230 tokens without `+`.
        public init(parts: [Part]) {
            self.parts = parts
        }

        /// Parses `ip`, `api_key`, `header:NAME`, or several of them joined by `+`; nil for anything else.
        ///
        /// - Parameter description: the text, such as `api_key` or `ip+header:X-Account`.
        public init?(_ description: String) {
            switch Self.parse(description) {
            case .success(let source): self = source
            case .failure: return nil
            }
        }

        /// The YAML form: the parts joined by `+`, as in `ip+header:X-Account`.
        public var description: String {
            parts.map { part in
                switch part {
                case .ip: "ip"
                case .apiKey: "api_key"
                case .header(let name): "header:\(name)"
                }
            }.joined(separator: "+")
        }

        /// The forms a key source may take, for error messages.
        static let expectation = "ip, api_key or header:NAME, or several joined by + (as in ip+header:X-Account)"

        /// The reason a text is not a key source, as a sentence fragment for a ``ConfigurationError``.
        struct ParseFailure: Error {
            let reason: String
        }

        /// Parses `text`, saying precisely what is wrong when it fails.
        static func parse(_ text: String) -> Result<KeySource, ParseFailure> {
            var parts: [Part] = []
            for partText in text.split(separator: "+", omittingEmptySubsequences: false) {
                let part: Part
                switch partText {
                case "ip": part = .ip
                case "api_key": part = .apiKey
                case _ where partText.hasPrefix("header:"):
                    let name = partText.dropFirst("header:".count)
                    guard isHeaderName(name) else {
                        let reason =
                            "header: must be followed by a header name made of letters, digits and ! # $ % & ' * - . ^ _ ` | ~,"
                            + " as in header:X-Account"
                        return .failure(ParseFailure(reason: reason))
                    }
                    part = .header(String(name))
                default:
                    return .failure(ParseFailure(reason: "must be \(expectation)"))
                }
                guard !parts.contains(where: { $0.isSameSource(as: part) }) else {
                    return .failure(ParseFailure(reason: "each source may appear only once in a key"))
                }
                parts.append(part)
            }
            return .success(KeySource(parts: parts))
        }

        /// What is wrong with ``parts``, or nil when they make a valid key.
        func problem() -> String? {
            if parts.isEmpty { return "must name at least one source: \(Self.expectation)" }
            for (index, part) in parts.enumerated() {
                if case .header(let name) = part, !Self.isHeaderName(Substring(name)) {
                    return "'\(name)' is not a header name: use letters, digits and ! # $ % & ' * - . ^ _ ` | ~"
                }
                if parts[..<index].contains(where: { $0.isSameSource(as: part) }) {
                    return "each source may appear only once in a key, got \(description)"
                }
            }
            return nil
        }

        /// Whether `name` is an RFC 7230 token (`tchar`s) without `+`, which separates a key's parts.
        static func isHeaderName(_ name: Substring) -> Bool {
            !name.isEmpty
                && name.utf8.allSatisfy { byte in
                    switch byte {
                    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                        UInt8(ascii: "0")...UInt8(ascii: "9"):
                        true
                    default: "!#$%&'*-.^_`|~".utf8.contains(byte)
                    }
                }
        }
    }
}

extension SluiceConfiguration.ForwardAuth.KeySource.Part {
    /// Whether two parts read the same value: equal, or headers whose names differ only in case.
    func isSameSource(as other: Self) -> Bool {
        switch (self, other) {
        case (.header(let name), .header(let otherName)): name.lowercased() == otherName.lowercased()
        default: self == other
        }
    }
}
