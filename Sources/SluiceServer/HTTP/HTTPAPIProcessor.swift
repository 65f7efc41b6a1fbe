import Logging
import NIOCore
import NIOHTTP1
public import SluiceCore

/// What the processor answers: a response now, or one that waits for Redis.
enum HTTPAPIOutcome: Sendable {
    case response(HTTPAPIResponse)
    /// A global decision waits for Redis; the completion renders the response once it is answered.
    case pending(PendingDecision, HTTPAPICompletion)
}

/// Renders the response of a request that waited for Redis, and what to count.
struct HTTPAPICompletion: Sendable {
    let body: @Sendable (Decision, GlobalCharge?, Timestamp) -> (HTTPAPIResponse, ServerStatistics.Batch)

    init(_ body: @escaping @Sendable (Decision, GlobalCharge?, Timestamp) -> (HTTPAPIResponse, ServerStatistics.Batch)) {
        self.body = body
    }

    func callAsFunction(_ decision: Decision, charge: GlobalCharge?, now: Timestamp) -> (HTTPAPIResponse, ServerStatistics.Batch) {
        body(decision, charge, now)
    }
}

/// The HTTP API's logic: a request in, a response out. No channel, so tests drive it directly.
///
/// Routes: `GET|POST /v1/check`, `POST /v1/check/batch`, `/v1/forward-auth` (any method), `GET /healthz`,
/// `GET /readyz`, `GET /metrics`. A client's mistake is a 4xx with `{"error":{"code","message"}}`, never a 5xx.
public struct HTTPAPIProcessor: Sendable {
    /// Caps on what one request may ask.
    public struct Limits: Sendable, Hashable {
        /// The largest body accepted (default 1 MiB); larger gets 413.
        public var maximumBodyBytes: Int
        /// The most checks in one `/v1/check` request (default 100).
        public var maximumChecks: Int
        /// The most items in one `/v1/check/batch` request (default 1000).
        public var maximumBatch: Int

        /// Creates limits.
        public init(maximumBodyBytes: Int = 1_048_576, maximumChecks: Int = 100, maximumBatch: Int = 1000) {
            self.maximumBodyBytes = maximumBodyBytes
            self.maximumChecks = maximumChecks
            self.maximumBatch = maximumBatch
        }
    }

    let context: ServerContext
    /// The caps in force.
    public let limits: Limits

    /// Creates a processor.
    public init(context: ServerContext, limits: Limits = Limits()) {
        self.context = context
        self.limits = limits
    }

    /// Answers one request.
    ///
    /// - Parameters:
    ///   - request: the whole request.
    ///   - now: the time of the decision.
    /// - Returns: the response.
    ///
    /// A decision that would wait for Redis is made by its policy's failure behaviour instead: this call never
    /// waits. The server's handler waits (``HTTPServerHandler``).
    public func respond(to request: HTTPAPIRequest, now: Timestamp) -> HTTPAPIResponse {
        var counts = ServerStatistics.Batch()
        let outcome = respond(to: request, now: now, snapshot: context.registry.snapshot, counts: &counts)
        context.statistics.add(counts)
        switch outcome {
        case .response(let response): return response
        case .pending(let pending, let completion):
            pending.expire(now: now)
            guard let (answer, charge) = pending.answer else { return HTTPAPIResponse.error(.serviceUnavailable, code: "no_answer", "the decision did not complete") }
            let (response, later) = completion(answer, charge: charge, now: now)
            context.statistics.add(later)
            return response
        }
    }

    /// Answers one request against a given configuration snapshot, counting into `counts`.
    ///
    /// The handler reads the snapshot once per read and adds its batch to the shared counters once per
    /// read, so a request takes no lock and touches no shared atomic.
    func respond(
        to request: HTTPAPIRequest, now: Timestamp, snapshot: PolicyRegistry.Snapshot, counts: inout ServerStatistics.Batch
    ) -> HTTPAPIOutcome {
        counts.commands += 1
        do {
            switch request.path {
            case "/v1/check":
                switch request.method {
                case .GET: return try decide([CheckFields(query: request.uri)], listed: false, policies: snapshot.policies, now: now, counts: &counts)
                case .POST:
                    let (fields, listed) = try checks(in: request, key: "checks", maximum: limits.maximumChecks)
                    return try decide(fields, listed: listed, policies: snapshot.policies, now: now, counts: &counts)
                default: return .response(Self.methodNotAllowed(allow: "GET, POST"))
                }
            case "/v1/forward-auth":
                return try forwardAuth(request, snapshot: snapshot, now: now, counts: &counts)
            default:
                return .response(respondWithoutDecision(to: request, snapshot: snapshot, now: now, counts: &counts))
            }
        } catch {
            return .response(error.response)
        }
    }

