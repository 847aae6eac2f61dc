import NIOCore
import NIOHTTP1
import Synchronization

/// One request to a provider and its response, as ``ProviderHTTPClient`` delivers it: the head
/// and then the body's parts, pulled by one reader (``ProviderResponse``).
///
/// The silence timer is scheduled once per `timeout` and looks at the time of the last byte when
/// it fires (not cancelled and scheduled again on every read of the socket); it ends the exchange
/// itself (a waiting reader gets the timeout at once) and closes the connection.
///
/// A part is handed to a waiting reader directly, or kept until the reader asks. Past
/// `pauseAbove` kept bytes the connection stops reading until the reader is down to
/// `resumeBelow`; the server is not counted as silent meanwhile.
///
/// A reader that stops early (``abandon()``) — usually at the provider's end marker, often a few
/// bytes before the body's own end has been handed over — leaves the rest to be read and dropped,
/// so the connection goes back to the pool; past `drainLimit` more bytes, or at the next tick of
/// the silence timer, the connection is closed instead.
final class ProviderExchange: Sendable {
    static let pauseAbove = 1 << 20
    static let resumeBelow = 256 << 10
    static let drainLimit = 64 << 10

    /// What the connection does after handing over a part.
    enum ReadAction { case read, pause, stop }

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
        /// The connection stopped reading until the reader catches up.
        var paused = false
        var lastHeard: NIODeadline
        /// The reader let go before the end: bytes read and dropped since (see ``abandon()``).
        var drained: Int?
        var watchdog: Scheduled<Void>?
        /// The connection carrying the request, once it has one.
        var connection: NIOLoopBound<ProviderConnection>?

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

