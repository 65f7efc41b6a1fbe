import Synchronization

/// Decisions by policy name (allowed, denied, let through by shadow mode), for metrics.
///
/// One ``Cell`` per name for the life of the process, shared by every ``PolicySet`` that names the policy, so
/// totals carry across reloads (a counter never goes back) and a policy a reload removed keeps its last
/// values. Label cardinality is the number of policy names, never keys. Inline limits (`THROTTLE`, inline HTTP
/// checks) count under ``inlineName``.
public final class PolicyCounters: Sendable {
    /// One policy's counts; the interfaces add to them once per decision (relaxed atomics).
    public final class Cell: Sendable {
        let allowed = Atomic<Int>(0)
        let denied = Atomic<Int>(0)
        let shadowDenied = Atomic<Int>(0)

        /// Counts `decision`.
        @inline(__always)
        func count(_ decision: Decision) {
            if decision.outcome == .allowed {
                allowed.add(1, ordering: .relaxed)
            } else if decision.isShadowed {
                shadowDenied.add(1, ordering: .relaxed)
            } else {
                denied.add(1, ordering: .relaxed)
            }
        }
    }

    /// What inline limits count under (no policy name can hold parentheses).
    public static let inlineName = "(inline)"

    /// The process's counters.
    public static let shared = PolicyCounters()

    private let cells = Locked<[String: Cell]>([:])
    /// The inline limits' cell.
    public let inline: Cell

    /// Creates empty counters (the server uses ``shared``; a test may keep its own).
    public init() {
        let inline = Cell()
        self.inline = inline
        cells.withLock { $0[Self.inlineName] = inline }
    }

    /// The cell of `name`, made on first use.
    public func cell(_ name: String) -> Cell {
        cells.withLock { cells in
            if let cell = cells[name] { return cell }
            let cell = Cell()
            cells[name] = cell
            return cell
        }
    }

    /// Every name's counts, sorted by name.
    public func snapshot() -> [(name: String, allowed: Int, denied: Int, shadowDenied: Int)] {
        cells.withLock { $0 }.sorted { $0.key < $1.key }.map { name, cell in
            (name, cell.allowed.load(ordering: .relaxed), cell.denied.load(ordering: .relaxed), cell.shadowDenied.load(ordering: .relaxed))
        }
    }
}
