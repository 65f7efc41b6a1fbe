import NIOCore
import SluiceCore

extension LineCommandProcessor {
    /// Resolves `policy key cost` at `offset` into a check, or writes the error and returns nil.
    private func resolveCheck(
        _ command: RESPCommand, at offset: Int, costPresent: Bool, policies: PolicySet, into output: inout ByteBuffer
    ) -> Check? {
        let cost: Int64
        if costPresent {
            guard let parsed = command.positiveInteger(offset + 2) else {
                output.writeRESPError("ERR cost must be a positive integer, got '\(excerpt(command.string(offset + 2)))'")
                return nil
            }
            cost = parsed
        } else {
            cost = 1
        }
        guard let index = command.withArgument(offset, { policies.index(ofName: $0) }) else {
            output.writeRESPError("ERR unknown policy '\(excerpt(command.string(offset)))'")
            return nil
        }
        guard validateKey(command, at: offset + 1, into: &output) else { return nil }
        return command.withArgument(offset + 1) { policies.check(policy: index, key: $0, cost: cost) }
    }

    private func validateKey(_ command: RESPCommand, at index: Int, into output: inout ByteBuffer) -> Bool {
        let length = command.length(index)
        if length == 0 {
            output.writeRESPError("ERR key must not be empty")
            return false
        }
        if length > context.maximumKeyBytes {
            output.writeRESPError("ERR key is \(length) bytes, longer than the limit of \(context.maximumKeyBytes)")
            return false
        }
        return true
    }

    /// `TAKE policy key [cost]` and `PEEK policy key [cost]`.
    mutating func decideSingle(_ command: RESPCommand, now: Timestamp, consume: Bool, into output: inout ByteBuffer) -> Action {
        guard command.count == 3 || command.count == 4 else {
            wrongArity(command, into: &output)
            return .proceed
        }
        // Read once: `policies` goes through the configuration's snapshot, a retain and a release on every access.
        let policies = self.policies
        guard let check = resolveCheck(command, at: 1, costPresent: command.count == 4, policies: policies, into: &output) else { return .proceed }
        let outcome = command.withArgument(2) { key in
            Result { () throws(RequestError) in try context.limiter.decide(check, policies: policies, key: key, at: now, consume: consume) }
        }
        switch outcome {
        case .failure(let error):
            output.writeRESPError("ERR \(error.message)")
            return .proceed
        case .success(.decided(let decision)):
            // The hot path: one decision (local, or from a lease), no allocation.
            batch.count(decision, in: policies)
            context.report(decision, of: check, policies: policies, key: command.string(2), now: now)
            output.writeRESPDecision(decision)
            return .proceed
        case .success(.pending(let request)):
            // The key's text is made only if someone listens (the command's buffer is kept, not copied).
            let (context, policies) = (context, policies)
            return .wait(
                PendingAnswer(request, countsVerdict: false) { result, now in
                    context.report(result.decisions[0], of: check, policies: policies, key: command.string(2), now: now)
                } render: { result, _ in
                    var reply = ByteBuffer()
                    reply.writeRESPDecision(result.decisions[0])
                    return reply
                }
            )
        }
    }

    /// `MTAKE policy key cost [policy key cost ...]`: all or nothing.
    mutating func decideMany(_ command: RESPCommand, now: Timestamp, into output: inout ByteBuffer) -> Action {
        guard command.count >= 4, (command.count - 1) % 3 == 0 else {
            wrongArity(command, into: &output)
            return .proceed
        }
        var checks: [Check] = []
        checks.reserveCapacity((command.count - 1) / 3)
        var offset = 1
        while offset < command.count {
            guard let check = resolveCheck(command, at: offset, costPresent: true, policies: policies, into: &output) else { return .proceed }
            checks.append(check)
            offset += 3
        }
        return decideRequest(checks, keyBytes: { command.bytes(1 + 3 * $0 + 1) }, now: now, consume: true, countsVerdict: true, into: &output) {
            result, reply in Self.writeMulti(result, into: &reply)
        }
    }

