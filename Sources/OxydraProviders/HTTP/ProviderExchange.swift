import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import Synchronization

/// One request to a provider and its response, over AsyncHTTPClient's delegate API: the head and
/// then the body's parts, pulled by one reader (``ProviderResponse``).
///
/// Why not the async `HTTPClient.execute(_:timeout:)`: its idle read timeout cancels and schedules
/// a timer on every read of the socket (about 55 times for a 50-token answer — 9 % of the
/// instructions of a steady turn), and its body cannot be ended from outside the reading task.
/// Here the silence timer is scheduled once per `timeout` and looks at the time of the last byte
/// when it fires; it ends the exchange itself (a waiting reader gets the timeout at once) and
/// fails the request, which closes its connection.
///
/// A part is handed to a waiting reader directly, or kept until the reader asks. Past
/// `pauseAbove` kept bytes the connection stops reading until the reader is down to
/// `resumeBelow`; the server is not counted as silent meanwhile.
///
/// A reader that stops early (``abandon()``) — usually at the provider's end marker, often a few
/// bytes before the body's own end has been handed over — leaves the rest to be read and dropped,
/// so the connection goes back to the pool; past `drainLimit` more bytes, or at the next tick of
/// the silence timer, the request is cancelled instead.
final class ProviderExchange: HTTPClientResponseDelegate, Sendable {
    typealias Response = Void

    static let pauseAbove = 1 << 20
    static let resumeBelow = 256 << 10
    static let drainLimit = 64 << 10

    private struct State {
        var head: HTTPResponseHead?
        /// Room for the parts of a whole short answer that arrive before the reader runs (the
        /// default 16 was doubled once per exchange).
        var parts = CircularBuffer<ByteBuffer>(initialCapacity: 64)
        var kept = 0
        /// The whole body is in `parts` (or was read).
        var complete = false
        /// Why the exchange ended early; thrown once `parts` is empty.
        var failure: (any Error)?
        var headWaiter: UnsafeContinuation<HTTPResponseHead, any Error>?
        var partWaiter: UnsafeContinuation<ByteBuffer?, any Error>?
        /// Completed when the reader has caught up (the connection reads again).
        var paused: EventLoopPromise<Void>?
        var lastHeard: NIODeadline
        /// The reader let go before the end: bytes read and dropped since (see ``abandon()``).
        var drained: Int?
        var watchdog: Scheduled<Void>?
        var task: HTTPClient.Task<Void>?

        var finished: Bool { failure != nil || complete }
    }

    private let state: Mutex<State>
    private let timeout: TimeAmount
    private let loop: any EventLoop

    private init(timeout: TimeAmount, loop: any EventLoop) {
        self.timeout = timeout
        self.loop = loop
        state = Mutex(State(lastHeard: .now()))
    }

    /// Sends `request` on `client` (whose connections live on `loop`). `timeout` bounds the wait
    /// for the response head and every silence of the server after it.
    static func start(
        _ request: HTTPClient.Request, on client: HTTPClient, loop: any EventLoop, timeout: TimeAmount
    ) -> ProviderExchange {
        let exchange = ProviderExchange(timeout: timeout, loop: loop)
        let task = client.execute(request: request, delegate: exchange, eventLoop: .delegateAndChannel(on: loop))
        let running = exchange.state.withLock { state in
            if !state.finished { state.task = task }
            return !state.finished
        }
        // Failures before the delegate hears of the request (a refused connection, a bad URL)
        // reach only the task's future.
        task.futureResult.whenFailure { exchange.end(failure: $0) }
        if running { exchange.watch(at: .now() + timeout) }
        return exchange
    }

    // MARK: The reader's side

