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
enum DecisionRendering {
    static func seconds(roundingUp nanoseconds: Int64) -> Int64 {
        nanoseconds <= 0 ? 0 : (nanoseconds + 999_999_999) / 1_000_000_000
    }

    static func milliseconds(roundingUp nanoseconds: Int64) -> Int64 {
        nanoseconds <= 0 ? 0 : (nanoseconds + 999_999) / 1_000_000
    }

    static func headers(_ decision: Decision, _ check: ResolvedCheck, now: Timestamp) -> [(name: String, value: String)] {
        let resetSeconds = seconds(roundingUp: decision.resetAfterNanoseconds)
        let window = max(1, seconds(roundingUp: check.check.rateLimit.periodNanoseconds))
        var fields: [(name: String, value: String)] = [
            ("X-RateLimit-Limit", String(decision.limit)),
            ("X-RateLimit-Remaining", String(decision.remaining)),
            ("X-RateLimit-Reset", String(seconds(roundingUp: now.nanoseconds + decision.resetAfterNanoseconds))),
            ("RateLimit-Policy", "\"\(check.name)\";q=\(check.check.rateLimit.limit);w=\(window)"),
            ("RateLimit", "\"\(check.name)\";r=\(decision.remaining);t=\(resetSeconds)"),
        ]
        if !decision.isAllowed, decision.retryAfterNanoseconds >= 0 {
            fields.append(("Retry-After", String(max(1, seconds(roundingUp: decision.retryAfterNanoseconds)))))
        }
        return fields
    }

    /// `{"allowed":..,"limit":..,"remaining":..,"reset_after_ms":..,"retry_after_ms":..,"policy":".."}`, plus
    /// `"shadowed":true` when a shadow policy let a denial through and `"reason":"cost_exceeds_capacity"` when it can never pass.
    static func json(_ decision: Decision, _ check: ResolvedCheck) -> String {
        "{" + fields(decision, check) + "}"
    }

    /// The members of ``json(_:_:)`` without the braces; `allowed` overrides the decision's own verdict
    /// (a multi-check response states the overall one).
    static func fields(_ decision: Decision, _ check: ResolvedCheck, allowed: Bool? = nil) -> String {
        var text = "\"allowed\":\(allowed ?? decision.isAllowed),\"limit\":\(decision.limit),\"remaining\":\(decision.remaining)"
        text += ",\"reset_after_ms\":\(milliseconds(roundingUp: decision.resetAfterNanoseconds))"
        let retry = decision.isAllowed ? 0 : decision.retryAfterNanoseconds < 0 ? -1 : milliseconds(roundingUp: decision.retryAfterNanoseconds)
        text += ",\"retry_after_ms\":\(retry),\"policy\":\(JSONText.quoted(check.name))"
        if decision.isShadowed { text += ",\"shadowed\":true" }
        if decision.outcome == .exceedsCapacity { text += ",\"reason\":\"cost_exceeds_capacity\"" }
        return text
    }
}
