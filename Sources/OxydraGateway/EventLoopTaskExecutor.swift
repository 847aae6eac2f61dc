import NIOCore
import NIOPosix
import ServiceLifecycle

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

/// Runs each job on the event loop whose thread made it runnable — a task woken by its socket goes
/// on on that socket's loop, where its next read or write is due — or, when woken from elsewhere
/// (a timer, the SQLite writer), on the group's next loop. As the preference of a whole server, it
/// keeps the server's per-connection work (accept, HTTP parsing, the WebSocket upgrade) off Swift's
/// global pool, which would otherwise take two thread hand-offs per socket event.
final class CurrentLoopTaskExecutor: TaskExecutor {
    private let group: any EventLoopGroup
    private let loops: [any EventLoop]

    init(_ group: any EventLoopGroup) {
        self.group = group
        loops = Array(group.makeIterator())
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let current = MultiThreadedEventLoopGroup.currentEventLoop
        let loop = current.flatMap { current in loops.first { $0 === current } } ?? group.next()
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// A service (the gateway's Hummingbird application) whose tasks prefer the loops of `group`
/// (``CurrentLoopTaskExecutor``); child tasks inherit the preference.
struct LoopAffineService<Base: Service>: Service {
    let base: Base
    let executor: CurrentLoopTaskExecutor

    init(_ base: Base, group: any EventLoopGroup = NIOSingletons.posixEventLoopGroup) {
        self.base = base
        executor = CurrentLoopTaskExecutor(group)
    }

    func run() async throws {
        try await withTaskExecutorPreference(executor) { try await base.run() }
    }
}
