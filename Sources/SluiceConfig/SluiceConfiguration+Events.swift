extension SluiceConfiguration {
    /// Limit events for webhooks: the `events` section.
    ///
    /// ```yaml
    /// events:
    ///   threshold: 0.8                    # limit.threshold: a key first uses this share of a window
    ///   webhooks:
    ///     - url: "https://hooks.example.com/sluice"
    ///       secret: "whsec_..."           # or secret_file: PATH (its first line)
    ///       types: [limit.exceeded, limit.threshold, store.down, store.up]
    ///       retry: [1m, 5m, 30m, 2h]      # delays after the first attempt; this is the default
    ///       timeout: 5s
    /// ```
    ///
    /// The live stream (`GET /v1/events`) needs no configuration: it is part of the admin API.
    public struct Events: Sendable, Hashable {
        /// The kinds of event a webhook may receive.
        public enum EventType: String, Sendable, Hashable, CaseIterable {
            /// A key was first denied in a window (once per policy, key and window).
            case limitExceeded = "limit.exceeded"
            /// A key first used ``Events/threshold`` of a window (once per policy, key and window).
            case limitThreshold = "limit.threshold"
            /// Redis stopped answering (global policies follow `on_store_failure`).
            case storeDown = "store.down"
            /// Redis answers again.
            case storeUp = "store.up"
        }

        /// One webhook endpoint.
        public struct Webhook: Sendable, Hashable, CustomStringConvertible {
            /// Where events are POSTed (`http://` or `https://`).
            public var url: String
            /// The HMAC-SHA256 key: the secret's UTF-8 bytes as written, prefix included.
            public var secret: String
            /// The types it receives.
            public var types: Set<EventType>
            /// Delays between consecutive attempts: `[1s, 2s]` means three attempts, 1 s then 2 s apart.
            public var retryNanoseconds: [Int64]
            /// The longest one attempt may take.
            public var timeoutNanoseconds: Int64

            /// The default schedule: 1m, 5m, 30m, 2h.
            public static let defaultRetry: [Int64] = [60, 300, 1800, 7200].map { $0 * 1_000_000_000 }

            /// Creates a webhook.
            public init(
                url: String, secret: String, types: Set<EventType> = Set(EventType.allCases), retryNanoseconds: [Int64] = defaultRetry,
                timeoutNanoseconds: Int64 = 5_000_000_000
            ) {
                self.url = url
                self.secret = secret
                self.types = types
                self.retryNanoseconds = retryNanoseconds
                self.timeoutNanoseconds = timeoutNanoseconds
            }

            /// The URL, never the secret.
            public var description: String { "webhook \(url)" }
        }

        /// The share of a window's limit at which `limit.threshold` is sent, between 0 and 1 (exclusive).
        public var threshold: Double
        /// The endpoints.
        public var webhooks: [Webhook]

        /// Creates the events settings: threshold 0.8, no webhooks by default.
        public init(threshold: Double = 0.8, webhooks: [Webhook] = []) {
            self.threshold = threshold
            self.webhooks = webhooks
        }

        /// Each field out of range, with what is wrong; empty when valid.
        func problems() -> [(field: String, message: String)] {
            var problems: [(field: String, message: String)] = []
            if !(threshold > 0 && threshold < 1) { problems.append(("threshold", "must be a number between 0 and 1, such as 0.8; got \(threshold)")) }
            for (index, webhook) in webhooks.enumerated() {
                let lowered = webhook.url.lowercased()
                if !(lowered.hasPrefix("http://") || lowered.hasPrefix("https://")) || webhook.url.utf8.count < 10 {
                    problems.append(("webhooks[\(index)].url", "must be an http:// or https:// URL, got '\(webhook.url)'"))
                }
                if webhook.secret.isEmpty { problems.append(("webhooks[\(index)].secret", "must not be empty")) }
                if webhook.types.isEmpty { problems.append(("webhooks[\(index)].types", "must name at least one type")) }
                if webhook.retryNanoseconds.count > 20 || webhook.retryNanoseconds.contains(where: { $0 <= 0 || $0 > 86_400_000_000_000 }) {
                    problems.append(("webhooks[\(index)].retry", "must be at most 20 delays, each from 1ms to 1d"))
                }
                if !(1_000_000...300_000_000_000).contains(webhook.timeoutNanoseconds) {
                    problems.append(("webhooks[\(index)].timeout", "must be from 1ms to 5m"))
                }
            }
            return problems
        }
    }
}
