import NIOCore
import NIOPosix
import OxydraCore
import ServiceLifecycle
import Synchronization

/// Runs a task's jobs on one NIO event loop, so that a client's reads, its turns and its writes —
/// and the provider connection, which AsyncHTTPClient opens on the calling task's loop — stay on
/// one thread instead of handing every streamed chunk between Swift's global pool and the loops.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    /// The executor of the connection whose request started the current work, if any: turns a
    /// connection starts run on its loop.
    @TaskLocal static var current: EventLoopTaskExecutor?
}

/// A wait on an event loop's own timer (``Sleep/timer`` for a connection's tasks): scheduled and,
/// when the task is cancelled, unscheduled on the loop — no other thread takes part.
struct LoopTimer: TaskTimer {
    let loop: any EventLoop

    func sleep(for duration: Duration) async throws { try await Self.sleep(for: duration, on: loop) }

    static func sleep(for duration: Duration, on loop: any EventLoop) async throws {
        let wait = Wait()
        try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                let scheduled = loop.scheduleTask(in: TimeAmount(duration)) { wait.end(nil) }
                wait.begin(continuation, scheduled)
            }
        } onCancel: {
            wait.end(CancellationError())
        }
    }

    /// The timer and the cancellation may each come before the continuation is in place.
    private final class Wait: Sendable {
        private enum State {
            case idle
            case waiting(UnsafeContinuation<Void, any Error>, Scheduled<Void>)
            /// Ended before the continuation was in place: fired (nil) or cancelled.
            case early((any Error)?)
            case ended
        }

        private let state = Mutex(State.idle)

        func begin(_ continuation: UnsafeContinuation<Void, any Error>, _ scheduled: Scheduled<Void>) {
            let early = state.withLock { state -> (any Error)?? in
                guard case .early(let error) = state else {
                    state = .waiting(continuation, scheduled)
                    return .none
                }
                state = .ended
                return .some(error)
            }
            guard case .some(let error) = early else { return }
            Self.resume(continuation, scheduled, error)
        }

        /// The timer fired (`error` nil) or the task was cancelled.
        func end(_ error: (any Error)?) {
            let waiting = state.withLock { state -> (UnsafeContinuation<Void, any Error>, Scheduled<Void>)? in
                switch state {
                case .waiting(let continuation, let scheduled):
                    state = .ended
                    return (continuation, scheduled)
                case .idle:
                    state = .early(error)
                    return nil
                case .early, .ended:
                    return nil
                }
            }
            guard let (continuation, scheduled) = waiting else { return }
            Self.resume(continuation, scheduled, error)
        }

        /// Ends the wait: returns when the timer fired (`error` nil), else unschedules it and throws.
        private static func resume(
            _ continuation: UnsafeContinuation<Void, any Error>, _ scheduled: Scheduled<Void>, _ error: (any Error)?
        ) {
            if let error {
                scheduled.cancel()
                continuation.resume(throwing: error)
            } else {
                continuation.resume()
            }
        }
    }
}
