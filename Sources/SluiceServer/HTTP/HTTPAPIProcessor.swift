import Logging
import NIOCore
import NIOHTTP1
public import SluiceConfig
public import SluiceCore

/// What the processor answers: a response now, or one that waits for Redis.
enum HTTPAPIOutcome: Sendable {
    case response(HTTPAPIResponse)
    /// A global decision waits for Redis; the answer renders the response once it is decided.
    case pending(PendingAnswer<HTTPAPIResponse>)
    /// Work off the event loop (an admin change written to the file, a reset confirmed by Redis); its result
    /// is the response.
    case deferred(@Sendable () async -> HTTPAPIResponse)
    /// `GET /v1/events`: the connection becomes a live stream of the hub's events, after `lastEventID` if given.
    case stream(EventHub, lastEventID: UInt64?)
}

/// The HTTP API's logic: a request in, a response out. No channel, so tests drive it directly.
///
/// Routes: `GET|POST /v1/check`, `POST /v1/check/batch`, `/v1/forward-auth` (any method), `GET /healthz`,
/// `GET /readyz`, `GET /metrics`, and the admin API (``AdminAPI``). A client's mistake is a 4xx with
/// `{"error":{"code","message"}}`, never a 5xx.
public struct HTTPAPIProcessor: Sendable {
    /// Which routes a listener serves.
    public enum Routes: Sendable {
        /// Decisions, operations and the admin API: the HTTP listener when there is no `listen.admin`.
        case all
        /// Decisions and operations, not the admin API (which has a listener of its own).
        case api
        /// The admin API and `/healthz`: the `listen.admin` listener.
        case admin
    }

    let context: ServerContext
    /// The caps in force (the configuration's `http` section).
    public let limits: SluiceConfiguration.HTTP
    /// The routes served.
    public let routes: Routes

