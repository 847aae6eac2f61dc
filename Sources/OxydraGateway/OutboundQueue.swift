import OxydraCore
import Synchronization

/// The frames waiting to be written to one client, in order. A text delta pushed right after a
/// delta of the same turn that is still waiting is appended to it, so a client that reads slower
/// than the model streams gets fewer, larger `assistant_delta` frames instead of falling behind,
/// and the writer takes everything queued at once. More than `limit` frames pushed since the last
/// take (merged ones count) means the client has stopped reading: the queue closes and reports it
/// as lagging.
final class OutboundQueue: Sendable {
    private struct State {
        var frames: [ServerFrame] = []
        /// Frames pushed since the last take, merged deltas included.
        var pushed = 0
        /// The writer waiting for a frame; resumed exactly once, by whoever takes it out.
        /// (`UnsafeContinuation` has a layout the compiler knows: a checked one is copied and
        /// destroyed through generic witnesses on every push.)
        var waiter: UnsafeContinuation<Void, Never>?
        var closed = false
        var lagging = false
    }

    private let state = Mutex(State())
    let limit: Int

    init(limit: Int) { self.limit = limit }

    /// Queues a frame; false when the queue is closed (or just closed because it overflowed).
    func push(_ frame: ServerFrame) -> Bool {
        let (accepted, waiter) = state.withLock { state -> (Bool, UnsafeContinuation<Void, Never>?) in
            guard !state.closed else { return (false, nil) }
            let waiter = state.waiter
            state.waiter = nil
            guard state.pushed < limit else {
                state.closed = true
                state.lagging = true
                return (false, waiter)
            }
            state.pushed += 1
            if case .assistantDelta(let header, let delta) = frame, !state.frames.isEmpty {
                Self.append(delta, of: header, after: &state.frames, or: frame)
            } else {
                state.frames.append(frame)
            }
            return (true, waiter)
        }
        waiter?.resume()
        return accepted
    }

    /// Appends `delta` to the last frame when that is a delta of the same turn (its text is
    /// uniquely held there, so it grows in place); otherwise queues `frame` after it.
    private static func append(
        _ delta: String, of header: TurnHeader, after frames: inout [ServerFrame], or frame: ServerFrame
    ) {
        switch frames.removeLast() {
        case .assistantDelta(let last, var text) where last == header:
            text += delta
            frames.append(.assistantDelta(last, delta: text))
        case let other:
            frames.append(other)
            frames.append(frame)
        }
    }

    /// No more frames will be queued; the writer drains what is left and stops.
    func close() {
        let waiter = state.withLock { state -> UnsafeContinuation<Void, Never>? in
            state.closed = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    var isLagging: Bool { state.withLock { $0.lagging } }

    /// Everything queued, waiting while the queue is empty; nil once closed and drained.
    func take() async -> [ServerFrame]? {
        while true {
            // The queue's array itself is handed over: emptying one that is also returned would
            // allocate a new buffer of the whole capacity on every take.
            let batch = state.withLock { state -> [ServerFrame]? in
                guard !state.frames.isEmpty else { return nil }
                var batch: [ServerFrame] = []
                swap(&batch, &state.frames)
                state.pushed = 0
                return batch
            }
            if let batch { return batch }
            if state.withLock({ $0.closed }) { return nil }
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                let ready = state.withLock { state -> Bool in
                    if !state.frames.isEmpty || state.closed { return true }
                    state.waiter = continuation
                    return false
                }
                if ready { continuation.resume() }
            }
        }
    }
}
