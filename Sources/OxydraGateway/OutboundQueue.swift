import OxydraCore
import Synchronization

/// The frames waiting to be written to one client, in order. The writer takes everything queued at
/// once and merges consecutive text deltas of a turn, so a client that reads slower than the model
/// streams gets fewer, larger `assistant_delta` frames instead of falling behind. More than `limit`
/// frames waiting means the client has stopped reading: the queue closes and reports it as lagging.
final class OutboundQueue: Sendable {
    private struct State {
        var frames: [ServerFrame] = []
        var waiter: CheckedContinuation<Void, Never>?
        var closed = false
        var lagging = false
    }

    private let state = Mutex(State())
    let limit: Int

    init(limit: Int) { self.limit = limit }

    /// Queues a frame; false when the queue is closed (or just closed because it overflowed).
    func push(_ frame: ServerFrame) -> Bool {
        let (accepted, waiter) = state.withLock { state -> (Bool, CheckedContinuation<Void, Never>?) in
            guard !state.closed else { return (false, nil) }
            if state.frames.count >= limit {
                state.closed = true
                state.lagging = true
                defer { state.waiter = nil }
                return (false, state.waiter)
            }
            state.frames.append(frame)
            defer { state.waiter = nil }
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
            // The queue's array itself is handed over: emptying one that is also returned would
            // allocate a new buffer of the whole capacity on every take.
            let batch = state.withLock { state -> [ServerFrame]? in
                guard !state.frames.isEmpty else { return nil }
                var batch: [ServerFrame] = []
                swap(&batch, &state.frames)
                return batch
            }
            if let batch { return Self.coalesce(batch) }
            if state.withLock({ $0.closed }) { return nil }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = state.withLock { state -> Bool in
                    if !state.frames.isEmpty || state.closed { return true }
                    state.waiter = continuation
                    return false
                }
                if ready { continuation.resume() }
            }
        }
    }

    /// Merges runs of `assistant_delta` frames of the same turn into one (each run's text is
    /// appended into one string, not rebuilt per delta).
    static func coalesce(_ frames: [ServerFrame]) -> [ServerFrame] {
        guard frames.count > 1 else { return frames }
        var out: [ServerFrame] = []
        out.reserveCapacity(frames.count)
        var run: (header: TurnHeader, text: String)?
        for frame in frames {
            if case .assistantDelta(let header, let delta) = frame {
                if run?.header == header {
                    run!.text += delta
                    continue
                }
                if let (header, text) = run { out.append(.assistantDelta(header, delta: text)) }
                run = (header, delta)
                continue
            }
            if let (header, text) = run { out.append(.assistantDelta(header, delta: text)) }
            run = nil
            out.append(frame)
        }
        if let (header, text) = run { out.append(.assistantDelta(header, delta: text)) }
        return out
    }
}
