import AsyncHTTPClient
public import NIOCore
import NIOHTTP1
public import ServiceLifecycle
import SluiceConfig
import SluiceCore
import Synchronization

/// Runs what the events need besides the decision path: the webhook deliveries, a `stats` event on the stream
/// (and the metrics published, for backends that push) every 5 s, and `store.down`/`store.up` when Redis's state changes (looked at every 250 ms).
public struct EventsService: Service {
    let hub: EventHub
    let context: ServerContext
    /// Run at shutdown, after the deliveries stopped (the HTTP client's shutdown).
    let finally: @Sendable () async -> Void

    /// How often a `stats` event goes on the stream.
    static let statsInterval = Duration.seconds(5)

    /// Creates the service for `hub`, reading counters from `context`.
    public init(hub: EventHub, context: ServerContext, finally: @escaping @Sendable () async -> Void = {}) {
        self.hub = hub
        self.context = context
        self.finally = finally
    }

    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            if let webhooks = hub.webhooks { group.addTask { await webhooks.run() } }
            group.addTask { await watch() }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        await finally()
    }

    private func watch() async {
        var last = context.statistics.snapshot()
        var redisUp = context.limiter.global?.status().isConnected
        var nextStats = ContinuousClock.now + Self.statsInterval
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(250))
            if let global = context.limiter.global {
                let up = global.status().isConnected
                if up != redisUp {
                    redisUp = up
                    hub.storeChanged(up: up, endpoint: global.status().endpoint)
                }
            }
            guard ContinuousClock.now >= nextStats else { continue }
            nextStats = .now + Self.statsInterval
            context.publishMetrics()
            let now = context.statistics.snapshot()
            let redis = redisUp.map { $0 ? "\"up\"" : "\"down\"" } ?? "null"
            hub.publish(
                "stats",
                data: "{\"allowed\":\(now.allowed - last.allowed),\"denied\":\(now.denied - last.denied),"
                    + "\"shadow_denied\":\(now.shadowDenied - last.shadowDenied),\"keys\":\(context.limiter.store.keyCount),"
                    + "\"redis\":\(redis),\"subscribers\":\(hub.subscriberCount),\"dropped\":\(hub.droppedEvents.load(ordering: .relaxed))}"
            )
            last = now
        }
    }
}

extension EventHub {
    /// Redis went down or came back: `store.down`/`store.up` on the stream and to the webhooks that take them.
    func storeChanged(up: Bool, endpoint: String) {
        let type: SluiceConfiguration.Events.EventType = up ? .storeUp : .storeDown
        let data = "{\"store\":\"redis\",\"endpoint\":\(JSONText.quoted(endpoint))}"
        publish(type.rawValue, data: data)
        if webhooks?.wants(type) == true { webhooks?.send(type, data: data) }
    }

    /// A webhook endpoint became failing: said on the stream.
    public func webhookFailing(_ url: String) {
        publish("webhook.failing", data: "{\"url\":\(JSONText.quoted(WebhookDispatcher.shown(url)))}")
    }
}

/// POSTs webhooks with AsyncHTTPClient (http and https), on Sluice's event loop group.
public struct HTTPClientWebhookTransport: WebhookTransport {
    let client: HTTPClient

    /// Creates a transport that shares `eventLoopGroup`; a response body may take at most `readTimeout` between bytes.
    public init(eventLoopGroup: any EventLoopGroup, readTimeout: Duration) {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = HTTPClient.Configuration.Timeout(connect: .seconds(5), read: .nanoseconds(Int64(readTimeout.nanoseconds)))
        configuration.redirectConfiguration = .disallow
        client = HTTPClient(eventLoopGroup: eventLoopGroup, configuration: configuration)
    }

    public func post(url: String, headers: [(String, String)], body: [UInt8], timeout: Duration) async -> Result<Int, any Error> {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await client.execute(request, timeout: .nanoseconds(Int64(timeout.nanoseconds)))
            _ = try await response.body.collect(upTo: 1 << 16)
            return .success(Int(response.status.code))
        } catch {
            return .failure(error)
        }
    }

    /// Stops the client; call once deliveries have stopped.
    public func shutdown() async { try? await client.shutdown() }
}
