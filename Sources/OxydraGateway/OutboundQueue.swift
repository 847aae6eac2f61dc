import OxydraCore
import Synchronization

/// The frames waiting to be written to one client, in order. Consecutive text deltas of a turn are
/// merged as they are queued, so a client that reads slower than the model streams gets fewer,
/// larger `assistant_delta` frames instead of falling behind (and a streamed delta costs an append,
/// not a frame of its own). More than `limit` frames pushed since the writer last took (a merged
/// delta counts as one) means the client has stopped reading: the queue closes and reports it as
/// lagging.
final class OutboundQueue: Sendable {
    private struct State {
        var frames: [ServerFrame] = []
        /// The run of deltas of one turn being merged: the newest frame, not yet in `frames`.
        var run: (header: TurnHeader, text: String)?
        var pushed = 0
        var waiter: CheckedContinuation<Void, Never>?
        var closed = false
        var lagging = false

        var isEmpty: Bool { frames.isEmpty && run == nil }

        mutating func endRun() {
            guard let (header, text) = run else { return }
            frames.append(.assistantDelta(header, delta: text))
            run = nil
        }
    }

    private let state = Mutex(State())
    let limit: Int

    init(limit: Int) { self.limit = limit }

    /// Queues a frame; false when the queue is closed (or just closed because it overflowed).
    func push(_ frame: ServerFrame) -> Bool {
        let (accepted, waiter) = state.withLock { state -> (Bool, CheckedContinuation<Void, Never>?) in
            guard !state.closed else { return (false, nil) }
            defer { state.waiter = nil }
            if state.pushed >= limit {
                state.closed = true
                state.lagging = true
                return (false, state.waiter)
            }
            state.pushed += 1
            if case .assistantDelta(let header, let delta) = frame {
                if state.run?.header == header {
                    state.run!.text += delta
                } else {
                    state.endRun()
                    state.run = (header, delta)
                }
            } else {
                state.endRun()
                state.frames.append(frame)
            }
            return (true, state.waiter)
        }
        waiter?.resume()
        return accepted
    }

    /// No more frames will be queued; the writer drains what is left and stops.
    func close() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.closed = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    var isLagging: Bool { state.withLock { $0.lagging } }

    /// Everything queued (deltas merged), waiting while the queue is empty; nil once closed and drained.
    func take() async -> [ServerFrame]? {
        while true {
            let batch = state.withLock { state -> [ServerFrame]? in
                guard !state.isEmpty else { return nil }
                state.endRun()
                state.pushed = 0
                defer { state.frames.removeAll(keepingCapacity: true) }
                return state.frames
            }
            if let batch { return batch }
            if state.withLock({ $0.closed }) { return nil }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = state.withLock { state -> Bool in
                    if !state.isEmpty || state.closed { return true }
                    state.waiter = continuation
                    return false
                }
                if ready { continuation.resume() }
            }
        }
    }
}
