import CHiredis
import SluiceCore
import Glibc

/// One reply from Redis, copied out of hiredis's reply tree.
enum RedisReply: Sendable, Hashable {
    case string([UInt8])
    case status(String)
    case integer(Int64)
    case null
    case error(String)
    case array([RedisReply])

    /// The text of a string or status reply.
    var text: String? {
        switch self {
        case .string(let bytes): String(decoding: bytes, as: UTF8.self)
        case .status(let text): text
        default: nil
        }
    }
}

/// A script's error reply (the connection stays usable).
struct ScriptError: Error {
    let message: String
}

/// Why talking to Redis failed; the connection is unusable afterwards.
struct RedisConnectionError: Error, CustomStringConvertible {
    let description: String
    /// Whether the node refused the credentials.
    var isAuthentication = false

    init(description: String, isAuthentication: Bool = false) {
        self.description = description
        self.isAuthentication = isAuthentication
    }
}

/// A blocking hiredis connection, used by one thread at a time (the ``RedisWorker``'s).
///
/// Every read and write is bounded by the socket timeout given at connect; after any error the connection
/// is closed and must be replaced.
final class HiredisConnection {
    private let context: UnsafeMutablePointer<redisContext>

    /// Connects to `host:port`, waiting at most `timeout` for the connection and then for each read or write
    /// (`readTimeout` for those, when given: a subscriber waits long).
    init(host: String, port: Int, timeout: Duration, readTimeout: Duration? = nil) throws(RedisConnectionError) {
        func interval(_ duration: Duration) -> timeval {
            let microseconds = duration.nanoseconds / 1_000
            return timeval(tv_sec: Int(microseconds / 1_000_000), tv_usec: Int(microseconds % 1_000_000))
        }
        guard let context = redisConnectWithTimeout(host, Int32(port), interval(timeout)) else {
            throw RedisConnectionError(description: "cannot allocate a hiredis context")
        }
        if context.pointee.err != 0 {
            let message = Self.errorText(context)
            redisFree(context)
            throw RedisConnectionError(description: "connect to \(host):\(port): \(message)")
        }
        self.context = context
        if redisSetTimeout(context, interval(readTimeout ?? timeout)) != REDIS_OK {
            throw RedisConnectionError(description: "cannot set the socket timeout: \(Self.errorText(context))")
        }
        _ = redisEnableKeepAlive(context)
    }

    deinit { redisFree(context) }

    /// Queues commands already in the RESP wire format (a whole pipelined batch at once).
    func appendFormatted(_ bytes: [UInt8]) throws(RedisConnectionError) {
        let status = bytes.withUnsafeBytes { raw in
            redisAppendFormattedCommand(context, raw.baseAddress?.assumingMemoryBound(to: CChar.self), raw.count)
        }
        guard status == REDIS_OK else { throw RedisConnectionError(description: Self.errorText(context)) }
    }

    /// Reads the reply of a script call that answers `count` decisions, seven integers each, in one flat list
    /// (an algorithm's script answers one): the decoded replies, or the error that refused the whole call.
    func scriptReplies(count: Int) throws(RedisConnectionError) -> Result<[ScriptReply], ScriptError> {
        var raw: UnsafeMutableRawPointer?
        guard redisGetReply(context, &raw) == REDIS_OK, let raw else {
            throw RedisConnectionError(description: Self.errorText(context))
        }
        defer { freeReplyObject(raw) }
        let reply = raw.assumingMemoryBound(to: redisReply.self).pointee
        if reply.type == REDIS_REPLY_ERROR, let str = reply.str {
            return .failure(ScriptError(message: String(decoding: UnsafeRawBufferPointer(start: str, count: reply.len), as: UTF8.self)))
        }
        guard reply.type == REDIS_REPLY_ARRAY, let elements = reply.element, reply.elements == count * ScriptReply.fields else {
            return .failure(ScriptError(message: "unexpected reply (type \(reply.type), \(reply.elements) elements) for \(count) decisions"))
        }
        var replies: [ScriptReply] = []
        replies.reserveCapacity(count)
        for decision in 0..<count {
            let decoded = ScriptReply { field in
                guard let element = elements[decision * ScriptReply.fields + field], element.pointee.type == REDIS_REPLY_INTEGER else { return nil }
                return element.pointee.integer
            }
            guard let decoded else { return .failure(ScriptError(message: "a reply that is not seven integers")) }
            replies.append(decoded)
        }
        return .success(replies)
    }

    /// `AUTH [username] password`, when a password is set. Its failure says authentication failed, never the
    /// password.
    func authenticate(username: String?, password: String?) throws(RedisConnectionError) {
        guard let password else { return }
        var auth = [Array("AUTH".utf8)]
        if let username { auth.append(Array(username.utf8)) }
        auth.append(Array(password.utf8))
        if case .error(let message) = try command(auth) {
            // Redis's own text (WRONGPASS ..., ERR invalid password) names no secret, only what went wrong.
            throw RedisConnectionError(description: "authentication failed (\(message.prefix(80)))", isAuthentication: true)
        }
    }

    /// Sends what is queued (on the first call) and reads the next reply, waiting at most the timeout.
    func reply() throws(RedisConnectionError) -> RedisReply {
        var raw: UnsafeMutableRawPointer?
        guard redisGetReply(context, &raw) == REDIS_OK, let raw else {
            throw RedisConnectionError(description: Self.errorText(context))
        }
        defer { freeReplyObject(raw) }
        return Self.convert(raw.assumingMemoryBound(to: redisReply.self))
    }

    /// One command, one reply.
    func command(_ arguments: [[UInt8]]) throws(RedisConnectionError) -> RedisReply {
        var encoded: [UInt8] = []
        RESPEncoding.appendArrayHeader(arguments.count, to: &encoded)
        for argument in arguments { RESPEncoding.appendBulk(argument, to: &encoded) }
        try appendFormatted(encoded)
        return try reply()
    }

    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RedisReply {
        let value = reply.pointee
        func bytes() -> [UInt8] {
            guard let str = value.str else { return [] }
            return Array(UnsafeRawBufferPointer(start: str, count: value.len))
        }
        switch value.type {
        case REDIS_REPLY_STRING: return .string(bytes())
        case REDIS_REPLY_STATUS: return .status(String(decoding: bytes(), as: UTF8.self))
        case REDIS_REPLY_ERROR: return .error(String(decoding: bytes(), as: UTF8.self))
        case REDIS_REPLY_INTEGER: return .integer(value.integer)
        case REDIS_REPLY_ARRAY:
            var elements: [RedisReply] = []
            elements.reserveCapacity(value.elements)
            for index in 0..<value.elements {
                if let element = value.element?[index] { elements.append(convert(element)) } else { elements.append(.null) }
            }
            return .array(elements)
        default: return .null
        }
    }

    private static func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        let code = context.pointee.err
        let text = withUnsafeBytes(of: context.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        let kind =
            switch code {
            case REDIS_ERR_IO: "I/O error"
            case REDIS_ERR_EOF: "connection closed"
            case REDIS_ERR_PROTOCOL: "protocol error"
            case REDIS_ERR_OOM: "out of memory"
            default: "error"
            }
        return text.isEmpty ? kind : "\(kind): \(text)"
    }
}
