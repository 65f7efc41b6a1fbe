import Crypto
public import SluiceConfig
public import SluiceCore

/// The forward-auth rules, resolved against a policy set: what a gateway's forwarded request is checked against.
///
/// Rules are tried in order and the first whose `path_prefix` and `methods` match decides; a request that
/// matches none is allowed. A limit whose key source is absent from the request (no API key, no such
/// header) is skipped.
public struct ForwardAuthRules: Sendable {
    struct Limit: Sendable {
        let policyIndex: Int
        let source: SluiceConfiguration.ForwardAuth.KeySource
    }

    struct Rule: Sendable {
        let pathPrefix: String
        let methods: Set<String>?
        let limits: [Limit]
    }

    /// The status a denial gets unless the request names another (`?deny_status=403` for nginx).
    public let denyStatus: Int
    let trustedProxies: [SluiceConfiguration.IPNetwork]
    let rules: [Rule]

    /// No rules: every forwarded request is allowed.
    public static let none = ForwardAuthRules(denyStatus: 429, trustedProxies: SluiceConfiguration.ForwardAuth.defaultTrustedProxies, rules: [])

    private init(denyStatus: Int, trustedProxies: [SluiceConfiguration.IPNetwork], rules: [Rule]) {
        self.denyStatus = denyStatus
        self.trustedProxies = trustedProxies
        self.rules = rules
    }

    /// Resolves `configuration` against `policies`. Configuration loading has already checked that every
    /// policy exists; a limit naming one that does not is dropped rather than trusted.
    public init(_ configuration: SluiceConfiguration.ForwardAuth, policies: PolicySet) {
        denyStatus = configuration.denyStatus
        trustedProxies = configuration.trustedProxies
        rules = configuration.rules.map { rule in
            Rule(
                pathPrefix: rule.pathPrefix, methods: rule.methods,
                limits: rule.limits.compactMap { limit in
                    policies.index(ofName: limit.policy).map { Limit(policyIndex: $0, source: limit.by) }
                }
            )
        }
    }

    /// The path as the application will most likely see it, so a rule cannot be sidestepped by spelling:
    /// percent-encoded unreserved characters decoded (`/%6Cogin` → `/login`), repeated slashes merged
    /// (`//login`), and `.` and `..` segments removed (`/a/../login`). Matching stays case-sensitive.
    static func normalizedPath(_ raw: Substring) -> String {
        var decoded = ""
        decoded.reserveCapacity(raw.utf8.count)
        var bytes = raw.utf8.makeIterator()
        while let byte = bytes.next() {
            guard byte == UInt8(ascii: "%") else {
                decoded.unicodeScalars.append(UnicodeScalar(byte))
                continue
            }
            let high = bytes.next()
            let low = bytes.next()
            if let high, let low, let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16),
                (value >= 0x41 && value <= 0x5A) || (value >= 0x61 && value <= 0x7A) || (value >= 0x30 && value <= 0x39)
                    || value == 0x2D || value == 0x2E || value == 0x5F || value == 0x7E
            {
                decoded.unicodeScalars.append(UnicodeScalar(value))
            } else {
                // Not an unreserved character: keep the escape as it is.
                decoded += "%"
                if let high { decoded.unicodeScalars.append(UnicodeScalar(high)) }
                if let low { decoded.unicodeScalars.append(UnicodeScalar(low)) }
            }
        }
        var segments: [Substring] = []
        for segment in decoded.split(separator: "/", omittingEmptySubsequences: true) {
            switch segment {
            case ".": continue
            case "..": _ = segments.popLast()
            default: segments.append(segment)
            }
        }
        let trailingSlash = decoded.hasSuffix("/") && !segments.isEmpty
        return "/" + segments.joined(separator: "/") + (trailingSlash ? "/" : "")
    }

    /// The first rule matching `method` and `path` (normalized).
    func rule(method: String, path: Substring) -> Rule? {
        rules.first { rule in
            path.hasPrefix(rule.pathPrefix) && (rule.methods?.contains(method.uppercased()) ?? true)
        }
    }

    /// The client's address: the socket peer, unless the peer is a trusted proxy, in which case the
    /// right-most address of `X-Forwarded-For` that is not itself a trusted proxy.
    ///
    /// - Returns: the address as text (canonical form) and bytes, or nil when none is known.
    func clientAddress(peer: String?, forwardedFor: String?) -> (text: String, bytes: [UInt8])? {
        guard let peer, let peerBytes = SluiceConfiguration.IPNetwork.parseAddress(peer) else { return nil }
        guard isTrusted(peerBytes), let forwardedFor else { return (peer, peerBytes) }
        var candidate: (text: String, bytes: [UInt8])?
        for entry in forwardedFor.split(separator: ",").reversed() {
            let text = trimmedFieldValue(entry)
            guard let bytes = SluiceConfiguration.IPNetwork.parseAddress(text) else { break }
            candidate = (text, bytes)
            if !isTrusted(bytes) { break }
        }
        return candidate ?? (peer, peerBytes)
    }

    private func isTrusted(_ address: [UInt8]) -> Bool {
        trustedProxies.contains { $0.contains(address) }
    }

    /// The API key a request carries: `X-API-Key`, else `Authorization: Bearer <token>`.
    static func apiKey(xAPIKey: String?, authorization: String?) -> String? {
        if let key = xAPIKey, !key.isEmpty { return key }
        guard let authorization else { return nil }
        let parts = authorization.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = trimmedFieldValue(parts[1])
        return token.isEmpty ? nil : token
    }

    /// The SHA-256 of an API key, in hex: the only form in which a key reaches a bucket.
    static func apiKeyDigest(_ key: String) -> String {
        SHA256.hash(data: Array(key.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    /// What of an API key may be logged: at most its first 12 characters (`sk_live_ab12…`), and never more
    /// than a third of it, so a short key is not all but disclosed.
    static func apiKeyPrefix(_ key: String) -> String {
        let shown = min(12, key.count / 3)
        return shown == 0 ? String(repeating: "*", count: min(key.count, 8)) : String(key.prefix(shown)) + "…"
    }
}

/// `text` without leading and trailing spaces and tabs (the optional whitespace of HTTP field values).
func trimmedFieldValue(_ text: Substring) -> String {
    let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
    guard let first = text.firstIndex(where: { !isSpace($0) }), let last = text.lastIndex(where: { !isSpace($0) }) else { return "" }
    return String(text[first...last])
}
