import NIOCore

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
