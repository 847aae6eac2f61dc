import NIOCore
import NIOWebSocket
import OxydraCore
import Synchronization

/// One upgraded WebSocket connection of the gateway as its ``GatewayConnection`` sees it: whole
/// messages in, batches of frames out, a close. The protocol itself (RFC 6455: fragments, control
/// frames, masking, UTF-8, the close handshake, keep-alive pings) is ``GatewaySocketHandler``'s, in
/// the channel's pipeline; this side only hands messages and writes across. Both sides run on the
/// channel's event loop (the connection's tasks prefer it), so nothing here hops threads.
final class GatewaySocket: Sendable {
    let channel: any NIOCore.Channel
    /// Messages held before the socket stops reading (the client then waits in TCP).
    static let heldMessages = 8

    private struct Inbound {
        var messages: [String] = []
        var next = 0
        var bytes = 0
        var waiter: UnsafeContinuation<String?, Never>?
        var finished = false
        /// The pipeline asked to read while the messages were full: read once they are taken.
        var readHeld = false
    }

    private let inbound = Mutex(Inbound())
    /// The writer waiting for the socket to become writable again.
    private let writability = Mutex<UnsafeContinuation<Void, any Error>?>(nil)
    private let handler: NIOLoopBound<GatewaySocketHandler>

    init(channel: any NIOCore.Channel, handler: GatewaySocketHandler) {
        self.channel = channel
        self.handler = NIOLoopBound(handler, eventLoop: channel.eventLoop)
    }

    // MARK: The connection's side

    /// The next whole message from the client; nil once the connection has ended (closed by either
    /// side, or a protocol error the handler answered with a close).
    func next() async -> String? {
        if let message = takeMessage() { return message }
        return await withUnsafeContinuation { (continuation: UnsafeContinuation<String?, Never>) in
            let ready = inbound.withLock { state -> String?? in
                if let message = Self.take(&state) { return .some(message) }
                if state.finished { return .some(nil) }
                state.waiter = continuation
                return .none
            }
            if case .some(let message) = ready {
                continuation.resume(returning: message)
                releaseHeldRead()
            }
        }
    }

    private func takeMessage() -> String? {
        let message = inbound.withLock { Self.take(&$0) }
        if message != nil { releaseHeldRead() }
        return message
    }

    private static func take(_ state: inout Inbound) -> String? {
        guard state.next < state.messages.count else { return nil }
        let message = state.messages[state.next]
        state.next += 1
        state.bytes -= message.utf8.count
        if state.next == state.messages.count {
            state.messages.removeAll(keepingCapacity: true)
            state.next = 0
        }
        return message
    }

    /// Once a message was taken, a read the pipeline held back goes out.
    private func releaseHeldRead() {
        let release = inbound.withLock { state -> Bool in
            guard state.readHeld, !Self.isFull(state) else { return false }
            state.readHeld = false
            return true
        }
        guard release else { return }
        onLoop { _ in self.channel.read() }
    }

    /// Writes `frames` as text frames, flushed together; returns once the socket can take more
    /// (its buffer below NIO's high-water mark), so a client that reads slowly holds the writer
    /// here while the connection's outbound queue merges what comes meanwhile.
    func write(_ frames: [ServerFrame]) async throws {
        guard channel.eventLoop.inEventLoop else {
            // Not expected (the writer prefers this loop), but correct from anywhere.
            try await channel.eventLoop.submit { try self.handler.value.write(frames) }.get()
            return try await waitUntilWritable()
        }
        try handler.value.write(frames)
        try await waitUntilWritable()
    }

