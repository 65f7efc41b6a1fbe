import Logging
import SluiceConfig
import SluiceCore
import SluiceTestSupport
import Synchronization
import Testing

@testable import SluiceServer

/// A webhook transport that answers from a script and remembers every request (unit tests of the dispatcher's
/// state machine; the executable's tests POST to a real receiver).
final class ScriptedTransport: WebhookTransport {
    struct Request: Sendable {
        let url: String
        let headers: [String: String]
        let body: String
    }

    private let state = Locked<(statuses: [Int], requests: [Request])>(([], []))
    /// Whether every POST waits until ``release()``.
    private let held = Locked<[CheckedContinuation<Void, Never>]?>(nil)

    init(statuses: [Int] = []) { state.withLock { $0.statuses = statuses } }

    var requests: [Request] { state.withLock { $0.requests } }

    func hold() { held.withLock { $0 = [] } }

    func post(url: String, headers: [(String, String)], body: [UInt8], timeout: Duration) async -> Result<Int, any Error> {
        let status = state.withLock { state in
            state.requests.append(Request(url: url, headers: Dictionary(headers, uniquingKeysWith: { $1 }), body: String(decoding: body, as: UTF8.self)))
            return state.statuses.isEmpty ? 204 : state.statuses.removeFirst()
        }
        if held.withLock({ $0 != nil }) {
            await withCheckedContinuation { continuation in
                let waiting = held.withLock { list -> Bool in
                    guard list != nil else { return false }
                    list?.append(continuation)
                    return true
                }
                if !waiting { continuation.resume() }
            }
        }
        return .success(status)
    }

    func release() {
        let waiting = held.withLock { list in
            defer { list = nil }
            return list ?? []
        }
        for continuation in waiting { continuation.resume() }
    }
}

struct EventsTests {
    static let logger = Logger(label: "sluice.tests.events")

    static func denial(limit: Int64 = 5) -> Decision {
        Decision(outcome: .denied, limit: limit, remaining: 0, resetAfterNanoseconds: 1_000_000_000, retryAfterNanoseconds: 1_000_000_000, policyIndex: 0)
    }

    static func allowed(limit: Int64 = 5, remaining: Int64) -> Decision {
        Decision(outcome: .allowed, limit: limit, remaining: remaining, resetAfterNanoseconds: 1_000_000_000, retryAfterNanoseconds: 0, policyIndex: 0)
    }

    /// Waits until `condition` holds, at most 60 s: the dispatcher runs in a task of the test pool, which other
    /// tests may keep busy for many seconds on a slow machine (23 s on a throttled one, before any request).
    static func waitFor(_ condition: () -> Bool) async { await eventually(.seconds(60), every: .milliseconds(10), condition) }

    @Test func nobodyListeningCostsOneLoadAndRecordsNothing() {
        let hub = EventHub()
        #expect(!hub.wants(Self.denial()))
        #expect(!hub.wants(Self.allowed(remaining: 0)), "no threshold webhook: crossings are not looked at")
        hub.subscribe()
        #expect(hub.wants(Self.denial()))
        var shadowed = Self.denial()
        shadowed.isShadowed = true
        #expect(!hub.wants(shadowed), "a shadow denial let the request through: not a deny event")
        hub.unsubscribe()
        #expect(hub.subscriberCount == 0)
    }

