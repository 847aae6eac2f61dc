/// A timer a task can wait on (see ``Sleep``).
public protocol TaskTimer: Sendable {
    /// Waits `duration`, or throws `CancellationError` when the task is cancelled first.
    func sleep(for duration: Duration) async throws
}

/// How the runtime's timers wait (tool time limits, heartbeats while tools run). By default
/// `Task.sleep`, which registers every wait with the dispatch manager thread and wakes a dispatch
/// worker when it ends — even a wait that was cancelled long before. A server that runs a task on
/// an event loop sets ``timer`` to a timer of that loop for the task and its children.
public enum Sleep {
    /// The timer of the current task; nil for `Task.sleep`.
    @TaskLocal public static var timer: (any TaskTimer)?

    /// Waits `duration`, or throws `CancellationError` when the task is cancelled first.
    public static func `for`(_ duration: Duration) async throws {
        if let timer { try await timer.sleep(for: duration) } else { try await Task.sleep(for: duration) }
    }
}
