extension SluiceConfiguration {
    /// Caps on what the HTTP API accepts: the `http` section.
    ///
    /// A request over a cap is answered with a 4xx error and does not reach the decision path.
    ///
    /// ```yaml
    /// http:
    ///   max_body_bytes: 1048576   # the largest request body
    ///   max_checks: 100           # the most checks in one /v1/check request
    ///   max_batch: 1000           # the most items in one /v1/check/batch request
    /// ```
    public struct HTTP: Sendable, Hashable {
        /// The largest `max_body_bytes`: 64 MiB.
        public static let maximumBodyBytes = 64 * 1024 * 1024
        /// The largest `max_checks`.
        public static let maximumChecks = 10_000
        /// The largest `max_batch`.
        public static let maximumBatch = 100_000

        /// `http.max_body_bytes`: the largest request body, 1 through ``maximumBodyBytes``; default 1,048,576 (1 MiB).
        public var maxBodyBytes: Int
        /// `http.max_checks`: the most checks one `/v1/check` request may carry (all or nothing), 1 through
        /// ``maximumChecks``; default 100.
        public var maxChecks: Int
        /// `http.max_batch`: the most independent items one `/v1/check/batch` request may carry, 1 through
        /// ``maximumBatch``; default 1,000.
        public var maxBatch: Int

        /// Creates the HTTP caps.
        ///
        /// - Parameters:
        ///   - maxBodyBytes: the largest request body; default 1,048,576.
        ///   - maxChecks: the most checks in one `/v1/check` request; default 100.
        ///   - maxBatch: the most items in one `/v1/check/batch` request; default 1,000.
        public init(maxBodyBytes: Int = 1_048_576, maxChecks: Int = 100, maxBatch: Int = 1000) {
            self.maxBodyBytes = maxBodyBytes
            self.maxChecks = maxChecks
            self.maxBatch = maxBatch
        }

        /// Each field out of range, with what is wrong; empty when valid.
        func problems() -> [(field: String, message: String)] {
            let fields = [
                ("max_body_bytes", maxBodyBytes, Self.maximumBodyBytes), ("max_checks", maxChecks, Self.maximumChecks),
                ("max_batch", maxBatch, Self.maximumBatch),
            ]
            return fields.compactMap { field, value, maximum in
                (1...maximum).contains(value) ? nil : (field, "must be an integer from 1 to \(maximum), got \(value)")
            }
        }
    }
}
