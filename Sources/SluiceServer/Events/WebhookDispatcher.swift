import Crypto
public import Logging
public import SluiceConfig
public import SluiceCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// How a webhook is POSTed: AsyncHTTPClient in the server (``HTTPClientWebhookTransport``).
public protocol WebhookTransport: Sendable {
    /// POSTs `body` with `headers` to `url`, giving up after `timeout`; the response's status, or the failure.
    func post(url: String, headers: [(String, String)], body: [UInt8], timeout: Duration) async -> Result<Int, any Error>
}

/// Sends limit events to the configured webhooks: one queue and one task per endpoint, so a slow or dead
/// endpoint never holds up another, and never a decision (the queue is bounded; what does not fit is dropped
/// and counted).
///
/// An event is POSTed as `{"id": "evt_…", "type", "created_at", "data": {...}}`, signed afresh at each attempt:
/// `Webhook-Timestamp: <unix seconds>` and `Webhook-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
/// A non-2xx answer or a timeout is tried again after each delay of `retry`; after the last, the endpoint is
/// failing: its queue is dropped, and each later event gets one attempt (dropped if it fails) until one
/// succeeds and the endpoint is healthy again.
public final class WebhookDispatcher: Sendable {
    /// One event to deliver: the same id and body on every attempt.
    struct Delivery: Sendable {
        let id: String
        let body: [UInt8]
        /// Its place in its endpoint's queue, counted from 1.
        let sequence: Int
    }

    /// Counts per endpoint, for `/metrics`.
    public struct EndpointStatus: Sendable, Hashable {
        public let url: String
        public let delivered: Int
        public let failedAttempts: Int
        public let dropped: Int
        public let failing: Bool
    }

    final class Endpoint: Sendable {
        let webhook: SluiceConfiguration.Events.Webhook
        let queue: AsyncStream<Delivery>
        let continuation: AsyncStream<Delivery>.Continuation
        let failing = Atomic<Bool>(false)
        /// Deliveries queued so far (the last one's sequence).
        let queued = Atomic<Int>(0)
        let delivered = Atomic<Int>(0)
        let failedAttempts = Atomic<Int>(0)
        let dropped = Atomic<Int>(0)

        init(_ webhook: SluiceConfiguration.Events.Webhook, capacity: Int) {
            self.webhook = webhook
            (queue, continuation) = AsyncStream.makeStream(of: Delivery.self, bufferingPolicy: .bufferingOldest(capacity))
        }
    }

    /// Deliveries each endpoint may hold while it is slow.
    public static let queueCapacity = 1_000
    let endpoints: [Endpoint]
    private let transport: any WebhookTransport
    private let clock: any SluiceClock
    private let logger: Logger
    /// Told when an endpoint becomes failing (the hub says so on the live stream).
    private let failingHandler = Locked<(@Sendable (String) -> Void)?>(nil)

    /// Creates a dispatcher for `webhooks`, POSTing through `transport`; `clock` dates the events.
    public init(webhooks: [SluiceConfiguration.Events.Webhook], transport: any WebhookTransport, clock: any SluiceClock, logger: Logger) {
        endpoints = webhooks.map { Endpoint($0, capacity: Self.queueCapacity) }
        self.transport = transport
        self.clock = clock
        self.logger = logger
    }

    /// Calls `handler` with an endpoint's URL when it becomes failing.
    func onFailing(_ handler: @escaping @Sendable (String) -> Void) { failingHandler.withLock { $0 = handler } }

    private func failing(_ url: String) { failingHandler.withLock { $0 }?(url) }

    /// Whether some endpoint takes `type`.
    public func wants(_ type: SluiceConfiguration.Events.EventType) -> Bool { endpoints.contains { $0.webhook.types.contains(type) } }

    /// Queues an event of `type` with JSON `data` for every endpoint that takes it; never waits.
    public func send(_ type: SluiceConfiguration.Events.EventType, data: String) {
        let now = clock.now()
        let id = "evt_" + Self.randomHex(12)
        let body = Array("{\"id\":\"\(id)\",\"type\":\"\(type.rawValue)\",\"created_at\":\"\(Self.rfc3339(now))\",\"data\":\(data)}".utf8)
        for endpoint in endpoints where endpoint.webhook.types.contains(type) {
            let sequence = endpoint.queued.add(1, ordering: .relaxed).newValue
            if case .dropped = endpoint.continuation.yield(Delivery(id: id, body: body, sequence: sequence)) {
                endpoint.dropped.add(1, ordering: .relaxed)
            }
        }
    }