    @Test func limitExceededAndThresholdGoOncePerPolicyKeyAndWindow() async {
        let clock = ManualClock()
        let transport = ScriptedTransport()
        let webhook = SluiceConfiguration.Events.Webhook(url: "http://127.0.0.1:1/h", secret: "whsec_x", types: [.limitExceeded, .limitThreshold])
        let dispatcher = WebhookDispatcher(webhooks: [webhook], transport: transport, clock: clock, logger: Self.logger)
        let hub = EventHub(settings: SluiceConfiguration.Events(threshold: 0.8), webhooks: dispatcher)
        let run = Task { await dispatcher.run() }
        defer { run.cancel() }
        let minute: Int64 = 60_000_000_000
        func take(_ decision: Decision, key: String = "k") {
            if hub.wants(decision) { hub.record(decision, policy: "p", key: key, periodNanoseconds: minute, now: clock.now()) }
        }
        take(Self.allowed(remaining: 2))  // 3 of 5 used: below 0.8
        take(Self.allowed(remaining: 1))  // 4 of 5: crosses
        take(Self.allowed(remaining: 0))  // still past it, same window: nothing more
        for _ in 0..<30 { take(Self.denial()) }
        take(Self.denial(), key: "other")  // another key: its own
        await Self.waitFor { transport.requests.count >= 3 }
        try? await Task.sleep(for: .milliseconds(50))
        var bodies = transport.requests.map(\.body)
        #expect(bodies.count == 3)
        #expect(bodies.filter { $0.contains(#""type":"limit.threshold""#) }.count == 1)
        #expect(bodies.filter { $0.contains(#""type":"limit.exceeded""#) && $0.contains(#""key":"k""#) }.count == 1)
        #expect(bodies.filter { $0.contains(#""key":"other""#) }.count == 1)
        // The next window: again.
        clock.advance(nanoseconds: minute)
        take(Self.denial())
        await Self.waitFor { transport.requests.count >= 4 }
        bodies = transport.requests.map(\.body)
        #expect(bodies.count == 4)
        #expect(Set(bodies.compactMap { $0.split(separator: "\"")[safe: 3] }).count == 4, "a new id per event")
    }

