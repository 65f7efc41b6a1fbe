public import SluiceConfig
public import SluiceCore
import Synchronization

/// Where limit events go: a ring of recent events that live streams (`GET /v1/events`) read from, and the
/// webhooks (``WebhookDispatcher``), each event type once per policy, key and window.
///
/// The decision path asks ``wants(_:)`` first: one relaxed atomic load when nobody listens. Publishing takes
/// a lock and renders a little JSON, only for the decisions someone listens for (denials while a stream or a
/// `limit.exceeded` webhook is there; threshold crossings while a `limit.threshold` webhook is).
public final class EventHub: Sendable {
    /// One event of the stream: its id, type (`deny`, `stats`, `store.down`, …) and JSON data.
    struct Event: Sendable, Equatable {
        let id: UInt64
        let type: String
        let data: String
    }

    private struct Ring {
        var events: [Event?]
        /// The id the next event gets; ids start at 1.
        var nextID: UInt64 = 1
        var firstID: UInt64 { nextID > UInt64(events.count) ? nextID - UInt64(events.count) : 1 }
    }

    /// Events kept for streams to read and resume from.
    static let ringCapacity = 4096
    private let ring: Locked<Ring>
    private let subscribers = Atomic<Int>(0)
    /// Events lost by streams that fell behind the ring.
    let droppedEvents = Atomic<Int>(0)
    /// The webhooks, or nil when none are configured.
    let webhooks: WebhookDispatcher?
    /// `events.threshold`.
    let threshold: Double
    private let wantsExceeded: Bool
    private let wantsThreshold: Bool
    /// (type, policy, key) -> the window it was last sent for: each once per window.
    private let sent = Locked<[SentKey: Int64]>([:])
    /// The most (type, policy, key) remembered; past it, the oldest windows are forgotten.
    static let sentCapacity = 65_536

    private struct SentKey: Hashable {
        let type: SluiceConfiguration.Events.EventType
        let policy: String
        let key: String
    }

    /// Creates a hub with `settings`' threshold, sending to `webhooks` (nil: none).
    public init(settings: SluiceConfiguration.Events = SluiceConfiguration.Events(), webhooks: WebhookDispatcher? = nil) {
        ring = Locked(Ring(events: Array(repeating: nil, count: Self.ringCapacity)))
        threshold = settings.threshold
        self.webhooks = webhooks
        wantsExceeded = webhooks?.wants(.limitExceeded) ?? false
        wantsThreshold = webhooks?.wants(.limitThreshold) ?? false
        webhooks?.onFailing { [weak self] url in self?.webhookFailing(url) }
    }

    // MARK: Decisions

    /// Whether `decision` is worth ``record(_:policy:key:periodNanoseconds:now:)``: an enforced denial while
    /// anyone listens for denials, or an allowed decision past the threshold while a webhook wants those.
    @inline(__always)
    public func wants(_ decision: Decision) -> Bool {
        if decision.outcome != .allowed {
            return !decision.isShadowed && (wantsExceeded || subscribers.load(ordering: .relaxed) > 0)
        }
        return wantsThreshold && Double(decision.limit - decision.remaining) >= threshold * Double(decision.limit)
    }

    /// Whether any event of a decision is wanted now (a stream listens, or a webhook takes decision events).
    var isListening: Bool { wantsExceeded || wantsThreshold || subscribers.load(ordering: .relaxed) > 0 }

    /// Publishes what `decision` (of `policy`, for `key`, whose window is `periodNanoseconds` long) means: a
    /// `deny` on the stream and `limit.exceeded` (once per window) for a denial, `limit.threshold` (once per
    /// window) for a crossing. Call when ``wants(_:)`` says so.
    public func record(_ decision: Decision, policy: String, key: String, periodNanoseconds: Int64, now: Timestamp) {
        let window = periodNanoseconds > 0 ? now.nanoseconds / periodNanoseconds : 0
        let data =
            "{\"policy\":\(JSONText.quoted(policy)),\"key\":\(JSONText.quoted(key)),\"limit\":\(decision.limit),"
            + "\"remaining\":\(decision.remaining),\"retry_after_ms\":\(decision.retryAfterMilliseconds),\"reset_after_ms\":\(decision.resetAfterMilliseconds)}"
        if decision.outcome != .allowed {
            if subscribers.load(ordering: .relaxed) > 0 { publish("deny", data: data) }
            if wantsExceeded, firstIn(window, .limitExceeded, policy: policy, key: key, until: now.nanoseconds + periodNanoseconds) {
                webhooks?.send(.limitExceeded, data: data)
            }
        } else if wantsThreshold, firstIn(window, .limitThreshold, policy: policy, key: key, until: now.nanoseconds + periodNanoseconds) {
            webhooks?.send(.limitThreshold, data: data)
        }
    }

    /// Whether this is the first `type` of (`policy`, `key`) in `window`; remembers it if so.
    private func firstIn(_ window: Int64, _ type: SluiceConfiguration.Events.EventType, policy: String, key: String, until: Int64) -> Bool {
        let entry = SentKey(type: type, policy: policy, key: key)
        return sent.withLock { sent in
            if sent[entry] == window { return false }
            if sent.count >= Self.sentCapacity, sent[entry] == nil {
                // Forget the oldest half of the windows: a key seen again may be sent twice in one window, never lost.
                let windows = sent.values.sorted()
                let median = windows[windows.count / 2]
                sent = sent.filter { $0.value > median }
            }
            sent[entry] = window
            return true
        }
    }

    // MARK: The ring

    /// Adds an event of `type` with JSON `data` to the ring; returns its id.
    @discardableResult
    func publish(_ type: String, data: String) -> UInt64 {
        ring.withLock { ring in
            let id = ring.nextID
            ring.events[Int(id % UInt64(ring.events.count))] = Event(id: id, type: type, data: data)
            ring.nextID += 1
            return id
        }
    }

    /// The id of the newest event (0 when none yet).
    var lastID: UInt64 { ring.withLock { $0.nextID - 1 } }

    /// Up to `limit` events after `id`, and how many events after `id` the ring no longer holds.
    func events(after id: UInt64, limit: Int) -> (events: [Event], missed: UInt64) {
        ring.withLock { ring in
            let first = ring.firstID
            var start = id + 1
            var missed: UInt64 = 0
            if start < first {
                missed = first - start
                start = first
            }
            guard start < ring.nextID else { return ([], missed) }
            let end = min(ring.nextID, start + UInt64(limit))
            return ((start..<end).compactMap { ring.events[Int($0 % UInt64(ring.events.count))] }, missed)
        }
    }

    // MARK: Streams

    /// A stream began listening.
    func subscribe() { subscribers.add(1, ordering: .relaxed) }

    /// A stream stopped listening.
    func unsubscribe() { subscribers.subtract(1, ordering: .relaxed) }

    /// Streams listening now.
    public var subscriberCount: Int { subscribers.load(ordering: .relaxed) }
}