    /// Creates a processor.
    public init(context: ServerContext, limits: SluiceConfiguration.HTTP = SluiceConfiguration.HTTP(), routes: Routes = .all) {
        self.context = context
        self.limits = limits
        self.routes = routes
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
        case .pending(let answer):
            for pending in answer.waits { pending.expire(now: now) }
            // An answer Redis claimed in the meantime may still be on its way: nothing to finish with yet.
            guard answer.waits.allSatisfy({ $0.answer != nil }) else {
                return HTTPAPIResponse.error(.serviceUnavailable, code: "no_answer", "the decision did not complete")
            }
            let (response, later) = answer.complete(now: now)
            context.statistics.add(later)
            return response
        case .deferred, .stream:
            return HTTPAPIResponse.error(.serviceUnavailable, code: "no_answer", "this route answers asynchronously; use answer(_:now:)")
        }
    }

    /// Answers one request, waiting for what waits (Redis, up to its timeout; an admin change's file write).
    public func answer(_ request: HTTPAPIRequest, now: Timestamp) async -> HTTPAPIResponse {
        var counts = ServerStatistics.Batch()
        let outcome = respond(to: request, now: now, snapshot: context.registry.snapshot, counts: &counts)
        context.statistics.add(counts)
        switch outcome {
        case .response(let response):
            return response
        case .deferred(let work):
            return await work()
        case .stream:
            return HTTPAPIResponse.error(.serviceUnavailable, code: "no_answer", "a live stream needs a connection")
        case .pending(let answer):
            let clock = context.clock
            let timeout = context.globalTimeout
            let timer = Task {
                try? await Task.sleep(for: .nanoseconds(timeout.nanoseconds))
                let now = clock.now()
                for pending in answer.waits { pending.expire(now: now) }
            }
            for pending in answer.waits {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    pending.whenAnswered { _, _ in continuation.resume() }
                }
            }
            timer.cancel()
            let (response, later) = answer.complete(now: clock.now())
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
        let route = Route(path: request.path)
        if route == .admin {
            guard routes != .api, let admin = context.admin else {
                return .response(.error(.notFound, code: "not_found", "the admin API is not served here" + (routes == .api ? " (see listen.admin)" : "")))
            }
            return admin.respond(to: request, now: now, context: context)
        }
        if routes == .admin, route != .healthz {
            return .response(.error(.notFound, code: "not_found", "this is the admin listener: /v1/policies, /v1/buckets/{policy}/{key}, /healthz"))
        }
        do {
            switch route {
            case .check:
                switch request.method {
                case .GET:
                    let check = try CheckFields(query: request.uri).resolve(policies: snapshot.policies, maximumKeyBytes: context.maximumKeyBytes)
                    return try decide(check, policies: snapshot.policies, now: now, counts: &counts)
                case .POST:
                    let (fields, listed) = try checks(in: request, key: "checks", maximum: limits.maxChecks)
                    return try decide(fields, listed: listed, policies: snapshot.policies, now: now, counts: &counts)
                default: return .response(Self.methodNotAllowed(allow: "GET, POST"))
                }
            case .forwardAuth:
                return try forwardAuth(request, snapshot: snapshot, now: now, counts: &counts)
            case .checkBatch:
                guard request.method == .POST else { return .response(Self.methodNotAllowed(allow: "POST")) }
                let fields = try checks(in: request, key: "checks", maximum: limits.maxBatch).fields
                return decideBatch(fields, policies: snapshot.policies, now: now, counts: &counts)
            default:
                return .response(respondWithoutDecision(to: request, route: route, snapshot: snapshot))
            }
        } catch {
            return .response(error.response)
        }
    }

    /// The routes that never wait.
    private func respondWithoutDecision(to request: HTTPAPIRequest, route: Route, snapshot: PolicyRegistry.Snapshot) -> HTTPAPIResponse {
        switch route {
        case .healthz:
            return HTTPAPIResponse(status: .ok, body: "{\"status\":\"ok\"}")
        case .readyz:
            // Ready while Redis is down too: global policies then answer by their on_store_failure.
            let redis = context.limiter.global.map { global in
                let status = global.status()
                return ",\"redis\":\(status.isConnected ? "\"up\"" : "\"down\"")" + (status.authenticationFailed ? ",\"redis_error\":\"authentication failed\"" : "")
            } ?? ""
            return HTTPAPIResponse(status: .ok, body: "{\"status\":\"ready\",\"policies\":\(snapshot.policies.policies.count)\(redis)}")
        case .metrics:
            guard request.method == .GET else { return Self.methodNotAllowed(allow: "GET") }
            context.publishMetrics()
            guard let text = context.metrics.render() else {
                return HTTPAPIResponse.error(.notFound, code: "not_found", "metrics go to the configured swift-metrics backend, not /metrics")
            }
            return HTTPAPIResponse(status: .ok, body: text, contentType: "text/plain; version=0.0.4")
        default:
            return HTTPAPIResponse.error(
                .notFound, code: "not_found",
                "no route for \(excerpt(String(request.path))); see /v1/check, /v1/check/batch, /v1/forward-auth, /healthz, /readyz, /metrics"
            )
        }
    }

    /// The routes, told apart by the path's bytes: comparing Substrings is Unicode-aware, and cost more than
    /// the decision on a check's path.
    enum Route: Equatable {
        case check, checkBatch, forwardAuth, healthz, readyz, metrics, admin, unknown

        init(path: Substring) {
            self =
                if TargetBytes.equal(path, "/v1/check") { .check }
                else if TargetBytes.equal(path, "/v1/forward-auth") { .forwardAuth }
                else if TargetBytes.equal(path, "/v1/check/batch") { .checkBatch }
                else if TargetBytes.equal(path, "/healthz") { .healthz }
                else if TargetBytes.equal(path, "/readyz") { .readyz }
                else if TargetBytes.equal(path, "/metrics") { .metrics }
                else if AdminAPI.isAdminPath(path) { .admin }
                else { .unknown }
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
        if resolved.count == 1, !listed { return try decide(resolved[0], policies: policies, now: now, counts: &counts) }
        let checks = resolved
        return try decideAll(resolved, policies: policies, countsVerdict: listed, now: now, counts: &counts) { result, now in
            Self.checkResponse(result, resolved: checks, listed: listed, now: now)
        }
    }

    /// `resolved` decided on its own by the limiter: at once (local, a lease), or waiting for Redis.
    private func outcome(of resolved: ResolvedCheck, policies: PolicySet, now: Timestamp) throws(HTTPAPIError) -> RateLimiter.SingleOutcome {
        var key = resolved.key
        let outcome = key.withUTF8 { key in
            Result { () throws(RequestError) in
                try context.limiter.decide(resolved.check, policies: policies, key: UnsafeRawBufferPointer(key), at: now)
            }
        }
        switch outcome {
        case .failure(let error): throw HTTPAPIError(.unprocessableEntity, code: "unsupported_checks", error.message)
        case .success(let single): return single
        }
    }

    /// One check, not in a list: decided without allocating when it needs no wait (local, or from a lease).
    private func decide(
        _ single: ResolvedCheck, policies: PolicySet, now: Timestamp, counts: inout ServerStatistics.Batch
    ) throws(HTTPAPIError) -> HTTPAPIOutcome {
        switch try outcome(of: single, policies: policies, now: now) {
        case .decided(let decision):
            counts.count(decision, in: policies)
            context.report(decision, of: single.check, policies: policies, key: single.key, now: now)
            return .response(.decision(decision, single, now: now))
        case .pending(let request):
            let context = context
            return .pending(
                PendingAnswer(request, countsVerdict: false) { result, now in
                    context.report(result.decisions[0], of: single.check, policies: policies, key: single.key, now: now)
                } render: { result, now in
                    .decision(result.decisions[0], single, now: now)
                }
            )
        }
    }

    /// Decides `resolved` all or nothing, waiting for Redis if a global policy needs it, and renders the
    /// result with `render` (now, or once Redis answers).
    func decideAll(
        _ resolved: [ResolvedCheck], policies: PolicySet, countsVerdict: Bool, now: Timestamp, counts: inout ServerStatistics.Batch,
        render: @escaping @Sendable (RateLimiter.MultiDecision, Timestamp) -> HTTPAPIResponse
    ) throws(HTTPAPIError) -> HTTPAPIOutcome {
        let checks = resolved.map(\.check)
        let outcome: RateLimiter.RequestOutcome
        do {
            outcome = try context.limiter.decide(request: checks, policies: policies, keyBytes: { Array(resolved[$0].key.utf8) }, at: now)
        } catch {
            throw HTTPAPIError(.unprocessableEntity, code: "unsupported_checks", error.message)
        }
        switch outcome {
        case .decided(let result):
            counts.count(result, byVerdict: countsVerdict, in: policies)
            context.report(result, of: checks, policies: policies, key: { resolved[$0].key }, now: now)
            return .response(render(result, now))
        case .pending(let request):
            let context = context
            return .pending(
                PendingAnswer(request, countsVerdict: countsVerdict) { result, now in
                    context.report(result, of: checks, policies: policies, key: { resolved[$0].key }, now: now)
                } render: { result, now in
                    render(result, now)
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

    /// `/v1/check/batch`: independent checks, each with its own status. Items of global policies that wait for
    /// Redis wait together; the response goes out once the last is answered.
    private func decideBatch(_ fields: [CheckFields], policies: PolicySet, now: Timestamp, counts: inout ServerStatistics.Batch) -> HTTPAPIOutcome {
        var items: [BatchItem] = []
        items.reserveCapacity(fields.count)
        for field in fields {
            do throws(HTTPAPIError) {
                let resolved = try field.resolve(policies: policies, maximumKeyBytes: context.maximumKeyBytes)
                switch try outcome(of: resolved, policies: policies, now: now) {
                case .decided(let decision): items.append(Self.batchItem(decision, resolved))
                case .pending(let request): items.append(.waiting(request, resolved))
                }
            } catch {
                let json = "{\"status\":\(error.status.code),\"error\":{\"code\":\(JSONText.quoted(error.code)),\"message\":\(JSONText.quoted(error.message))}}"
                items.append(.answered(json, status: Int(error.status.code), nil))
            }
        }
        let waits = items.flatMap { item -> [PendingDecision] in if case .waiting(let request, _) = item { request.waits } else { [] } }
        guard waits.isEmpty else {
            let (all, context) = (items, context)
            return .pending(PendingAnswer(waits: waits) { now in Self.renderBatch(all, policies: policies, context: context, now: now) })
        }
        let (response, batch) = Self.renderBatch(items, policies: policies, context: context, now: now)
        counts.add(batch)
        return .response(response)
    }

    /// One item of a batch: answered (its JSON, its status, the decision to count), or waiting for Redis.
    /// The batch response once every item is decided, and what to count.
    private static func renderBatch(
        _ items: [BatchItem], policies: PolicySet, context: ServerContext, now: Timestamp
    ) -> (HTTPAPIResponse, ServerStatistics.Batch) {
        var counts = ServerStatistics.Batch()
        var statuses = Set<Int>()
        var bodies: [String] = []
        for item in items {
            var answered = item
            if case .waiting(let request, let resolved) = item {
                answered = Self.batchItem(request.finish(now: now).decisions[0], resolved)
            }
            guard case .answered(let json, let status, let decided) = answered else { continue }
            if let (decision, resolved) = decided {
                counts.count(decision, in: policies)
                context.report(decision, of: resolved.check, policies: policies, key: resolved.key, now: now)
            }
            statuses.insert(status)
            bodies.append(json)
        }
        let status: HTTPResponseStatus = statuses == [200] ? .ok : statuses == [429] ? .tooManyRequests : .multiStatus
        return (HTTPAPIResponse(status: status, body: "{\"results\":[" + bodies.joined(separator: ",") + "]}"), counts)
    }

    private enum BatchItem: Sendable {
        case answered(String, status: Int, (Decision, ResolvedCheck)?)
        case waiting(PendingRequest, ResolvedCheck)
    }

    /// One decided batch item: status 200 or 429, and its JSON.
    private static func batchItem(_ decision: Decision, _ resolved: ResolvedCheck) -> BatchItem {
        let status = decision.isAllowed ? 200 : 429
        return .answered("{\"status\":\(status)," + DecisionRendering.fields(decision, resolved) + "}", status: status, (decision, resolved))
    }
}
