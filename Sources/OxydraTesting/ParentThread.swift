import Dispatch
import Foundation
import Synchronization

/// A thread that stays alive until released, for starting children with a parent-death signal:
/// the kernel sends `PR_SET_PDEATHSIG` when the *thread* that forked the child exits, and the
/// threads behind Swift concurrency and Dispatch come and go (a child started from one was
/// killed after about six seconds of an idle pool).
public final class ParentThread: Sendable {
    private let release = DispatchSemaphore(value: 0)

    public init() {}

    /// Runs `body` on a new thread that then waits until ``finish()``.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
        let started = DispatchSemaphore(value: 0)
        let result = Mutex<Result<T, any Error>?>(nil)
        let release = self.release
        let thread = Thread {
            result.withLock { $0 = Result(catching: body) }
            started.signal()
            release.wait()
        }
        thread.start()
        started.wait()
        return try result.withLock { $0! }.get()
    }

    /// Lets the thread end (its children get their death signal).
    public func finish() { release.signal() }
}
