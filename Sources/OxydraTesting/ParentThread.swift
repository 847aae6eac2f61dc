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

/// Asynchronous clean-up from a `defer`, awaited: blocks the calling thread until `work` has
/// finished (at most `timeout`), so a test never ends with its teardown still running — nor can
/// that teardown leak into the next test. The work runs on a thread of its own (a task executor
/// preference), so blocking the caller — a thread of Swift's small cooperative pool — cannot starve
/// it, however many tests run in parallel.
public enum Teardown {
    public static func run(timeout: Duration = .seconds(20), _ work: @escaping @Sendable () async -> Void) {
        let done = DispatchSemaphore(value: 0)
        let executor = ThreadExecutor()
        Task(executorPreference: executor) {
            await work()
            done.signal()
        }
        let nanoseconds = timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
        if done.wait(timeout: .now() + .nanoseconds(Int(nanoseconds))) == .timedOut {
            FileHandle.standardError.write(Data("teardown did not finish within \(timeout)\n".utf8))
        }
        executor.stop()
    }
}

/// A task executor with one thread of its own.
final class ThreadExecutor: TaskExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var stopped = false

    init() {
        let thread = Thread { [self] in loop() }
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        condition.lock()
        jobs.append(unowned)
        condition.signal()
        condition.unlock()
    }

    func stop() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopped { condition.wait() }
            if jobs.isEmpty && stopped {
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
