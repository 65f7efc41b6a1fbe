public import GRPCCore
public import Logging
import SluiceConfig
public import SluiceCore
import SwiftProtobuf

/// `envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`: protobuf in, ``RLSDecider`` decides,
/// protobuf out.
public struct RateLimitService: Envoy_Service_Ratelimit_V3_RateLimitService.SimpleServiceProtocol {
    typealias Response = Envoy_Service_Ratelimit_V3_RateLimitResponse

    let registry: RLSRegistry
    let limiter: RateLimiter
    let clock: any SluiceClock
    /// Decisions by domain and outcome (requests of unknown domains under one label).
    let counters: OutcomeCounters
    let logger: Logger
    /// Told how long each answered request took, in nanoseconds (the latency histogram).
    let recordLatency: @Sendable (Int64) -> Void
    /// Sees each charged decision (the events hub).
    let observe: RLSDecider.Observer?

    /// Creates the service; `recordLatency` is told each answered request's time in nanoseconds.
    public init(
        registry: RLSRegistry, limiter: RateLimiter, clock: any SluiceClock, counters: OutcomeCounters, logger: Logger,
        recordLatency: @escaping @Sendable (Int64) -> Void = { _ in }, observe: RLSDecider.Observer? = nil
    ) {
        self.observe = observe
        self.recordLatency = recordLatency
        self.registry = registry
        self.limiter = limiter
        self.clock = clock
        self.counters = counters
        self.logger = logger
    }

    /// The label of requests whose domain is not configured.
    public static let unknownDomainLabel = "(unknown)"

    public func shouldRateLimit(
        request: Envoy_Service_Ratelimit_V3_RateLimitRequest, context: GRPCCore.ServerContext
    ) async throws -> Envoy_Service_Ratelimit_V3_RateLimitResponse {
        let start = clock.now()
        let snapshot = registry.snapshot
        let decider = RLSDecider(limiter: limiter, clock: clock, settings: snapshot.settings, observe: observe)
        let answer: RLSAnswer
        do {
            answer = try await decider.decide(Self.request(request), matcher: snapshot.matcher)
        } catch {
            logger.debug("rate limit request refused", metadata: ["rls.domain": "\(excerpt(request.domain))", "error": "\(error.message)"])
            throw RPCError(code: error.code.rpcCode, message: error.message)
        }
        counters.count(snapshot.matcher.hasDomain(request.domain) ? request.domain : Self.unknownDomainLabel, allowed: !answer.isOverLimit)
        let response = Self.response(answer, settings: snapshot.settings)
        recordLatency(clock.now().nanoseconds - start.nanoseconds)
        return response
    }

    /// The request without protobuf.
    public static func request(_ message: Envoy_Service_Ratelimit_V3_RateLimitRequest) -> RLSRequest {
        RLSRequest(
            domain: message.domain,
            descriptors: message.descriptors.map { descriptor in
                RLSRequest.Descriptor(
                    entries: descriptor.entries.map { DescriptorEntry(key: $0.key, value: $0.value) },
                    override: descriptor.hasLimit ? (descriptor.limit.requestsPerUnit, RLSLimit.Unit(protoValue: descriptor.limit.unit.rawValue)) : nil,
                    hitsAddend: descriptor.hasHitsAddend ? descriptor.hitsAddend.value : nil, isNegative: descriptor.isNegativeHits
                )
            },
            hitsAddend: message.hitsAddend
        )
    }

    /// The answer as protobuf; with `response_headers`, the headers of the most restrictive status.
    static func response(_ answer: RLSAnswer, settings: SluiceConfiguration.RLS) -> Response {
        var response = Response()
        response.overallCode = answer.isOverLimit ? .overLimit : .ok
        response.statuses = answer.statuses.map { status in
            var message = Response.DescriptorStatus()
            message.code = status.isOverLimit ? .overLimit : .ok
            message.limitRemaining = status.remaining
            if let limit = status.currentLimit {
                var current = Response.RateLimit()
                current.requestsPerUnit = limit.requestsPerUnit
                current.unit = Response.RateLimit.Unit(rawValue: limit.unit.protoValue) ?? .unknown
                current.name = limit.name
                message.currentLimit = current
            }
            if let reset = status.resetSeconds { message.durationUntilReset = Google_Protobuf_Duration(seconds: reset, nanos: 0) }
            return message
        }
        if settings.responseHeaders, let status = answer.mostRestrictive, let limit = status.currentLimit {
            let reset = status.resetSeconds ?? 0
            var headers = [
                ("x-ratelimit-limit", "\(limit.requestsPerUnit)"), ("x-ratelimit-remaining", "\(status.remaining)"), ("x-ratelimit-reset", "\(reset)"),
            ]
            if settings.ietfHeaders {
                let name = limit.name.isEmpty ? "rls" : limit.name
                headers.append(("ratelimit-policy", "\"\(name)\";q=\(limit.requestsPerUnit);w=\(limit.unit.seconds)"))
                headers.append(("ratelimit", "\"\(name)\";r=\(status.remaining);t=\(reset)"))
            }
            response.responseHeadersToAdd = headers.map { name, value in
                var header = Envoy_Service_Ratelimit_V3_HeaderValue()
                header.key = name
                header.value = value
                return header
            }
        }
        return response
    }
}

extension RLSLimit.Unit {
    /// The unit of Envoy's `RateLimitUnit` value (WEEK is 7 in newer Envoys); nil for UNKNOWN or anything else.
    init?(protoValue: Int) {
        guard let unit = Self.allCases.first(where: { $0.protoValue == protoValue }) else { return nil }
        self = unit
    }
}

extension RLSRequestError.Code {
    var rpcCode: RPCError.Code {
        switch self {
        case .invalidArgument: .invalidArgument
        case .resourceExhausted: .resourceExhausted
        case .unavailable: .unavailable
        }
    }
}

/// At most 64 characters of client input, for logs.
func excerpt(_ text: String) -> String { text.count <= 64 ? text : String(text.prefix(64)) + "..." }
