import NIOCore
import SluiceCore

/// How a decision appears over HTTP: the rate-limit header fields and the JSON body.
///
/// Header fields, for the deciding check:
/// - `X-RateLimit-Limit`: the capacity (burst for a token bucket); `X-RateLimit-Remaining`: what is left.
/// - `X-RateLimit-Reset`: when the bucket is full again, as Unix epoch seconds (rounded up).
/// - `RateLimit-Policy: "name";q=<limit>;w=<period in seconds>` and `RateLimit: "name";r=<remaining>;t=<seconds to reset>`
///   as in draft-ietf-httpapi-ratelimit-headers-11.
/// - `Retry-After` (denials only): whole seconds, rounded up, at least 1; absent when the cost exceeds the
///   capacity, since no wait would help.
///
/// Both are written straight into a `ByteBuffer` (no intermediate strings on the decision path); the
/// `String` forms, for callers that build a body around them and for tests, are read back from those bytes,
/// so there is one way each is formatted.
enum DecisionRendering {
    /// Writes the header lines (each ending in CRLF).
    static func writeHeaders(_ decision: Decision, _ check: ResolvedCheck, now: Timestamp, to buffer: inout ByteBuffer) {
        buffer.writeStaticString("X-RateLimit-Limit: ")
        buffer.writeDecimal(decision.limit)
        buffer.writeStaticString("\r\nX-RateLimit-Remaining: ")
        buffer.writeDecimal(decision.remaining)
        buffer.writeStaticString("\r\nX-RateLimit-Reset: ")
        buffer.writeDecimal(RoundedUp.seconds(now.nanoseconds + decision.resetAfterNanoseconds))
        buffer.writeStaticString("\r\nRateLimit-Policy: \"")
        buffer.writeString(check.name)
        buffer.writeStaticString("\";q=")
        buffer.writeDecimal(check.check.rateLimit.limit)
        buffer.writeStaticString(";w=")
        buffer.writeDecimal(max(1, RoundedUp.seconds(check.check.rateLimit.periodNanoseconds)))
        buffer.writeStaticString("\r\nRateLimit: \"")
        buffer.writeString(check.name)
        buffer.writeStaticString("\";r=")
        buffer.writeDecimal(decision.remaining)
        buffer.writeStaticString(";t=")
        buffer.writeDecimal(RoundedUp.seconds(decision.resetAfterNanoseconds))
        buffer.writeStaticString("\r\n")
        if !decision.isAllowed, decision.retryAfterNanoseconds >= 0 {
            buffer.writeStaticString("Retry-After: ")
            buffer.writeDecimal(max(1, RoundedUp.seconds(decision.retryAfterNanoseconds)))
            buffer.writeStaticString("\r\n")
        }
    }

    /// Writes the members of the JSON body without the braces: `"allowed":..,"limit":..,"remaining":..,
    /// "reset_after_ms":..,"retry_after_ms":..,"policy":".."`, plus `"shadowed":true` when a shadow policy let
    /// a denial through and `"reason":"cost_exceeds_capacity"` when it can never pass. `allowed` overrides the
    /// decision's own verdict (a multi-check response states the overall one).
    static func writeFields(_ decision: Decision, _ check: ResolvedCheck, allowed: Bool? = nil, to buffer: inout ByteBuffer) {
        buffer.writeStaticString((allowed ?? decision.isAllowed) ? "\"allowed\":true,\"limit\":" : "\"allowed\":false,\"limit\":")
        buffer.writeDecimal(decision.limit)
        buffer.writeStaticString(",\"remaining\":")
        buffer.writeDecimal(decision.remaining)
        buffer.writeStaticString(",\"reset_after_ms\":")
        buffer.writeDecimal(decision.resetAfterMilliseconds)
        buffer.writeStaticString(",\"retry_after_ms\":")
        buffer.writeDecimal(decision.retryAfterMilliseconds)
        buffer.writeStaticString(",\"policy\":")
        buffer.writeString(JSONText.quoted(check.name))
        if decision.isShadowed { buffer.writeStaticString(",\"shadowed\":true") }
        if decision.outcome == .exceedsCapacity { buffer.writeStaticString(",\"reason\":\"cost_exceeds_capacity\"") }
    }

    /// The header fields as name-value pairs.
    static func headers(_ decision: Decision, _ check: ResolvedCheck, now: Timestamp) -> [(name: String, value: String)] {
        var buffer = ByteBuffer()
        writeHeaders(decision, check, now: now, to: &buffer)
        return String(buffer: buffer).split(separator: "\r\n").compactMap { line -> (name: String, value: String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), String(line[colon...].dropFirst(2)))
        }
    }

    /// The JSON body of one decision.
    static func json(_ decision: Decision, _ check: ResolvedCheck) -> String { "{" + fields(decision, check) + "}" }

    /// The members of ``json(_:_:)`` without the braces.
    static func fields(_ decision: Decision, _ check: ResolvedCheck, allowed: Bool? = nil) -> String {
        var buffer = ByteBuffer()
        writeFields(decision, check, allowed: allowed, to: &buffer)
        return String(buffer: buffer)
    }
}
