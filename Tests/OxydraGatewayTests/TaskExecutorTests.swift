import NIOCore
import NIOPosix
import OxydraCore
import Synchronization
import Testing

@testable import OxydraGateway

/// The executors that keep a connection's work on event loop threads.
@Suite("Task executors")
struct TaskExecutorTests {
    /// A job made runnable on a loop runs on that loop; one made runnable elsewhere, on one of the
    /// group's. Each job here is a new task started on the thread in question: a continuation
    /// resumed before its task has suspended would let the task go on where it was, so it cannot
    /// show which executor a wake-up picks.
    @Test func currentLoopExecutorRunsAJobOnTheLoopThatMadeItRunnable() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loops = Array(group.makeIterator())
        let executor = CurrentLoopTaskExecutor(group)
        @Sendable func onLoops() -> [Bool] { loops.map(\.inEventLoop) }
        for (index, loop) in (loops + loops.reversed()).enumerated() {
            let ranOn = await withCheckedContinuation { continuation in
                loop.execute { Task(executorPreference: executor) { continuation.resume(returning: onLoops()) } }
            }
            #expect(ranOn == loops.map { $0 === loop }, "job \(index)")
        }
        let fromElsewhere = await withCheckedContinuation { continuation in
            Task.detached { Task(executorPreference: executor) { continuation.resume(returning: onLoops()) } }
        }
        #expect(fromElsewhere.filter { $0 }.count == 1)
        // Without the preference a task started on a loop runs on Swift's global pool.
        let withoutPreference = await withCheckedContinuation { continuation in
            loops[0].execute { Task { continuation.resume(returning: onLoops()) } }
        }
        #expect(withoutPreference == [false, false])
        try await group.shutdownGracefully()
    }
    /// The loop's timer waits as long as asked, ends at once when its task is cancelled (before or
    /// while it waits), and is what `Sleep.for` uses in a task (and its children) that set it.
    @Test func loopTimersWaitAndStopWhenCancelled() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let clock = ContinuousClock()
        var started = clock.now
        try await LoopTimer.sleep(for: .milliseconds(60), on: loop)
        let waited = clock.now - started
        #expect(waited >= .milliseconds(60) && waited < .seconds(2))

        started = clock.now
        let long = Task { try await LoopTimer.sleep(for: .seconds(30), on: loop) }
        try await Task.sleep(for: .milliseconds(20))
        long.cancel()
        await #expect(throws: CancellationError.self) { try await long.value }
        #expect(clock.now - started < .seconds(5))

        let cancelledFirst = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await LoopTimer.sleep(for: .seconds(30), on: loop)
        }
        await #expect(throws: CancellationError.self) { try await cancelledFirst.value }

        final class Recording: TaskTimer {
            let asked = Mutex<[Duration]>([])
            let loop: any EventLoop
            init(loop: any EventLoop) { self.loop = loop }
            func sleep(for duration: Duration) async throws {
                asked.withLock { $0.append(duration) }
                try await LoopTimer(loop: loop).sleep(for: duration)
            }
        }
        let timer = Recording(loop: loop)
        try await Sleep.$timer.withValue(timer) {
            try await Sleep.for(.milliseconds(1))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await Sleep.for(.milliseconds(2)) }
                try await group.waitForAll()
            }
        }
        try await Sleep.for(.milliseconds(3))
        #expect(timer.asked.withLock { $0 } == [.milliseconds(1), .milliseconds(2)])
    }
}
