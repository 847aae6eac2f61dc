import NIOCore
import NIOPosix
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
}
