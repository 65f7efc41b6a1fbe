import SluiceCore

extension SluiceConfiguration {
    /// Envoy's rate limit service: the `rls` section, with the envoyproxy/ratelimit files it names, read.
    ///
    /// ```yaml
    /// rls:
    ///   files: ["ratelimit/config.yaml"]  # envoyproxy/ratelimit's format; relative to this file's folder
    ///   response_headers: false           # x-ratelimit-* in response_headers_to_add
    ///   ietf_headers: false               # also RateLimit and RateLimit-Policy (with response_headers)
    ///   max_descriptors: 64               # the most descriptors in one request
    ///   max_entries: 32                   # the most entries in one descriptor
    /// ```
    ///
    /// The service listens where `listen.grpc` says.
    public struct RLS: Sendable, Hashable {
        /// The largest `max_descriptors` and `max_entries`.
        public static let maximumCap = 4096

        /// `rls.files`: the envoyproxy/ratelimit files, as written (relative paths from the configuration file's folder).
        public var files: [String]
        /// `rls.response_headers`: add `x-ratelimit-limit`, `-remaining` and `-reset` for the most restrictive
        /// status to every answer; default false, as in envoyproxy/ratelimit, because Envoy's own
        /// `enable_x_ratelimit_headers` builds the same headers from the statuses.
        public var responseHeaders: Bool
        /// `rls.ietf_headers`: with `response_headers`, also add the IETF draft's `RateLimit` and
        /// `RateLimit-Policy` fields; default false.
        public var ietfHeaders: Bool
        /// `rls.max_descriptors`: the most descriptors one request may carry, 1 through ``maximumCap``; default 64.
        public var maxDescriptors: Int
        /// `rls.max_entries`: the most entries one descriptor may carry, 1 through ``maximumCap``; default 32.
        public var maxEntries: Int
        /// The domains the files define, in file order.
        public var domains: [RLSDomain]

        /// Creates the section.
        public init(
            files: [String] = [], responseHeaders: Bool = false, ietfHeaders: Bool = false, maxDescriptors: Int = 64, maxEntries: Int = 32,
            domains: [RLSDomain] = []
        ) {
            self.files = files
            self.responseHeaders = responseHeaders
            self.ietfHeaders = ietfHeaders
            self.maxDescriptors = maxDescriptors
            self.maxEntries = maxEntries
            self.domains = domains
        }

        /// Each field out of range, with what is wrong; empty when valid.
        func problems() -> [(field: String, message: String)] {
            [("max_descriptors", maxDescriptors), ("max_entries", maxEntries)].compactMap { field, value in
                (1...Self.maximumCap).contains(value) ? nil : (field, "must be an integer from 1 to \(Self.maximumCap), got \(value)")
            }
        }

        /// Whether any limit of any domain is global (then a `redis` section is needed).
        var hasGlobalLimit: Bool {
            func global(_ descriptors: [RLSDescriptor]) -> Bool {
                descriptors.contains { descriptor in (descriptor.limit.map { $0.scope != .local } ?? false) || global(descriptor.descriptors) }
            }
            return domains.contains { global($0.descriptors) }
        }
    }
}
