extension SluiceConfiguration {
    /// Who may use the admin API: the `admin` section.
    ///
    /// ```yaml
    /// admin:
    ///   api_keys:
    ///     - { name: ops, sha256: "3f1c…" }   # `sluice keygen` prints a key and this line
    /// ```
    ///
    /// Only a key's SHA-256 is stored. Several keys may be live at once, so a key is rotated by adding the new one,
    /// deploying, then removing the old. Without keys the admin API answers 404: it is never open by default.
    public struct Admin: Sendable, Hashable {
        /// One admin API key: a name for logs, and the SHA-256 of the whole key.
        public struct APIKey: Sendable, Hashable {
            /// What logs call it (`ops`, `deploy-bot`).
            public let name: String
            /// The SHA-256 digest of the whole key (`sk_live_…`), 32 bytes.
            public let sha256: [UInt8]

            /// Creates a key entry.
            public init(name: String, sha256: [UInt8]) {
                self.name = name
                self.sha256 = sha256
            }

            /// The digest from 64 hexadecimal digits, or nil.
            public static func digest(hex: String) -> [UInt8]? {
                let digits = Array(hex.utf8)
                guard digits.count == 64 else { return nil }
                var bytes: [UInt8] = []
                bytes.reserveCapacity(32)
                for index in stride(from: 0, to: 64, by: 2) {
                    guard let high = hexValue(digits[index]), let low = hexValue(digits[index + 1]) else { return nil }
                    bytes.append(high << 4 | low)
                }
                return bytes
            }

            private static func hexValue(_ digit: UInt8) -> UInt8? {
                switch digit {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
                default: nil
                }
            }
        }

        /// The live keys; empty turns the admin API off (404).
        public var apiKeys: [APIKey]

        /// Creates the admin settings.
        public init(apiKeys: [APIKey] = []) {
            self.apiKeys = apiKeys
        }

        /// Each mistake, with its field; empty when valid.
        func problems() -> [(field: String, message: String)] {
            var problems: [(field: String, message: String)] = []
            var names = Set<String>()
            var digests = Set<[UInt8]>()
            for (index, key) in apiKeys.enumerated() {
                if key.name.isEmpty { problems.append(("api_keys[\(index)].name", "must not be empty")) }
                if !names.insert(key.name).inserted { problems.append(("api_keys[\(index)].name", "'\(key.name)' names two keys")) }
                if key.sha256.count != 32 { problems.append(("api_keys[\(index)].sha256", "must be 32 bytes")) }
                if !digests.insert(key.sha256).inserted { problems.append(("api_keys[\(index)].sha256", "the same key is listed twice")) }
            }
            return problems
        }
    }
}