    /// The response head, once it is in.
    func head() async throws -> HTTPResponseHead {
        try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation {
                (continuation: UnsafeContinuation<HTTPResponseHead, any Error>) in
                let ready: Result<HTTPResponseHead, any Error>? = state.withLock { state in
                    if let head = state.head { return .success(head) }
                    if let failure = state.failure { return .failure(failure) }
                    state.headWaiter = continuation
                    return nil
                }
                if let ready { continuation.resume(with: ready) }
            }
        } onCancel: {
            end(failure: CancellationError(), cancelling: true)
        }
    }

    /// The next part of the body, or nil at its end. Parts that arrived before a failure come
    /// first, then the failure.
    func nextPart() async throws -> ByteBuffer? {
        if let ready = take() { return try ready.get() }
        return try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<ByteBuffer?, any Error>) in
                if let ready = take(orWait: continuation) { continuation.resume(with: ready) }
            }
        } onCancel: {
            end(failure: CancellationError(), cancelling: true)
        }
    }

    /// Lets go of the rest of the body: it is read and dropped (up to `drainLimit` bytes, until
    /// the silence timer next fires), then the connection goes back to the pool.
    func abandon() {
        let paused: EventLoopPromise<Void>? = state.withLock { state in
            guard !state.finished, state.drained == nil else { return nil }
            state.drained = 0
            state.parts.removeAll()
            state.kept = 0
            defer { state.paused = nil }
            return state.paused
        }
        paused?.succeed(())
    }

    /// A part that already arrived, taken without waiting; nil when none is kept (the end of the
    /// body and a failure are left for ``nextPart()``).
    func arrivedPart() -> ByteBuffer? {
        let (part, resume) = state.withLock { state in Self.popPart(&state) ?? (nil, nil) }
        resume?.succeed(())
        return part
    }

    /// The first kept part, and the paused connection to resume when the reader has caught up.
    private static func popPart(_ state: inout State) -> (ByteBuffer?, EventLoopPromise<Void>?)? {
        guard let part = state.parts.popFirst() else { return nil }
        state.kept -= part.readableBytes
        guard state.kept < resumeBelow, let paused = state.paused else { return (part, nil) }
        state.paused = nil
        state.lastHeard = .now()
        return (part, paused)
    }

    private func take(orWait waiter: UnsafeContinuation<ByteBuffer?, any Error>? = nil) -> Result<
        ByteBuffer?, any Error
    >? {
        let (ready, resume): (Result<ByteBuffer?, any Error>?, EventLoopPromise<Void>?) = state.withLock { state in
            if let (part, resume) = Self.popPart(&state) { return (.success(part), resume) }
            if let failure = state.failure { return (.failure(failure), nil) }
            if state.complete { return (.success(nil), nil) }
            if let waiter { state.partWaiter = waiter }
            return (nil, nil)
        }
        resume?.succeed(())
        return ready
    }

    // MARK: AsyncHTTPClient's side (on `loop`)

    func didReceiveHead(task: HTTPClient.Task<Void>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        let waiter = state.withLock { state in
            state.head = head
            state.lastHeard = .now()
            defer { state.headWaiter = nil }
            return state.headWaiter
        }
        waiter?.resume(returning: head)
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Void>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        let (waiter, paused, tooMuch): (UnsafeContinuation<ByteBuffer?, any Error>?, EventLoopFuture<Void>?, Bool) =
            state.withLock { state in
                guard !state.finished else { return (nil, nil, false) }
                if let drained = state.drained {
                    state.drained = drained + buffer.readableBytes
                    return (nil, nil, drained + buffer.readableBytes > Self.drainLimit)
                }
                state.lastHeard = .now()
                if let waiter = state.partWaiter {
                    state.partWaiter = nil
                    return (waiter, nil, false)
                }
                state.parts.append(buffer)
                state.kept += buffer.readableBytes
                guard state.kept > Self.pauseAbove, state.paused == nil else {
                    return (nil, state.paused?.futureResult, false)
                }
                let promise = task.eventLoop.makePromise(of: Void.self)
                state.paused = promise
                return (nil, promise.futureResult, false)
            }
        if tooMuch { end(failure: HTTPClientError.cancelled, cancelling: true) }
        waiter?.resume(returning: buffer)
        return paused ?? task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveError(task: HTTPClient.Task<Void>, _ error: any Error) {
        end(failure: error)
    }

    func didFinishRequest(task: HTTPClient.Task<Void>) throws {
        let ended:
            (
                head: UnsafeContinuation<HTTPResponseHead, any Error>?,
                part: UnsafeContinuation<ByteBuffer?, any Error>?, watchdog: Scheduled<Void>?
            )? = state.withLock { state in
                guard !state.finished else { return nil }
                state.complete = true
                state.task = nil
                defer {
                    state.headWaiter = nil
                    state.partWaiter = nil
                    state.watchdog = nil
                }
                return (state.headWaiter, state.partWaiter, state.watchdog)
            }
        guard let ended else { return }
        ended.watchdog?.cancel()
        ended.head?.resume(throwing: HTTPClientError.remoteConnectionClosed)
        ended.part?.resume(returning: nil)
    }

    // MARK: Ending

    /// Ends the exchange with `failure` unless it already ended; `cancelling`: the request is
    /// still running and must be stopped (a timeout, the reader's cancellation).
    private func end(failure: any Error, cancelling: Bool = false) {
        let ended:
            (
                head: UnsafeContinuation<HTTPResponseHead, any Error>?,
                part: UnsafeContinuation<ByteBuffer?, any Error>?,
                paused: EventLoopPromise<Void>?, watchdog: Scheduled<Void>?, task: HTTPClient.Task<Void>?
            )? = state.withLock { state in
                guard !state.finished else { return nil }
                state.failure = failure
                defer {
                    state.headWaiter = nil
                    state.partWaiter = nil
                    state.paused = nil
                    state.watchdog = nil
                    state.task = nil
                }
                return (state.headWaiter, state.partWaiter, state.paused, state.watchdog, state.task)
            }
        guard let ended else { return }
        ended.watchdog?.cancel()
        ended.head?.resume(throwing: failure)
        ended.part?.resume(throwing: failure)
        ended.paused?.fail(failure)
        if cancelling { ended.task?.fail(reason: failure) }
    }

    /// The silence timer: fires at `deadline`, ends the exchange if nothing was heard for
    /// `timeout` by then (and the reader is not the one holding the connection back), else sets
    /// itself for `timeout` after the last byte.
    private func watch(at deadline: NIODeadline) {
        let scheduled = loop.scheduleTask(deadline: deadline) { [self] in
            let now = NIODeadline.now()
            let next: NIODeadline?? = state.withLock { state in
                guard !state.finished else { return .some(nil) }
                if state.drained != nil { return nil }
                if state.paused != nil { state.lastHeard = now }
                let due = state.lastHeard + timeout
                return due <= now ? nil : .some(due)
            }
            switch next {
            case .none: end(failure: HTTPClientError.readTimeout, cancelling: true)
            case .some(.some(let due)): watch(at: due)
            case .some(.none): break
            }
        }
        let keep = state.withLock { state in
            guard !state.finished else { return false }
            state.watchdog = scheduled
            return true
        }
        if !keep { scheduled.cancel() }
    }
}

/// A provider's response as its reader holds it: the head, then the body part by part. Letting go
/// of it before the end abandons the rest (``ProviderExchange/abandon()``).
final class ProviderResponse: Sendable {
    let head: HTTPResponseHead
    private let exchange: ProviderExchange

    init(head: HTTPResponseHead, exchange: ProviderExchange) {
        self.head = head
        self.exchange = exchange
    }

    deinit { exchange.abandon() }

    var status: Int { Int(head.status.code) }
    var headers: HTTPHeaders { head.headers }

    /// The next part of the body, or nil at its end.
    func nextPart() async throws -> ByteBuffer? { try await exchange.nextPart() }

    /// A part that already arrived, without waiting; nil when there is none yet (or the body is over).
    func arrivedPart() -> ByteBuffer? { exchange.arrivedPart() }
}
