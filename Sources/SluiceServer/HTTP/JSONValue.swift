import FoundationEssentials
import NIOCore
import NIOHTTP1

/// A parsed JSON document, read with FoundationEssentials' `JSONDecoder` and then checked field by field,
/// so every error can name the field and say what was expected.
enum JSONValue: Decodable, Equatable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    /// Parses a request body.
    ///
    /// - Throws: ``HTTPAPIError`` (400, `invalid_json`) for anything that is not one JSON document.
    static func parse(_ body: ByteBuffer) throws(HTTPAPIError) -> JSONValue {
        do {
            return try JSONDecoder().decode(JSONValue.self, from: Data(body.readableBytesView))
        } catch {
            throw HTTPAPIError(.badRequest, code: "invalid_json", "the body is not valid JSON")
        }
    }

    /// What the value is, for error messages: `a string`, `an integer`, ...
    var kind: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .integer: "an integer"
        case .number: "a number with a fraction"
        case .string: "a string"
        case .array: "a list"
        case .object: "an object"
        }
    }
}
