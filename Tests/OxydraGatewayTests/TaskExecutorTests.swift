import NIOCore
import NIOPosix
import Testing

@testable import OxydraGateway

/// The executors that keep a connection's work on event loop threads.
@Suite("Task executors")
struct TaskExecutorTests {
    /// Woken by a loop, a task goes on on that loop; woken from elsewhere, on one of the group's.
    @Test func currentLoopExecutorContinuesOnTheWakingLoop() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loops = Array(group.makeIterator())
        let executor = CurrentLoopTaskExecutor(group)
        await withTaskExecutorPreference(executor) {
            for loop in loops + loops.reversed() {
                await withCheckedContinuation { continuation in loop.execute { continuation.resume() } }
                #expect(loop.inEventLoop)
                #expect(loops.filter(\.inEventLoop).count == 1)
            }
            await withCheckedContinuation { continuation in Task.detached { continuation.resume() } }
            #expect(loops.contains { $0.inEventLoop })
        }
        // Without the preference the same wake-up leaves the task on Swift's global pool.
        await withCheckedContinuation { continuation in loops[0].execute { continuation.resume() } }
        #expect(!loops.contains { $0.inEventLoop })
        try await group.shutdownGracefully()
    }
}
