import NIOCore
import NIOHTTP1
import SluiceCore

/// One check as an HTTP client states it, resolved against the policies: what to decide and how to name it.
struct ResolvedCheck: Sendable {
    /// What the limiter decides.
    let check: Check
    /// The policy name shown in headers and bodies (`inline` for an inline limit).
    let name: String
    /// The caller's key, as given (a global policy's Redis key is built from it).
    let key: String
}

/// The fields of one check, from a JSON object or from a query string.
///
/// A check names a policy (`policy`, `key`, `cost`) or carries its own limit (`key`, `limit`, `period`,
/// `algorithm`, `burst`, `cost`), as `THROTTLE` does on the line protocol.
struct CheckFields {
    private enum Value {
        case text(String)
        case integer(Int64)
        case other(String)
    }

    /// The fields a check may have.
    enum Field: CaseIterable {
        case policy, key, cost, limit, period, algorithm, burst

        var name: StaticString {
            switch self {
            case .policy: "policy"
            case .key: "key"
            case .cost: "cost"
            case .limit: "limit"
            case .period: "period"
            case .algorithm: "algorithm"
            case .burst: "burst"
            }
        }

        /// The field named by `bytes` (compared as bytes: a Unicode-aware comparison of each name cost more than
        /// the decision), or nil for an unknown name.
        init?(bytes: UnsafeRawBufferPointer) {
            for field in Self.allCases {
                let name = field.name
                if name.utf8CodeUnitCount == bytes.count, UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount).elementsEqual(bytes) {
                    self = field
                    return
                }
            }
            return nil
        }

