public import NIOCore

/// One request of a plan with the key left open: fixed bytes and key placeholders, written for a key index
/// without building strings.
public struct RequestTemplate: Sendable {
    enum Segment: Sendable {
        case bytes([UInt8])
        /// The key as a RESP bulk string (`$LEN\r\nPREFIXi\r\n`).
        case bulkKey
        /// The key as it is (`PREFIXi`).
        case key
        /// An IPv4 address made from the key index (`10.x.y.z`), for forward auth's client address.
        case address
    }

    let segments: [Segment]
    let prefix: [UInt8]

    /// The template of `plan`'s line or HTTP request (gRPC requests are messages, built elsewhere).
    public init(_ plan: BenchPlan) {
        prefix = Array(plan.keyPrefix.utf8)
        var segments: [Segment] = []
        func bulk(_ text: String) -> [UInt8] { Array("$\(text.utf8.count)\r\n\(text)\r\n".utf8) }
        switch plan.target {
        case .line:
            switch plan.command {
            case .take:
                segments = [.bytes(Array("*4\r\n".utf8) + bulk("TAKE") + bulk(plan.policies[0])), .bulkKey, .bytes(bulk(String(plan.cost)))]
            case .throttle:
                segments = [
                    .bytes(Array("*5\r\n".utf8) + bulk("THROTTLE")), .bulkKey,
                    .bytes(bulk(String(plan.throttleLimit)) + bulk(plan.throttlePeriod) + bulk(String(plan.cost))),
                ]
            case .mtake:
                segments = [.bytes(Array("*\(1 + 3 * plan.policies.count)\r\n".utf8) + bulk("MTAKE"))]
                for policy in plan.policies {
                    segments += [.bytes(bulk(policy)), .bulkKey, .bytes(bulk(String(plan.cost)))]
                }
            }
        case .http(let host, let port, let forwardAuth):
            let hostHeader = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            if forwardAuth {
                segments = [
                    .bytes(Array("GET /v1/forward-auth HTTP/1.1\r\nHost: \(hostHeader)\r\nX-Forwarded-Method: GET\r\nX-Forwarded-Uri: /\r\nX-Forwarded-For: ".utf8)),
                    .address, .bytes(Array("\r\nX-API-Key: ".utf8)), .key, .bytes(Array("\r\n\r\n".utf8)),
                ]
            } else {
                segments = [
                    .bytes(Array("GET /v1/check?policy=\(plan.policies[0])&key=".utf8)), .key,
                    .bytes(Array("&cost=\(plan.cost) HTTP/1.1\r\nHost: \(hostHeader)\r\n\r\n".utf8)),
                ]
            }
        case .grpc:
            segments = []
        }
        self.segments = segments
    }

    /// Writes the request for key `index` (0 or more).
    public func write(key index: Int, into buffer: inout ByteBuffer) {
        for segment in segments {
            switch segment {
            case .bytes(let bytes):
                buffer.writeBytes(bytes)
            case .bulkKey:
                buffer.writeInteger(UInt8(ascii: "$"))
                Self.writeDecimal(prefix.count + Self.digitCount(index), into: &buffer)
                buffer.writeBytes([UInt8(ascii: "\r"), UInt8(ascii: "\n")])
                buffer.writeBytes(prefix)
                Self.writeDecimal(index, into: &buffer)
                buffer.writeBytes([UInt8(ascii: "\r"), UInt8(ascii: "\n")])
            case .key:
                buffer.writeBytes(prefix)
                Self.writeDecimal(index, into: &buffer)
            case .address:
                Self.writeDecimal(10, into: &buffer)
                for shift in [16, 8, 0] {
                    buffer.writeInteger(UInt8(ascii: "."))
                    Self.writeDecimal((index >> shift) & 0xFF, into: &buffer)
                }
            }
        }
    }

    /// The key of index `index` as text (gRPC's descriptor value).
    public func key(_ index: Int) -> String { String(decoding: prefix, as: UTF8.self) + String(index) }

    static func digitCount(_ value: Int) -> Int {
        var count = 1
        var rest = value / 10
        while rest > 0 {
            count += 1
            rest /= 10
        }
        return count
    }

    static func writeDecimal(_ value: Int, into buffer: inout ByteBuffer) {
        let count = digitCount(value)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { bytes in
            var rest = value
            for position in stride(from: count - 1, through: 0, by: -1) {
                bytes[position] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            }
            return count
        }
    }
}