    /// Delivers until cancelled (shutdown), one task per endpoint.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            for endpoint in endpoints {
                group.addTask { await self.deliver(to: endpoint) }
            }
            await withTaskCancellationHandler {
                await group.waitForAll()
            } onCancel: {
                for endpoint in self.endpoints { endpoint.continuation.finish() }
            }
        }
    }

    /// Counts of every endpoint.
    public func status() -> [EndpointStatus] {
        endpoints.map { endpoint in
            EndpointStatus(
                url: Self.shown(endpoint.webhook.url), delivered: endpoint.delivered.load(ordering: .relaxed),
                failedAttempts: endpoint.failedAttempts.load(ordering: .relaxed), dropped: endpoint.dropped.load(ordering: .relaxed),
                failing: endpoint.failing.load(ordering: .relaxed)
            )
        }
    }

    private func deliver(to endpoint: Endpoint) async {
        // When the endpoint became failing, what was queued by then is dropped unsent.
        var dropThrough = 0
        for await delivery in endpoint.queue {
            // Shutting down: what is still queued is counted, not sent (an endpoint's timeouts must not hold up the exit).
            if delivery.sequence <= dropThrough || Task.isCancelled {
                endpoint.dropped.add(1, ordering: .relaxed)
                continue
            }
            if endpoint.failing.load(ordering: .relaxed) {
                // Failing: one attempt per event, dropped if it fails, until the endpoint answers again.
                if await attempt(delivery, to: endpoint) {
                    endpoint.failing.store(false, ordering: .relaxed)
                    logger.notice("webhook answers again", metadata: ["webhook.url": "\(Self.shown(endpoint.webhook.url))"])
                } else {
                    endpoint.dropped.add(1, ordering: .relaxed)
                }
                continue
            }
            var delays = endpoint.webhook.retryNanoseconds[...]
            while !(await attempt(delivery, to: endpoint)) {
                guard let delay = delays.popFirst(), !Task.isCancelled else {
                    endpoint.failing.store(true, ordering: .relaxed)
                    logger.error(
                        "webhook failing: every attempt failed; its queue is dropped until it answers again",
                        metadata: ["webhook.url": "\(Self.shown(endpoint.webhook.url))", "event.id": "\(delivery.id)"]
                    )
                    failing(endpoint.webhook.url)
                    endpoint.dropped.add(1, ordering: .relaxed)
                    dropThrough = endpoint.queued.load(ordering: .relaxed)
                    break
                }
                try? await Task.sleep(for: .nanoseconds(delay))
            }
        }
    }

    /// One signed POST; whether it was answered 2xx.
    private func attempt(_ delivery: Delivery, to endpoint: Endpoint) async -> Bool {
        let timestamp = String(clock.now().nanoseconds / 1_000_000_000)
        let headers = [
            ("Content-Type", "application/json"), ("User-Agent", "sluice/\(LineCommandProcessor.version)"), ("Webhook-Id", delivery.id),
            ("Webhook-Timestamp", timestamp),
            ("Webhook-Signature", "sha256=" + Self.signature(secret: endpoint.webhook.secret, timestamp: timestamp, body: delivery.body)),
        ]
        let result = await transport.post(
            url: endpoint.webhook.url, headers: headers, body: delivery.body, timeout: .nanoseconds(endpoint.webhook.timeoutNanoseconds)
        )
        if case .success(let status) = result, (200..<300).contains(status) {
            endpoint.delivered.add(1, ordering: .relaxed)
            return true
        }
        endpoint.failedAttempts.add(1, ordering: .relaxed)
        logger.debug(
            "webhook attempt failed", metadata: ["webhook.url": "\(Self.shown(endpoint.webhook.url))", "event.id": "\(delivery.id)", "result": "\(result)"]
        )
        return false
    }

    // MARK: Signing and formatting

    /// A URL as logs and the stream show it: without its query or user information, which may hold tokens.
    public static func shown(_ url: String) -> String {
        var text = Substring(url)
        if let query = text.firstIndex(where: { $0 == "?" || $0 == "#" }) { text = text[..<query] }
        guard let colon = text.firstIndex(of: ":"), text[colon...].hasPrefix("://") else { return String(text) }
        let authorityStart = text.index(colon, offsetBy: 3)
        let authorityEnd = text[authorityStart...].firstIndex(of: "/") ?? text.endIndex
        if let at = text[authorityStart..<authorityEnd].lastIndex(of: "@") {
            text = text[..<authorityStart] + text[text.index(after: at)...]
        }
        return String(text)
    }

    /// Hex HMAC-SHA256 of `"<timestamp>.<body>"` keyed by the secret's UTF-8 bytes.
    static func signature(secret: String, timestamp: String, body: [UInt8]) -> String {
        var message = Array(timestamp.utf8)
        message.append(UInt8(ascii: "."))
        message += body
        let code = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: Array(secret.utf8)))
        return AdminKeys.hex(Array(code))
    }

    /// `count` random bytes as hexadecimal.
    static func randomHex(_ count: Int) -> String {
        var random = SystemRandomNumberGenerator()
        return AdminKeys.hex((0..<count).map { _ in random.next() })
    }

    /// `2026-12-01T10:00:00.123Z`.
    static func rfc3339(_ time: Timestamp) -> String {
        var seconds = time_t(time.nanoseconds / 1_000_000_000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let milliseconds = Int(time.nanoseconds / 1_000_000 % 1000)
        let fraction = String(milliseconds + 1000).dropFirst()
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(fraction)Z"
    }
}