    /// The routes that never wait.
    private func respondWithoutDecision(
        to request: HTTPAPIRequest, snapshot: PolicyRegistry.Snapshot, now: Timestamp, counts: inout ServerStatistics.Batch
    ) -> HTTPAPIResponse {
        do {
            switch request.path {
            case "/v1/check/batch":
                guard request.method == .POST else { return Self.methodNotAllowed(allow: "POST") }
                let fields = try checks(in: request, key: "checks", maximum: limits.maximumBatch).fields
                return decideBatch(fields, policies: snapshot.policies, now: now, counts: &counts)
            case "/healthz":
                return HTTPAPIResponse(status: .ok, body: "{\"status\":\"ok\"}")
            case "/readyz":
                // Ready while Redis is down too: global policies then answer by their on_store_failure.
                let redis = context.global.map { ",\"redis\":\($0.status().isConnected ? "\"up\"" : "\"down\"")" } ?? ""
                return HTTPAPIResponse(status: .ok, body: "{\"status\":\"ready\",\"policies\":\(snapshot.policies.policies.count)\(redis)}")
            case "/metrics":
                guard request.method == .GET else { return Self.methodNotAllowed(allow: "GET") }
                return HTTPAPIResponse(status: .ok, body: metrics(), contentType: "text/plain; version=0.0.4")
            default:
                return HTTPAPIResponse.error(
                    .notFound, code: "not_found",
                    "no route for \(CheckFields.excerpt(String(request.path))); see /v1/check, /v1/check/batch, /v1/forward-auth, /healthz, /readyz, /metrics"
                )
            }
        } catch {
            return error.response
        }
    }

    static func methodNotAllowed(allow: String) -> HTTPAPIResponse {
        var response = HTTPAPIResponse.error(.methodNotAllowed, code: "method_not_allowed", "use \(allow)")
        response.addHeader(name: "Allow", value: allow)
        return response
    }