    /// Sends `request` with `client`. `timeout` bounds the wait for the response head and every
    /// silence of the server after it.
    static func start(_ request: ProviderHTTPRequest, on client: ProviderHTTPClient, timeout: TimeAmount)
        -> ProviderExchange
    {
        let exchange = ProviderExchange(timeout: timeout, loop: client.loop)
        exchange.watch(at: .now() + timeout)
        client.execute(request, for: exchange)
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
            end(failure: CancellationError(), closing: true)
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
            end(failure: CancellationError(), closing: true)
        }
    }

    /// Lets go of the rest of the body: it is read and dropped (up to `drainLimit` bytes, until
    /// the silence timer next fires), then the connection goes back to the pool.
    func abandon() {
        let resume: NIOLoopBound<ProviderConnection>? = state.withLock { state in
            guard !state.finished, state.drained == nil else { return nil }
            state.drained = 0
            state.parts.removeAll()
            state.kept = 0
            guard state.paused else { return nil }
            state.paused = false
            return state.connection
        }
        if let resume { onLoop { resume.value.resume() } }
    }

    /// A part that already arrived, taken without waiting; nil when none is kept (the end of the
    /// body and a failure are left for ``nextPart()``).
    func arrivedPart() -> ByteBuffer? {
        let (part, resume) = state.withLock { state in Self.popPart(&state) ?? (nil, nil) }
        if let resume { onLoop { resume.value.resume() } }
        return part
    }

    /// The first kept part, and the paused connection to resume when the reader has caught up.
    private static func popPart(_ state: inout State) -> (ByteBuffer?, NIOLoopBound<ProviderConnection>?)? {
        guard let part = state.parts.popFirst() else { return nil }
        state.kept -= part.readableBytes
        guard state.paused, state.kept < resumeBelow else { return (part, nil) }
        state.paused = false
        state.lastHeard = .now()
        return (part, state.connection)
    }

    private func take(orWait waiter: UnsafeContinuation<ByteBuffer?, any Error>? = nil) -> Result<
        ByteBuffer?, any Error
    >? {
        let (ready, resume): (Result<ByteBuffer?, any Error>?, NIOLoopBound<ProviderConnection>?) = state.withLock {
            state in
            if let (part, resume) = Self.popPart(&state) { return (.success(part), resume) }
            if let failure = state.failure { return (.failure(failure), nil) }
            if state.complete { return (.success(nil), nil) }
            if let waiter { state.partWaiter = waiter }
            return (nil, nil)
        }
        if let resume { onLoop { resume.value.resume() } }
        return ready
    }

    // MARK: The connection's side (on `loop`)

    /// The connection about to send the request; false when the exchange already ended (the
    /// connection is not used for it).
    func attach(_ connection: NIOLoopBound<ProviderConnection>) -> Bool {
        state.withLock { state in
            guard !state.finished else { return false }
            state.connection = connection
            return true
        }
    }

    func received(head: HTTPResponseHead) {
        let waiter = state.withLock { state in
            state.head = head
            state.lastHeard = .now()
            defer { state.headWaiter = nil }
            return state.headWaiter
        }
        waiter?.resume(returning: head)
    }

    func received(part buffer: ByteBuffer) -> ReadAction {
        let (waiter, action): (UnsafeContinuation<ByteBuffer?, any Error>?, ReadAction) = state.withLock { state in
            guard !state.finished else { return (nil, .stop) }
            if let drained = state.drained {
                state.drained = drained + buffer.readableBytes
                return (nil, drained + buffer.readableBytes > Self.drainLimit ? .stop : .read)
            }
            state.lastHeard = .now()
            if let waiter = state.partWaiter {
                state.partWaiter = nil
                return (waiter, .read)
            }
            state.parts.append(buffer)
            state.kept += buffer.readableBytes
            guard state.kept > Self.pauseAbove else { return (nil, .read) }
            state.paused = true
            return (nil, .pause)
        }
        if action == .stop { end(failure: ProviderHTTPError.cancelled) }
        waiter?.resume(returning: buffer)
        return action
    }

    /// The response ended; whether it ended cleanly (the connection may carry another request).
    func finished() -> Bool {
        let ended:
            (
                head: UnsafeContinuation<HTTPResponseHead, any Error>?,
                part: UnsafeContinuation<ByteBuffer?, any Error>?, watchdog: Scheduled<Void>?
            )? = state.withLock { state in
                guard !state.finished else { return nil }
                state.complete = true
                state.connection = nil
                defer {
                    state.headWaiter = nil
                    state.partWaiter = nil
                    state.watchdog = nil
                }
                return (state.headWaiter, state.partWaiter, state.watchdog)
            }
        guard let ended else { return false }
        ended.watchdog?.cancel()
        ended.head?.resume(throwing: ProviderHTTPError.connectionClosed(duringBody: false))
        ended.part?.resume(returning: nil)
        return true
    }

    /// The exchange ended (the response is in, or it failed, timed out or was cancelled).
    var isOver: Bool { state.withLock { $0.finished } }

    /// The request failed (connecting, TLS, the connection lost, a malformed response).
    func failed(_ error: any Error) { end(failure: error) }

    // MARK: Ending

    /// Ends the exchange with `failure` unless it already ended; `closing`: the connection is
    /// still carrying it and must be closed (a timeout, the reader's cancellation).
    private func end(failure: any Error, closing: Bool = false) {
        let ended:
            (
                head: UnsafeContinuation<HTTPResponseHead, any Error>?,
                part: UnsafeContinuation<ByteBuffer?, any Error>?,
                watchdog: Scheduled<Void>?, connection: NIOLoopBound<ProviderConnection>?
            )? = state.withLock { state in
                guard !state.finished else { return nil }
                state.failure = failure
                defer {
                    state.headWaiter = nil
                    state.partWaiter = nil
                    state.paused = false
                    state.watchdog = nil
                    state.connection = nil
                }
                return (state.headWaiter, state.partWaiter, state.watchdog, state.connection)
            }
        guard let ended else { return }
        ended.watchdog?.cancel()
        ended.head?.resume(throwing: failure)
        ended.part?.resume(throwing: failure)
        if closing, let connection = ended.connection { onLoop { connection.value.close() } }
    }

    private func onLoop(_ body: @escaping @Sendable () -> Void) {
        if loop.inEventLoop { body() } else { loop.execute(body) }
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
                if state.paused { state.lastHeard = now }
                let due = state.lastHeard + timeout
                return due <= now ? nil : .some(due)
            }
            switch next {
            case .none: end(failure: ProviderHTTPError.readTimeout, closing: true)
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
