extension SluiceConfiguration {
    /// Caps on what a client sends and how long it may hold a connection: the `limits` section.
    ///
    /// A client that goes over a cap gets an error and is disconnected, without affecting other clients.
    ///
    /// ```yaml
    /// limits:
    ///   max_key_bytes: 512        # the longest bucket key
    ///   max_line_bytes: 65536     # the longest inline command, or one bulk string
    ///   max_arguments: 1024       # the most elements in one RESP array
    ///   max_frame_bytes: 1048576  # the largest whole RESP command
    ///   max_connections: 10000    # open connections per listener; more are told so and closed
    ///   idle_timeout: 5m          # a connection that sends nothing for this long is closed (0: never)
    ///   request_timeout: 10s      # an HTTP request's head and body must arrive within this of its first byte
    /// ```
    public struct Limits: Sendable, Hashable {
        /// The largest `max_line_bytes`: 512 MiB, Redis's own cap on a bulk string.
        public static let maximumLineBytes = 512 * 1024 * 1024
        /// The largest `max_arguments`.
        public static let maximumArguments = 1_048_576

        /// `limits.max_key_bytes`: the longest key, 1 through `max_line_bytes`; default 512.
        public var maxKeyBytes: Int
        /// `limits.max_line_bytes`: the longest inline line or bulk string, 1 through ``maximumLineBytes``;
        /// default 65,536.
        public var maxLineBytes: Int
        /// `limits.max_arguments`: the most elements in a RESP array, 1 through ``maximumArguments``; default 1,024.
        public var maxArguments: Int
        /// `limits.max_frame_bytes`: the largest whole RESP array, headers included, 1 through ``maximumLineBytes``;
        /// default 1,048,576 (1 MiB). It is what one connection may make the server hold for a command it has not
        /// finished sending; it never stops a single bulk string of `max_line_bytes` (see ``effectiveMaxFrameBytes``).
        public var maxFrameBytes: Int
        /// `limits.max_connections`: open connections per listener (line, HTTP, admin), 1 through 1,000,000;
        /// default 10,000. One more is told why (`-ERR max number of clients reached`, or HTTP 503) and closed.
        public var maxConnections: Int
        /// `limits.idle_timeout`: a connection that sends nothing for this long is closed; 0 never. Default 5
        /// minutes. A live event stream, which sends nothing after its request, is exempt.
        public var idleTimeoutNanoseconds: Int64
        /// `limits.request_timeout`: an HTTP request's head and body must arrive within this of its first byte, or
        /// the connection gets 408 and is closed (a client sending one byte a second holds nothing for long).
        /// Default 10 s.
        public var requestTimeoutNanoseconds: Int64

        /// The largest `max_connections`.
        public static let maximumConnections = 1_000_000

        /// Creates the caps.
        ///
        /// - Parameters:
        ///   - maxKeyBytes: the longest key; default 512.
        ///   - maxLineBytes: the longest inline line or bulk string; default 65,536.
        ///   - maxArguments: the most elements in a RESP array; default 1,024.
        ///   - maxFrameBytes: the largest whole RESP array; default 1,048,576.
        ///   - maxConnections: open connections per listener; default 10,000.
        ///   - idleTimeoutNanoseconds: how long a connection may be silent both ways; 0 never; default 5 minutes.
        ///   - requestTimeoutNanoseconds: how long an HTTP request may take to arrive; default 10 s.
        public init(
            maxKeyBytes: Int = 512, maxLineBytes: Int = 65_536, maxArguments: Int = 1_024, maxFrameBytes: Int = 1_048_576,
            maxConnections: Int = 10_000, idleTimeoutNanoseconds: Int64 = 300_000_000_000, requestTimeoutNanoseconds: Int64 = 10_000_000_000
        ) {
            self.maxConnections = maxConnections
            self.idleTimeoutNanoseconds = idleTimeoutNanoseconds
            self.requestTimeoutNanoseconds = requestTimeoutNanoseconds
            self.maxKeyBytes = maxKeyBytes
            self.maxLineBytes = maxLineBytes
            self.maxArguments = maxArguments
            self.maxFrameBytes = maxFrameBytes
        }

        /// The frame cap the parser applies: `max_frame_bytes`, raised to hold one bulk string of
        /// `max_line_bytes` and its headers.
        public var effectiveMaxFrameBytes: Int { max(maxFrameBytes, maxLineBytes + 64) }

        /// Each field out of range, with what is wrong; empty when valid.
        func problems() -> [(field: String, message: String)] {
            var problems: [(field: String, message: String)] = []
            if !(1...Self.maximumLineBytes).contains(maxLineBytes) {
                problems.append(
                    ("max_line_bytes", "must be an integer from 1 to \(Self.maximumLineBytes), got \(maxLineBytes)")
                )
            } else if !(1...maxLineBytes).contains(maxKeyBytes) {
                problems.append(
                    ("max_key_bytes", "must be an integer from 1 to max_line_bytes (\(maxLineBytes)), got \(maxKeyBytes)")
                )
            }
            if !(1...Self.maximumLineBytes).contains(maxFrameBytes) {
                problems.append(("max_frame_bytes", "must be an integer from 1 to \(Self.maximumLineBytes), got \(maxFrameBytes)"))
            }
            if !(1...Self.maximumArguments).contains(maxArguments) {
                problems.append(
                    ("max_arguments", "must be an integer from 1 to \(Self.maximumArguments), got \(maxArguments)")
                )
            }
            if !(1...Self.maximumConnections).contains(maxConnections) {
                problems.append(("max_connections", "must be an integer from 1 to \(Self.maximumConnections), got \(maxConnections)"))
            }
            if idleTimeoutNanoseconds != 0, !(100_000_000...86_400_000_000_000).contains(idleTimeoutNanoseconds) {
                problems.append(("idle_timeout", "must be 0 (never) or a duration from 100ms to 1d"))
            }
            if !(100_000_000...3_600_000_000_000).contains(requestTimeoutNanoseconds) {
                problems.append(("request_timeout", "must be a duration from 100ms to 1h"))
            }
            return problems
        }
    }
}