    /// The checks of a JSON body: one check object, or `{"<key>": [check, ...]}` (`listed`).
    private func checks(in request: HTTPAPIRequest, key: String, maximum: Int) throws(HTTPAPIError) -> (fields: [CheckFields], listed: Bool) {
        guard let body = request.body, body.readableBytes > 0 else {
            throw HTTPAPIError(.badRequest, code: "missing_body", "send a JSON check, such as {\"policy\":\"api\",\"key\":\"user:42\"}")
        }
        guard case .object(let object) = try JSONValue.parse(body) else {
            throw HTTPAPIError(.badRequest, code: "invalid_json", "the body must be a JSON object")
        }
        guard let list = object[key] else { return ([CheckFields(json: object)], false) }
        guard object.count == 1 else {
            throw HTTPAPIError(.badRequest, code: "invalid_check", "'\(key)' cannot be combined with other fields")
        }
        guard case .array(let items) = list, !items.isEmpty else {
            throw HTTPAPIError(.badRequest, code: "invalid_checks", "'\(key)' must be a non-empty list of checks")
        }
        guard items.count <= maximum else {
            throw HTTPAPIError(.payloadTooLarge, code: "too_many_checks", "\(items.count) checks, at most \(maximum) in one request")
        }
        var result: [CheckFields] = []
        result.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            guard case .object(let fields) = item else {
                throw HTTPAPIError(.badRequest, code: "invalid_checks", "'\(key)[\(index)]' must be an object, got \(item.kind)")
            }
            result.append(CheckFields(json: fields))
        }
        return (result, true)
    }

    /// `/v1/check`: all the checks decided together, all or nothing. A list of checks is answered with the
    /// overall verdict and a `checks` list, even when it holds one check.
    private func decide(
        _ fields: [CheckFields], listed: Bool, policies: PolicySet, now: Timestamp, counts: inout ServerStatistics.Batch
    ) throws(HTTPAPIError) -> HTTPAPIOutcome {
        var resolved: [ResolvedCheck] = []
        resolved.reserveCapacity(fields.count)
        for field in fields { resolved.append(try field.resolve(policies: policies, maximumKeyBytes: context.maximumKeyBytes)) }
        if resolved.count == 1, !listed, !policies.hasGlobal {
            let decision = context.limiter.decide(resolved[0].check, at: now)
            Self.count([decision], into: &counts)
            return .response(.decision(decision, resolved[0], now: now))
        }
        let checks = resolved
        return try decideAll(resolved, policies: policies, countOverall: listed, now: now, counts: &counts) { result, now in
            Self.checkResponse(result, resolved: checks, listed: listed, now: now)
        }
    }

    /// Decides `resolved` all or nothing, waiting for Redis if a global policy needs it, and renders the
    /// result with `render` (now, or once Redis answers).
    func decideAll(
        _ resolved: [ResolvedCheck], policies: PolicySet, countOverall: Bool, now: Timestamp, counts: inout ServerStatistics.Batch,
        render: @escaping @Sendable (RateLimiter.MultiDecision, Timestamp) -> HTTPAPIResponse
    ) throws(HTTPAPIError) -> HTTPAPIOutcome {
        let checks = resolved.map(\.check)
        let grouped: GlobalChecks?
        do {
            grouped = try GlobalChecks.resolve(checks, names: { Array(resolved[$0].key.utf8) }, policies: policies, context: context)
        } catch {
            throw HTTPAPIError(.unprocessableEntity, code: "unsupported_checks", error.message)
        }
        let counted = countOverall
        guard let grouped else {
            let result = context.limiter.decide(checks, at: now)
            Self.count(result.decisions, overall: counted ? result.isAllowed : nil, into: &counts)
            return .response(render(result, now))
        }
        switch grouped.start(now: now) {
        case .decided(let result):
            Self.count(result.decisions, overall: counted ? result.isAllowed : nil, into: &counts)
            return .response(render(result, now))
        case .pending(let pending):
            return .pending(
                pending,
                HTTPAPICompletion { decision, charge, now in
                    let result = grouped.finish(decision, charge: charge, now: now)
                    var counts = ServerStatistics.Batch()
                    Self.count(result.decisions, overall: counted ? result.isAllowed : nil, into: &counts)
                    return (render(result, now), counts)
                }
            )
        }
    }

    /// `/v1/check`'s answer: the decision's headers and fields; for a list, the verdict and every check.
    static func checkResponse(_ result: RateLimiter.MultiDecision, resolved: [ResolvedCheck], listed: Bool, now: Timestamp) -> HTTPAPIResponse {
        if resolved.count == 1, !listed { return .decision(result.decisions[0], resolved[0], now: now) }
        let deciding = result.decidingIndex
        let body = "{" + DecisionRendering.fields(result.decisions[deciding], resolved[deciding], allowed: result.isAllowed) + ",\"checks\":["
            + zip(result.decisions, resolved).map { DecisionRendering.json($0, $1) }.joined(separator: ",") + "]}"
        return HTTPAPIResponse(
            status: result.isAllowed ? .ok : .tooManyRequests,
            headers: DecisionRendering.headers(result.decisions[deciding], resolved[deciding], now: now), body: body
        )
    }

    /// `/v1/check/batch`: independent checks, each with its own status.
    private func decideBatch(_ fields: [CheckFields], policies: PolicySet, now: Timestamp, counts: inout ServerStatistics.Batch) -> HTTPAPIResponse {
        var items: [String] = []
        items.reserveCapacity(fields.count)
        var statuses = Set<Int>()
        var decisions: [Decision] = []
        for field in fields {
            do throws(HTTPAPIError) {
                let resolved = try field.resolve(policies: policies, maximumKeyBytes: context.maximumKeyBytes)
                if resolved.check.policyIndex >= 0, policies.isGlobal[Int(resolved.check.policyIndex)] {
                    throw HTTPAPIError(
                        .unprocessableEntity, code: "unsupported_checks",
                        "policy '\(resolved.name)' is global: decide it through /v1/check; the batch takes local policies"
                    )
                }
                let decision = context.limiter.decide(resolved.check, at: now)
                decisions.append(decision)
                let status = decision.isAllowed ? 200 : 429
                statuses.insert(status)
                items.append("{\"status\":\(status)," + DecisionRendering.fields(decision, resolved) + "}")
            } catch {
                statuses.insert(Int(error.status.code))
                items.append(
                    "{\"status\":\(error.status.code),\"error\":{\"code\":\(JSONText.quoted(error.code)),\"message\":\(JSONText.quoted(error.message))}}"
                )
            }
        }
        Self.count(decisions, into: &counts)
        let status: HTTPResponseStatus = statuses == [200] ? .ok : statuses == [429] ? .tooManyRequests : .multiStatus
        return HTTPAPIResponse(status: status, body: "{\"results\":[" + items.joined(separator: ",") + "]}")
    }

    /// Counts decisions: a multi-check request (`overall` given) counts once, by its overall verdict.
    static func count(_ decisions: [Decision], overall: Bool? = nil, into counts: inout ServerStatistics.Batch) {
        if let overall {
            if overall { counts.allowed += 1 } else { counts.denied += 1 }
            counts.shadowDenied += decisions.count { $0.isShadowed }
            return
        }
        for decision in decisions { counts.count(decision) }
    }

    /// The counters in the Prometheus text format.
    private func metrics() -> String {
        let stats = context.statistics.snapshot()
        let store = context.limiter.store
        return """
            # HELP sluice_decisions_total Decisions by outcome (a multi-check request counts once).
            # TYPE sluice_decisions_total counter
            sluice_decisions_total{outcome="allowed"} \(stats.allowed)
            sluice_decisions_total{outcome="denied"} \(stats.denied)
            sluice_decisions_total{outcome="shadow_denied"} \(stats.shadowDenied)
            # HELP sluice_requests_total Commands and HTTP requests served.
            # TYPE sluice_requests_total counter
            sluice_requests_total \(stats.commands)
            # HELP sluice_protocol_errors_total Line-protocol connections closed for a malformed frame.
            # TYPE sluice_protocol_errors_total counter
            sluice_protocol_errors_total \(stats.protocolErrors)
            # HELP sluice_connections_open Open line-protocol connections.
            # TYPE sluice_connections_open gauge
            sluice_connections_open \(stats.connectionsOpen)
            # HELP sluice_keys Live buckets.
            # TYPE sluice_keys gauge
            sluice_keys \(store.keyCount)
            # HELP sluice_keys_max Buckets the store holds before evicting.
            # TYPE sluice_keys_max gauge
            sluice_keys_max \(store.maximumKeys)
            # HELP sluice_evictions_total Buckets dropped: idle (full again, no state lost) or pressure (store full).
            # TYPE sluice_evictions_total counter
            sluice_evictions_total{reason="idle"} \(store.idleEvictions)
            sluice_evictions_total{reason="pressure"} \(store.pressureEvictions)
            # HELP sluice_uptime_seconds Seconds since start.
            # TYPE sluice_uptime_seconds gauge
            sluice_uptime_seconds \(stats.uptimeSeconds)

            """ + redisMetrics()
    }

    /// The Redis counters, when global policies are configured.
    private func redisMetrics() -> String {
        guard let status = context.global?.status() else { return "" }
        return """
            # HELP sluice_redis_up Whether Redis answers (1) or global policies follow on_store_failure (0).
            # TYPE sluice_redis_up gauge
            sluice_redis_up \(status.isConnected ? 1 : 0)
            # HELP sluice_global_decisions_total Global decisions by how they were made: from a lease or known exhaustion (local), after waiting for Redis (redis), by on_store_failure (fallback).
            # TYPE sluice_global_decisions_total counter
            sluice_global_decisions_total{path="local"} \(status.localDecisions)
            sluice_global_decisions_total{path="redis"} \(status.redisDecisions)
            sluice_global_decisions_total{path="fallback"} \(status.fallbackDecisions)
            # HELP sluice_redis_calls_total Script calls sent to Redis: lease requests and strict decisions.
            # TYPE sluice_redis_calls_total counter
            sluice_redis_calls_total{kind="lease"} \(status.leaseRequests)
            sluice_redis_calls_total{kind="strict"} \(status.strictCalls)
            # HELP sluice_redis_errors_total Redis failures: timeouts, lost connections, error replies.
            # TYPE sluice_redis_errors_total counter
            sluice_redis_errors_total \(status.errors)
            # HELP sluice_redis_reconnections_total Connections to Redis made again after a failure.
            # TYPE sluice_redis_reconnections_total counter
            sluice_redis_reconnections_total \(status.reconnections)
            # HELP sluice_leases Buckets holding a lease of a global budget.
            # TYPE sluice_leases gauge
            sluice_leases \(status.leases)

            """
    }
}
