import NIOCore
import NIOPosix
import OxydraCore
import Synchronization
import Testing

@testable import OxydraGateway

/// The executors that keep a connection's work on event loop threads.
@Suite("Task executors")
struct TaskExecutorTests {
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
