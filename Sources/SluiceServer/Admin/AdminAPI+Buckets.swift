import Logging
import NIOCore
import NIOHTTP1
import SluiceCore

extension AdminAPI {
    /// `GET /v1/buckets/{policy}/{key}`: the bucket's limit, what remains and when it is full again, taking
    /// nothing (a global policy's from its lease, or Redis).
    func bucket(policy name: String, key: String, now: Timestamp, context: ServerContext) -> HTTPAPIOutcome {
        let policies = context.registry.policies
        guard let index = policies.index(ofName: name) else {
            return .response(.error(.notFound, code: "unknown_policy", "no policy named \(excerpt(name))"))
        }
        var bytes = key
        let override = policies.override(policy: index, key: key)
        let check = bytes.withUTF8 { policies.check(policy: index, key: UnsafeRawBufferPointer($0), cost: 1) }
        let outcome = bytes.withUTF8 { raw in
            Result { () throws(RequestError) in
                try context.limiter.decide(check, policies: policies, key: UnsafeRawBufferPointer(raw), at: now, consume: false)
            }
        }
        let rateLimit = check.rateLimit
        let render = { @Sendable (decision: Decision) in
            Self.bucketResponse(policy: name, key: key, override: override, rateLimit: rateLimit, decision)
        }
        switch outcome {
        case .failure(let error):
            return .response(.error(.unprocessableEntity, code: "unsupported_checks", error.message))
        case .success(.decided(let decision)):
            return .response(render(decision))
        case .success(.pending(let request)):
            return .pending(PendingAnswer(request, countsVerdict: false) { result, _ in render(result.decisions[0]) })
        }
    }

    /// `{"policy", "key", "limit", "remaining", "reset_after_ms", "override"}` of the bucket as it is now. A peek
    /// of 1 says what a take would leave: the one it would take is added back to `remaining`, and for a token
    /// bucket one token's time taken off the reset (a full bucket resets in 0).
    static func bucketResponse(
        policy: String, key: String, override: Policy.Override?, rateLimit: RateLimit, _ peek: Decision
    ) -> HTTPAPIResponse {
        let remaining = peek.isAllowed ? peek.remaining + 1 : peek.remaining
        var reset = peek.resetAfterNanoseconds
        if remaining >= peek.limit {
            reset = 0
        } else if peek.isAllowed, rateLimit.algorithm == .tokenBucket {
            reset = max(0, reset - rateLimit.periodNanoseconds / rateLimit.limit)
        }
        return HTTPAPIResponse(
            status: .ok,
            body: "{\"policy\":\(JSONText.quoted(policy)),\"key\":\(JSONText.quoted(key)),\"limit\":\(peek.limit),\"remaining\":\(remaining),"
                + "\"reset_after_ms\":\(RoundedUp.milliseconds(reset)),\"override\":\(override.map { JSONText.quoted($0.pattern) } ?? "null")}"
        )
    }

    /// `DELETE /v1/buckets/{policy}/{key}`: the bucket is full again (a global one for the whole fleet).
    func resetBucket(policy name: String, key: String, now: Timestamp, context: ServerContext, by actor: Actor) -> HTTPAPIOutcome {
        let policies = context.registry.policies
        guard let index = policies.index(ofName: name) else {
            return .response(.error(.notFound, code: "unknown_policy", "no policy named \(excerpt(name))"))
        }
        var bytes = key
        let check = bytes.withUTF8 { policies.check(policy: index, key: UnsafeRawBufferPointer($0), cost: 1) }
        let policy = policies.policies[index]
        let body = "{\"policy\":\(JSONText.quoted(name)),\"key\":\(JSONText.quoted(key)),\"reset\":true}"
        let logged = { @Sendable [logger] in
            logger.notice(
                "admin: reset a bucket",
                metadata: ["admin.key": "\(actor.key)", "client.address": "\(actor.client)", "sluice.policy": "\(name)", "sluice.key": "\(excerpt(key))"]
            )
        }
        guard policy.global != nil else {
            _ = context.limiter.reset(check.key)
            logged()
            return .response(HTTPAPIResponse(status: .ok, body: body))
        }
        guard let global = context.limiter.global else {
            return .response(.error(.unprocessableEntity, code: "unsupported_checks", "policy '\(name)' is global but this server has no Redis"))
        }
        let keyBytes = Array(key.utf8)
        return .deferred {
            guard await global.reset(check, policy: policy, key: keyBytes) else {
                return .error(.serviceUnavailable, code: "redis_unavailable", "Redis did not confirm the reset within its timeout; nothing is known to have changed")
            }
            logged()
            return HTTPAPIResponse(status: .ok, body: body)
        }
    }
}
