/// An invalid policy, limit or duration.
public struct PolicyError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of mistake was made.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Base: String, Hashable, Sendable {
            case invalidDuration, invalidLimit, invalidBurst, invalidPeriod, invalidName, invalidOverride
        }
        let base: Base
        /// A duration that is not a positive integer with a unit.
        public static let invalidDuration = Code(base: .invalidDuration)
        /// A limit outside the range the algorithm supports.
        public static let invalidLimit = Code(base: .invalidLimit)
        /// A burst outside the supported range, or given for an algorithm without one.
        public static let invalidBurst = Code(base: .invalidBurst)
        /// A period outside the supported range.
        public static let invalidPeriod = Code(base: .invalidPeriod)
        /// A policy name that is empty, too long or has characters outside `[A-Za-z0-9_.:-]`.
        public static let invalidName = Code(base: .invalidName)
        /// An override whose key is empty, too long, holds `*` anywhere but at its end, or is given twice.
        public static let invalidOverride = Code(base: .invalidOverride)
        public var description: String { base.rawValue }
    }

    /// The kind of mistake.
    public let code: Code
    /// A sentence saying what was wrong and what would be right.
    public let message: String

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