    private func waitUntilWritable() async throws {
        guard !channel.isWritable else { return }
        try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
            writability.withLock { $0 = continuation }
            // Writability may have come back (or the channel closed) before the waiter was in place.
            if channel.eventLoop.inEventLoop {
                checkWritability()
            } else {
                channel.eventLoop.execute { self.checkWritability() }
            }
        }
    }

    /// Resumes a waiting writer when the socket can take more, or has closed.
    func checkWritability() {
        if !channel.isActive {
            resumeWriter(ChannelError.ioOnClosedChannel)
        } else if channel.isWritable {
            resumeWriter(nil)
        }
    }

    /// Starts the close handshake with `code` (the client's close, or a timeout, ends it).
    func close(_ code: WebSocketErrorCode, reason: String) {
        onLoop { $0.sendClose(code, reason: reason) }
    }

    private func onLoop(_ body: @escaping @Sendable (GatewaySocketHandler) -> Void) {
        if channel.eventLoop.inEventLoop {
            body(handler.value)
        } else {
            channel.eventLoop.execute { body(self.handler.value) }
        }
    }

    // MARK: The handler's side (on the loop)

    private static func isFull(_ state: Inbound) -> Bool {
        state.messages.count - state.next >= heldMessages || state.bytes >= GatewayProtocol.maxClientFrameBytes
    }

    /// A whole message arrived.
    func deliver(_ message: String) {
        let waiter = inbound.withLock { state -> UnsafeContinuation<String?, Never>? in
            guard !state.finished else { return nil }
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.messages.append(message)
            state.bytes += message.utf8.count
            return nil
        }
        waiter?.resume(returning: message)
    }

    /// Whether the pipeline may read now; when not, the read is remembered for later.
    func mayRead() -> Bool {
        inbound.withLock { state in
            guard Self.isFull(state) else { return true }
            state.readHeld = true
            return false
        }
    }

    /// No more messages: the connection closed or the handler is closing it.
    func finish() {
        let waiter = inbound.withLock { state -> UnsafeContinuation<String?, Never>? in
            state.finished = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: nil)
    }

    /// The socket became writable again, or closed (`error`).
    func resumeWriter(_ error: (any Error)?) {
        guard
            let waiter = writability.withLock({ state in
                defer { state = nil }
                return state
            })
        else { return }
        if let error { waiter.resume(throwing: error) } else { waiter.resume() }
    }
}

