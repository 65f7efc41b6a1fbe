import Crypto
import SluiceConfig

/// Admin API keys: made by `sluice keygen`, stored only as their SHA-256, compared in constant time, and
/// shown in logs by their first characters only.
public enum AdminKeys {
    /// The characters of a key after its prefix: letters and digits, so a key survives any shell or header.
    private static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)
    /// Random characters after the prefix: 40 of 62 possible, about 238 bits.
    static let randomLength = 40

    /// A new key (`sk_live_…`, or `sk_test_…` when `test`) from the system's cryptographic random source,
    /// with the hexadecimal SHA-256 the configuration stores.
    public static func generate(test: Bool = false) -> (key: String, sha256: String) {
        var random = SystemRandomNumberGenerator()  // getrandom(2) on Linux
        var key = Array((test ? "sk_test_" : "sk_live_").utf8)
        for _ in 0..<randomLength {
            // Rejection sampling, so every character is equally likely.
            var value: UInt8
            repeat { value = random.next() } while value >= 248
            key.append(alphabet[Int(value % 62)])
        }
        let text = String(decoding: key, as: UTF8.self)
        return (text, hex(digest(text)))
    }

    /// The SHA-256 of `key`'s UTF-8.
    static func digest(_ key: String) -> [UInt8] { Array(SHA256.hash(data: Array(key.utf8))) }

    /// Lowercase hexadecimal.
    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// The configured key `presented` is, if any. Every configured digest is compared in full, whatever
    /// matches, so the time taken says nothing about how close a guess came.
    static func match(_ presented: String, among keys: [SluiceConfiguration.Admin.APIKey]) -> SluiceConfiguration.Admin.APIKey? {
        let digest = digest(presented)
        var found: SluiceConfiguration.Admin.APIKey?
        for key in keys where key.sha256.count == digest.count {
            var difference: UInt8 = 0
            for index in digest.indices { difference |= digest[index] ^ key.sha256[index] }
            if difference == 0, found == nil { found = key }
        }
        return found
    }

    /// What a log may say of a presented key: its first 12 characters (`sk_live_ab12…`), never more; a value too
    /// short to be a key is not shown at all.
    static func logPrefix(_ presented: String) -> String {
        let characters = Array(presented.unicodeScalars)
        guard characters.count >= 20 else { return "(\(characters.count) characters)" }
        var shown = ""
        shown.unicodeScalars.append(contentsOf: characters.prefix(12).map { $0.isASCII && $0.value >= 0x21 && $0.value < 0x7F ? $0 : "?" })
        return shown + "…"
    }
}