    @Test func aFailedDeliveryIsRetriedWithItsIdAndSignedAfreshThenTheEndpointFails() async {
        let clock = ManualClock()
        let transport = ScriptedTransport(statuses: [500, 503, 204, 500, 500, 500, 500, 204])
        let webhook = SluiceConfiguration.Events.Webhook(
            url: "http://user:pass@127.0.0.1:1/h?token=t", secret: "whsec_x", retryNanoseconds: [10_000_000, 10_000_000]
        )
        let dispatcher = WebhookDispatcher(webhooks: [webhook], transport: transport, clock: clock, logger: Self.logger)
        let failing = Locked<[String]>([])
        dispatcher.onFailing { url in failing.withLock { $0.append(url) } }
        let run = Task { await dispatcher.run() }
        defer { run.cancel() }

        // Two failures, then delivered: three attempts of one id.
        dispatcher.send(.limitExceeded, data: #"{"policy":"p"}"#)
        await Self.waitFor { transport.requests.count >= 3 }
        let first = transport.requests
        #expect(first.count == 3)
        #expect(Set(first.map { $0.headers["Webhook-Id"] ?? "" }).count == 1)
        #expect(Set(first.map(\.body)).count == 1, "the same body on every attempt")
        for request in first {
            let timestamp = request.headers["Webhook-Timestamp"] ?? ""
            let expected = "sha256=" + WebhookDispatcher.signature(secret: "whsec_x", timestamp: timestamp, body: Array(request.body.utf8))
            #expect(request.headers["Webhook-Signature"] == expected)
            #expect(request.headers["Content-Type"] == "application/json")
        }
        #expect(dispatcher.status().first?.delivered == 1 && dispatcher.status().first?.failedAttempts == 2)

        // Three failures: the endpoint is failing; the next event gets one attempt and is dropped when it fails.
        dispatcher.send(.limitExceeded, data: "{}")
        // (The status says failing just before the handler is called.)
        await Self.waitFor { dispatcher.status().first?.failing == true && !failing.withLock { $0.isEmpty } }
        #expect(dispatcher.status().first?.failing == true)
        #expect(failing.withLock { $0 } == ["http://user:pass@127.0.0.1:1/h?token=t"])
        dispatcher.send(.limitExceeded, data: "{}")
        await Self.waitFor { transport.requests.count >= 7 }
        try? await Task.sleep(for: .milliseconds(50))
        #expect(transport.requests.count == 7, "one attempt while failing")
        #expect(dispatcher.status().first?.dropped == 2)
        // It answers again: healthy.
        dispatcher.send(.limitExceeded, data: "{}")
        await Self.waitFor { dispatcher.status().first?.failing == false }
        #expect(dispatcher.status().first?.failing == false && dispatcher.status().first?.delivered == 2)
        #expect(dispatcher.status().first?.url == "http://127.0.0.1:1/h", "shown without user information or query")
    }

    @Test func aSlowEndpointsQueueIsBoundedAndNeverHoldsUpAnother() async {
        let slow = ScriptedTransport()
        slow.hold()
        let webhooks = [
            SluiceConfiguration.Events.Webhook(url: "http://127.0.0.1:1/slow", secret: "a"),
            SluiceConfiguration.Events.Webhook(url: "http://127.0.0.1:1/fast", secret: "b"),
        ]
        // One transport for both: the slow one's posts hold; each endpoint has its own task and queue.
        let transport = RoutingTransport(slow: slow, fast: ScriptedTransport())
        let dispatcher = WebhookDispatcher(webhooks: webhooks, transport: transport, clock: ManualClock(), logger: Self.logger)
        let sent = WebhookDispatcher.queueCapacity + 5
        for _ in 0..<sent { dispatcher.send(.limitExceeded, data: "{}") }
        // Before delivery starts, each queue holds its capacity; the rest is dropped and counted.
        #expect(dispatcher.status().map(\.dropped) == [5, 5])
        let run = Task { await dispatcher.run() }
        await Self.waitFor { dispatcher.status()[1].delivered == WebhookDispatcher.queueCapacity }
        #expect(dispatcher.status()[1].delivered == WebhookDispatcher.queueCapacity, "the fast endpoint delivered everything")
        #expect(dispatcher.status()[0].delivered == 0, "the slow one is still on its first")
        slow.release()
        run.cancel()
        await run.value
    }

    @Test func theRingResumesAfterAnIdAndCountsWhatItNoLongerHolds() {
        let hub = EventHub()
        #expect(hub.lastID == 0)
        for index in 1...(EventHub.ringCapacity + 10) { hub.publish("deny", data: "{\"n\":\(index)}") }
        #expect(hub.lastID == UInt64(EventHub.ringCapacity + 10))
        let (events, missed) = hub.events(after: 0, limit: 5)
        #expect(missed == 10)
        #expect(events.map(\.id) == [11, 12, 13, 14, 15])
        let resumed = hub.events(after: 100, limit: 2)
        #expect(resumed.missed == 0 && resumed.events.map(\.id) == [101, 102])
        #expect(hub.events(after: hub.lastID, limit: 5).events.isEmpty)
    }

    @Test func urlsAndTimesAsShown() {
        #expect(WebhookDispatcher.shown("https://u:p@hooks.example.com:8443/a/b?token=x#f") == "https://hooks.example.com:8443/a/b")
        #expect(WebhookDispatcher.shown("http://127.0.0.1:9/x") == "http://127.0.0.1:9/x")
        #expect(WebhookDispatcher.rfc3339(Timestamp(nanoseconds: 1_800_000_000_123_000_000)) == "2027-01-15T08:00:00.123Z")
        #expect(WebhookDispatcher.rfc3339(Timestamp(nanoseconds: 1_800_000_000_005_000_000)) == "2027-01-15T08:00:00.005Z")
    }
}

/// Routes `/slow` to one transport and everything else to another.
struct RoutingTransport: WebhookTransport {
    let slow: ScriptedTransport
    let fast: ScriptedTransport

    func post(url: String, headers: [(String, String)], body: [UInt8], timeout: Duration) async -> Result<Int, any Error> {
        await (url.hasSuffix("/slow") ? slow : fast).post(url: url, headers: headers, body: body, timeout: timeout)
    }
}

extension Collection {
    subscript(safe index: Index) -> Element? { indices.contains(index) ? self[index] : nil }
}