/// The WebSocket protocol of a gateway connection, after the upgrade: assembles messages from
/// frames (at most ``GatewayProtocol/maxClientFrameBytes``; text must be UTF-8), answers pings,
/// pings an idle client every 30 s and drops one that misses a pong, and runs the close handshake —
/// every violation closed with the code RFC 6455 names (1002, 1007, 1009). Frame parsing and its
/// errors (lengths, fragmented control frames) are NIO's decoder and protocol error handler.
final class GatewaySocketHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    static let pingPeriod = TimeAmount.seconds(30)
    static let closeTimeout = TimeAmount.seconds(15)

    private(set) var socket: GatewaySocket!
    private var context: ChannelHandlerContext?
    private let onOpen: (GatewaySocket) -> Void

    /// A fragmented message being assembled.
    private var partial: (opcode: WebSocketOpcode, data: ByteBuffer)?
    /// A close frame went out: what arrives now is only waited for the client's close.
    private var closeSent = false
    private var closeTimer: Scheduled<Void>?
    private var pingTask: RepeatedTask?
    private var awaitedPong: ByteBuffer?

    /// `onOpen` gets the socket once the handler is in the pipeline (the connection starts there).
    init(onOpen: @escaping (GatewaySocket) -> Void) {
        self.onOpen = onOpen
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let socket = GatewaySocket(channel: context.channel, handler: self)
        self.socket = socket
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        pingTask = context.eventLoop.scheduleRepeatedTask(
            initialDelay: Self.pingPeriod, delay: Self.pingPeriod
        ) { _ in loopBound.value.ping() }
        onOpen(socket)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stop()
        self.context = nil
        // The socket holds this handler: let go of it, or neither would ever be freed.
        socket = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        stop()
        context.fireChannelInactive()
    }

    private func stop() {
        pingTask?.cancel()
        pingTask = nil
        closeTimer?.cancel()
        closeTimer = nil
        socket?.finish()
        socket?.resumeWriter(ChannelError.ioOnClosedChannel)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        socket?.checkWritability()
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if closeSent || socket?.mayRead() != false { context.read() }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        // RFC 6455 5.1: every frame from a client is masked.
        guard frame.maskKey != nil else { return fail(.protocolError, "unmasked frame") }
        switch frame.opcode {
        case .connectionClose:
            receivedClose(frame)
        case .ping:
            guard !closeSent else { return }
            let pong = WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .pong:
            if let awaited = awaitedPong, frame.unmaskedData == awaited { awaitedPong = nil }
        case .text, .binary, .continuation:
            guard !closeSent else { return }
            guard frame.reservedBits.isEmpty else { return fail(.protocolError, "reserved bits set") }
            receivedData(frame)
        default:
            fail(.protocolError, "reserved opcode \(frame.opcode)")
        }
    }

    private func receivedData(_ frame: WebSocketFrame) {
        var data = frame.unmaskedData
        if frame.opcode == .continuation {
            guard var message = partial else { return fail(.protocolError, "continuation without a message") }
            guard message.data.readableBytes + data.readableBytes <= GatewayProtocol.maxClientFrameBytes else {
                return fail(.messageTooLarge, "message over \(GatewayProtocol.maxClientFrameBytes) bytes")
            }
            partial = nil  // so that the buffer is uniquely held while it grows
            message.data.writeBuffer(&data)
            guard frame.fin else {
                partial = message
                return
            }
            deliver(message.opcode, message.data)
        } else {
            guard partial == nil else { return fail(.protocolError, "a new message inside a fragmented one") }
            guard frame.fin else {
                partial = (frame.opcode, data)
                return
            }
            deliver(frame.opcode, data)
        }
    }

    private func deliver(_ opcode: WebSocketOpcode, _ data: ByteBuffer) {
        if opcode == .text {
            guard let text = String(validating: data.readableBytesView, as: UTF8.self) else {
                return fail(.dataInconsistentWithMessage, "text message is not UTF-8")
            }
            socket?.deliver(text)
        } else {
            socket?.deliver(String(decoding: data.readableBytesView, as: UTF8.self))
        }
    }

    private func receivedClose(_ frame: WebSocketFrame) {
        guard let context else { return }
        guard !closeSent else {
            // The client answered our close: the handshake is done.
            context.close(promise: nil)
            return
        }
        var data = frame.unmaskedData
        let code = data.readWebSocketErrorCode()
        var reply = WebSocketErrorCode.normalClosure
        if data.readableBytes > 0, String(validating: data.readableBytesView, as: UTF8.self) == nil {
            reply = .protocolError
        } else if frame.unmaskedData.readableBytes == 1 {
            reply = .protocolError
        } else if case .unknown(let number) = code, number < 3000 || number > 4999 {
            reply = .protocolError
        }
        sendClose(reply, reason: "", thenClose: true)
    }

    /// Writes `frames` (ServerFrame text) and flushes once.
    func write(_ frames: [ServerFrame]) throws {
        guard let context, context.channel.isActive, !closeSent else { throw ChannelError.ioOnClosedChannel }
        for frame in frames {
            let bytes = frame.bytes
            var buffer = context.channel.allocator.buffer(capacity: bytes.count)
            buffer.writeBytes(bytes)
            context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: buffer)), promise: nil)
        }
        context.flush()
    }

    /// Sends a close frame; the connection closes when the client answers (or after
    /// ``closeTimeout``, or at once with `thenClose`, answering the client's own close).
    func sendClose(_ code: WebSocketErrorCode, reason: String, thenClose: Bool = false) {
        guard let context, !closeSent else { return }
        closeSent = true
        partial = nil
        socket?.finish()
        var buffer = context.channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        buffer.write(webSocketErrorCode: code)
        buffer.writeString(reason)
        let written = context.writeAndFlush(
            wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: buffer)))
        let channel = context.channel
        if thenClose {
            written.whenComplete { _ in channel.close(promise: nil) }
        } else {
            closeTimer = context.eventLoop.scheduleTask(in: Self.closeTimeout) { channel.close(promise: nil) }
            // Reads go on regardless of the message queue: only the client's close is awaited.
            context.read()
        }
    }

    /// A protocol violation: close with `code` (the reason goes to the client).
    private func fail(_ code: WebSocketErrorCode, _ reason: String) {
        sendClose(code, reason: reason)
    }

    /// Every ``pingPeriod``: a client that has not answered the previous ping is dropped.
    private func ping() {
        guard let context, !closeSent else { return }
        if awaitedPong != nil {
            sendClose(.goingAway, reason: "ping timeout", thenClose: true)
            return
        }
        var payload = context.channel.allocator.buffer(capacity: 8)
        payload.writeInteger(UInt64.random(in: .min ... .max))
        awaitedPong = payload
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .ping, data: payload)), promise: nil)
    }
}
