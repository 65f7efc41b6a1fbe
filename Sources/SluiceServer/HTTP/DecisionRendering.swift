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
/// Both are written straight into a `ByteBuffer` (``ReservedBytes``: no intermediate strings on the decision path); the
/// `String` forms, for callers that build a body around them and for tests, are read back from those bytes,
/// so there is one way each is formatted.
enum DecisionRendering {
    /// Room for the header lines of a decision on `check` (an estimate, see ``ReservedBytes``).
    static func headersEstimate(_ check: ResolvedCheck) -> Int { 330 + 2 * check.name.utf8.count }

    /// Room for the members of a decision's JSON body (an estimate: a name that escaping lengthens takes a second pass).
    static func fieldsEstimate(_ check: ResolvedCheck) -> Int { 200 + check.name.utf8.count }

    /// Writes the header lines (each ending in CRLF).
    static func writeHeaders(_ decision: Decision, _ check: ResolvedCheck, now: Timestamp, to out: inout ReservedBytes) {
        out.append("X-RateLimit-Limit: ")
        out.appendDecimal(decision.limit)
        out.append("\r\nX-RateLimit-Remaining: ")
        out.appendDecimal(decision.remaining)
        out.append("\r\nX-RateLimit-Reset: ")
        out.appendDecimal(RoundedUp.seconds(now.nanoseconds + decision.resetAfterNanoseconds))
        out.append("\r\nRateLimit-Policy: \"")
        out.append(check.name)
        out.append("\";q=")
        out.appendDecimal(check.check.rateLimit.limit)
        out.append(";w=")
        out.appendDecimal(max(1, RoundedUp.seconds(check.check.rateLimit.periodNanoseconds)))
        out.append("\r\nRateLimit: \"")
        out.append(check.name)
        out.append("\";r=")
        out.appendDecimal(decision.remaining)
        out.append(";t=")
        out.appendDecimal(RoundedUp.seconds(decision.resetAfterNanoseconds))
        out.append("\r\n")
        if !decision.isAllowed, decision.retryAfterNanoseconds >= 0 {
            out.append("Retry-After: ")
            out.appendDecimal(max(1, RoundedUp.seconds(decision.retryAfterNanoseconds)))
            out.append("\r\n")
        }
    }

    /// Writes the members of the JSON body without the braces: `"allowed":..,"limit":..,"remaining":..,
    /// "reset_after_ms":..,"retry_after_ms":..,"policy":".."`, plus `"shadowed":true` when a shadow policy let
    /// a denial through and `"reason":"cost_exceeds_capacity"` when it can never pass. `allowed` overrides the
    /// decision's own verdict (a multi-check response states the overall one).
    static func writeFields(_ decision: Decision, _ check: ResolvedCheck, allowed: Bool? = nil, to out: inout ReservedBytes) {
        out.append((allowed ?? decision.isAllowed) ? "\"allowed\":true,\"limit\":" : "\"allowed\":false,\"limit\":")
        out.appendDecimal(decision.limit)
        out.append(",\"remaining\":")
        out.appendDecimal(decision.remaining)
        out.append(",\"reset_after_ms\":")
        out.appendDecimal(decision.resetAfterMilliseconds)
        out.append(",\"retry_after_ms\":")
        out.appendDecimal(decision.retryAfterMilliseconds)
        out.append(",\"policy\":")
        out.appendJSONQuoted(check.name)
        if decision.isShadowed { out.append(",\"shadowed\":true") }
        if decision.outcome == .exceedsCapacity { out.append(",\"reason\":\"cost_exceeds_capacity\"") }
    }

    /// The header fields as name-value pairs.
    static func headers(_ decision: Decision, _ check: ResolvedCheck, now: Timestamp) -> [(name: String, value: String)] {
        var buffer = ByteBuffer()
        buffer.writeReserved(estimate: headersEstimate(check)) { writeHeaders(decision, check, now: now, to: &$0) }
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
        buffer.writeReserved(estimate: fieldsEstimate(check)) { writeFields(decision, check, allowed: allowed, to: &$0) }
        return String(buffer: buffer)
    }
}