    /// Decides a request's checks through the one all-or-nothing rule, and writes its reply with `render`:
    /// now, or once Redis answers.
    private mutating func decideRequest(
        _ checks: [Check], keyBytes: (Int) -> [UInt8], now: Timestamp, consume: Bool, countsVerdict: Bool, into output: inout ByteBuffer,
        render: @escaping @Sendable (RateLimiter.MultiDecision, inout ByteBuffer) -> Void
    ) -> Action {
        let outcome: RateLimiter.RequestOutcome
        do {
            outcome = try context.limiter.decide(request: checks, policies: policies, keyBytes: keyBytes, at: now, consume: consume)
        } catch {
            output.writeRESPError("ERR \(error.message)")
            return .proceed
        }
        switch outcome {
        case .decided(let result):
            batch.count(result, byVerdict: countsVerdict, in: policies)
            context.report(result, of: checks, policies: policies, key: { String(decoding: keyBytes($0), as: UTF8.self) }, now: now)
            render(result, &output)
            return .proceed
        case .pending(let request):
            let (context, policies) = (context, policies)
            // Keys as text only while someone listens: no allocation per waiting request otherwise.
            let keys = context.events?.isListening == true ? checks.indices.map { String(decoding: keyBytes($0), as: UTF8.self) } : []
            return .wait(
                PendingAnswer(request, countsVerdict: countsVerdict) { result, now in
                    context.report(result, of: checks, policies: policies, key: { $0 < keys.count ? keys[$0] : "" }, now: now)
                } render: { result, _ in
                    var reply = ByteBuffer()
                    render(result, &reply)
                    return reply
                }
            )
        }
    }

    /// MTAKE's reply: the verdict, then one decision per check.
    static func writeMulti(_ result: RateLimiter.MultiDecision, into output: inout ByteBuffer) {
        output.writeRESPArrayHeader(1 + result.decisions.count)
        output.writeRESPInteger(result.isAllowed ? 1 : 0)
        for decision in result.decisions {
            output.writeRESPDecision(decision)
        }
    }

    /// `THROTTLE key limit period [cost] [algorithm]`: an inline limit; equal limits share buckets.
    mutating func throttle(_ command: RESPCommand, now: Timestamp, into output: inout ByteBuffer) {
        guard command.count >= 4, command.count <= 6 else { return wrongArity(command, into: &output) }
        guard let limit = command.positiveInteger(2) else {
            return output.writeRESPError("ERR limit must be a positive integer, got '\(excerpt(command.string(2)))'")
        }
        let period: Int64
        if let milliseconds = command.positiveInteger(3) {
            guard milliseconds <= RateLimit.maximumPeriodNanoseconds / 1_000_000 else {
                return output.writeRESPError("ERR period must be from 1ms to 366d, got \(milliseconds)ms")
            }
            period = milliseconds * 1_000_000
        } else {
            do {
                period = try PolicyDuration.parseNanoseconds(command.string(3))
            } catch {
                return output.writeRESPError("ERR period \(error.message), or an integer number of milliseconds")
            }
        }
        var cost: Int64 = 1
        var algorithm = Algorithm.tokenBucket
        var next = 4
        if next < command.count, command.positiveInteger(next) == nil, Algorithm(rawValue: command.string(next).lowercased()) != nil {
            // THROTTLE key limit period algorithm: the cost may be left out.
        } else if next < command.count {
            guard let parsed = command.positiveInteger(next) else {
                return output.writeRESPError("ERR cost must be a positive integer, got '\(excerpt(command.string(next)))'")
            }
            cost = parsed
            next += 1
        }
        if next < command.count {
            guard next == command.count - 1 else {
                return output.writeRESPError("ERR syntax error: THROTTLE key limit period [cost] [algorithm]")
            }
            guard let parsed = Algorithm(rawValue: command.string(next).lowercased()) else {
                return output.writeRESPError(
                    "ERR unknown algorithm '\(excerpt(command.string(next)))'; use token_bucket, sliding_window or fixed_window"
                )
            }
            algorithm = parsed
        }
        let rateLimit: RateLimit
        do {
            rateLimit = try RateLimit(algorithm: algorithm, limit: limit, periodNanoseconds: period)
        } catch {
            return output.writeRESPError("ERR \(error.message)")
        }
        guard validateKey(command, at: 1, into: &output) else { return }
        let seed = Check.inlineSeed(for: rateLimit)
        let key = command.withArgument(1) { BucketKey(seed: seed, bytes: $0) }
        let check = Check(rateLimit: rateLimit, key: key, cost: cost)
        let decision = context.limiter.decide(check, at: now)
        batch.count(decision, in: policies)
        context.report(decision, of: check, policies: policies, key: command.string(1), now: now)
        output.writeRESPDecision(decision)
    }

    /// `RESET policy key`: the bucket is full again; replies whether it existed.
    func reset(_ command: RESPCommand, into output: inout ByteBuffer) {
        guard command.count == 3 else { return wrongArity(command, into: &output) }
        guard let index = command.withArgument(1, { policies.index(ofName: $0) }) else {
            return output.writeRESPError("ERR unknown policy '\(excerpt(command.string(1)))'")
        }
        guard !policies.isGlobal[index] else {
            return output.writeRESPError("ERR policy '\(policies.policies[index].name)' is global: its buckets live in Redis, RESET applies to local policies")
        }
        guard validateKey(command, at: 2, into: &output) else { return }
        let existed = command.withArgument(2) { context.limiter.reset(BucketKey(seed: policies.seeds[index], bytes: $0)) }
        output.writeRESPInteger(existed ? 1 : 0)
    }
}