        init?(name: String) {
            var name = name
            guard let field = name.withUTF8({ Field(bytes: UnsafeRawBufferPointer($0)) }) else { return nil }
            self = field
        }
    }

    /// The fields a check may have, in fixed storage: no dictionary per request.
    private var policy, key, cost, limit, period, algorithm, burst: Value?
    /// The first unknown field name (alphabetically), if any.
    private var unknown: String?
    /// Query strings carry integers as text; JSON must use numbers.
    private let integersAsText: Bool

    private subscript(field: Field) -> Value? {
        switch field {
        case .policy: policy
        case .key: key
        case .cost: cost
        case .limit: limit
        case .period: period
        case .algorithm: algorithm
        case .burst: burst
        }
    }

    /// Records a field; the first of a repeated name wins.
    private mutating func set(_ field: Field, _ value: Value) {
        switch field {
        case .policy: if policy == nil { policy = value }
        case .key: if key == nil { key = value }
        case .cost: if cost == nil { cost = value }
        case .limit: if limit == nil { limit = value }
        case .period: if period == nil { period = value }
        case .algorithm: if algorithm == nil { algorithm = value }
        case .burst: if burst == nil { burst = value }
        }
    }

    /// Records a field by name; an unknown one is remembered for the error.
    private mutating func set(name: String, _ value: Value) {
        if let field = Field(name: name) {
            set(field, value)
        } else if unknown.map({ name < $0 }) ?? true {
            unknown = name
        }
    }

    init(json object: [String: JSONValue]) {
        integersAsText = false
        for (name, value) in object {
            switch value {
            case .string(let text): set(name: name, .text(text))
            case .integer(let number): set(name: name, .integer(number))
            default: set(name: name, .other(value.kind))
            }
        }
    }

    /// The fields of a query string (`policy=api&key=user%3A42&cost=2`), percent-decoded.
    ///
    /// Scanned as bytes: names are matched without making strings, and a value without escapes becomes a
    /// string straight from its bytes (a request target is valid UTF-8, and `?`, `&`, `=` are ASCII, so every
    /// piece is too).
    ///
    /// - Throws: ``HTTPAPIError`` (400) for a malformed percent escape.
    init(query uri: String) throws(HTTPAPIError) {
        integersAsText = true
        var failure: HTTPAPIError?
        var uri = uri
        uri.withUTF8 { target in
            HTTPAPIRequest.forEachQueryParameter(in: UnsafeRawBufferPointer(target)) { rawName, rawValue in
                if let value = HTTPAPIRequest.percentDecoded(rawValue) {
                    if !HTTPAPIRequest.needsDecoding(rawName), let field = Field(bytes: rawName) { return set(field, .text(value)) }
                    if let name = HTTPAPIRequest.percentDecoded(rawName) { return set(name: name, .text(value)) }
                }
                failure = failure ?? HTTPAPIError(.badRequest, code: "invalid_query", "malformed percent-encoding in '\(excerpt(String(decoding: rawName, as: UTF8.self)))'")
            }
        }
        if let failure { throw failure }
    }

    private func string(_ field: Field) throws(HTTPAPIError) -> String? {
        let name = field.name
        switch self[field] {
        case nil: return nil
        case .text(let text): return text
        case .integer: throw HTTPAPIError(.badRequest, code: "invalid_field", "'\(name)' must be a string, got an integer")
        case .other(let kind): throw HTTPAPIError(.badRequest, code: "invalid_field", "'\(name)' must be a string, got \(kind)")
        }
    }

    private func positiveInteger(_ field: Field) throws(HTTPAPIError) -> Int64? {
        let name = field.name
        switch self[field] {
        case nil: return nil
        case .integer(let number):
            guard number > 0 else { throw HTTPAPIError(.badRequest, code: "invalid_\(name)", "'\(name)' must be a positive integer, got \(number)") }
            return number
        case .text(let text):
            guard integersAsText, let number = Int64(text), number > 0, text.first != "+" else {
                throw HTTPAPIError(.badRequest, code: "invalid_\(name)", "'\(name)' must be a positive integer, got \(excerpt(text))")
            }
            return number
        case .other(let kind):
            throw HTTPAPIError(.badRequest, code: "invalid_\(name)", "'\(name)' must be a positive integer, got \(kind)")
        }
    }

    /// Resolves the fields into a check.
    ///
    /// - Throws: ``HTTPAPIError``: 400 for an unknown or ill-typed field, a missing key, a bad cost or limit;
    ///   422 for a policy that does not exist.
    func resolve(policies: PolicySet, maximumKeyBytes: Int) throws(HTTPAPIError) -> ResolvedCheck {
        if let unknown {
            throw HTTPAPIError(
                .badRequest, code: "unknown_field",
                "unknown field '\(excerpt(unknown))'; a check has policy, key, cost, or key, limit, period, algorithm, burst, cost"
            )
        }
        guard let key = try string(.key), !key.isEmpty else {
            throw HTTPAPIError(.badRequest, code: "missing_key", "'key' is required and must be a non-empty string")
        }
        guard key.utf8.count <= maximumKeyBytes else {
            throw HTTPAPIError(.badRequest, code: "key_too_long", "'key' is \(key.utf8.count) bytes, longer than the limit of \(maximumKeyBytes)")
        }
        let cost = try positiveInteger(.cost) ?? 1
        if let name = try string(.policy) {
            let extra: Field? = limit != nil ? .limit : period != nil ? .period : algorithm != nil ? .algorithm : burst != nil ? .burst : nil
            if let extra {
                throw HTTPAPIError(.badRequest, code: "invalid_check", "'\(extra.name)' cannot be combined with 'policy'; give a policy or an inline limit")
            }
            guard let index = policies.index(ofName: name) else {
                let known = policies.policies.map(\.name).joined(separator: ", ")
                throw HTTPAPIError(.unprocessableEntity, code: "unknown_policy", "unknown policy '\(excerpt(name))'; defined: \(known)")
            }
            var utf8 = key
            let check = utf8.withUTF8 { policies.check(policy: index, key: UnsafeRawBufferPointer($0), cost: cost) }
            return ResolvedCheck(check: check, name: name, key: key)
        }
        guard let limit = try positiveInteger(.limit) else {
            throw HTTPAPIError(.badRequest, code: "invalid_check", "a check needs 'policy', or an inline 'limit' and 'period'")
        }
        let period: Int64
        var periodValue = self.period
        // A query string carries the integer milliseconds form as text.
        if integersAsText, case .text(let text) = periodValue, text.first != "+", let milliseconds = Int64(text) {
            periodValue = .integer(milliseconds)
        }
        switch periodValue {
        case .integer(let milliseconds) where milliseconds > 0 && milliseconds <= RateLimit.maximumPeriodNanoseconds / 1_000_000:
            period = milliseconds * 1_000_000
        case .text(let text):
            do {
                period = try PolicyDuration.parseNanoseconds(text)
            } catch {
                throw HTTPAPIError(.badRequest, code: "invalid_period", "'period' \(error.message), or an integer number of milliseconds")
            }
        case nil:
            throw HTTPAPIError(.badRequest, code: "invalid_period", "an inline limit needs 'period', such as \"1s\" or 1000 (ms)")
        default:
            throw HTTPAPIError(.badRequest, code: "invalid_period", "'period' must be a duration such as \"1s\", or a positive number of milliseconds up to 366 days")
        }
        var algorithm = Algorithm.tokenBucket
        if let name = try string(.algorithm) {
            guard let parsed = Algorithm(rawValue: name.lowercased()) else {
                throw HTTPAPIError(
                    .badRequest, code: "invalid_algorithm", "unknown algorithm '\(excerpt(name))'; use token_bucket, sliding_window or fixed_window"
                )
            }
            algorithm = parsed
        }
        let burst = try positiveInteger(.burst)
        let rateLimit: RateLimit
        do {
            rateLimit = try RateLimit(algorithm: algorithm, limit: limit, periodNanoseconds: period, burst: burst)
        } catch {
            // Name the field at fault, as the checks above do for the same fields.
            let code = error.code == .invalidPeriod ? "invalid_period" : error.code == .invalidBurst ? "invalid_burst" : "invalid_limit"
            throw HTTPAPIError(.badRequest, code: code, error.message)
        }
        let bucket = BucketKey(seed: Check.inlineSeed(for: rateLimit), key: key)
        return ResolvedCheck(check: Check(rateLimit: rateLimit, key: bucket, cost: cost), name: "inline", key: key)
    }
}
