public import Logging
import Synchronization
import SluiceCore

/// What a logger was told, each record rendered as text with its metadata: for checking what reaches logs
/// (a secret never does).
public final class LogRecords: Sendable {
    private let lines = Locked<[String]>([])

    public init() {}

    /// Every record so far, in order.
    public var all: [String] { lines.withLock { $0 } }

    /// A logger (at trace level) whose records land here.
    public func logger(label: String = "sluice.test.records") -> Logger {
        Logger(label: label) { _ in Handler(records: self) }
    }

    struct Handler: LogHandler {
        let records: LogRecords
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { $1 }
            let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            records.lines.withLock { $0.append("\(event.level) \(event.message) \(fields)") }
        }
    }
}
