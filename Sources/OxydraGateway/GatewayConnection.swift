import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket
import OxydraCore

/// One WebSocket client: reads frames in order, answers requests, and writes everything the hub
/// publishes for its session through one bounded, ordered outbound buffer.
struct GatewayConnection: Sendable {
    let hub: SessionHub
    let logger: Logger
    let bufferFrames: Int

    /// Serves the connection with its reads, writes and the turns it starts running on
    /// `eventLoop`, the loop its socket belongs to (see ``EventLoopTaskExecutor``).
    func serve(_ inbound: WebSocketInboundStream, _ outbound: WebSocketOutboundWriter, on eventLoop: any EventLoop)
        async
    {
        let executor = EventLoopTaskExecutor(eventLoop)
        await EventLoopTaskExecutor.$current.withValue(executor) {
            // Tool time limits and heartbeats wait on this loop's timer, not through dispatch.
            await Sleep.$timer.withValue(LoopTimer(loop: eventLoop)) {
                await withTaskExecutorPreference(executor) { await serveOnLoop(inbound, outbound) }
            }
        }
    }

    private func serveOnLoop(_ inbound: WebSocketInboundStream, _ outbound: WebSocketOutboundWriter) async {
        let id = ConnectionID.next()
        let queue = OutboundQueue(limit: bufferFrames)
        let send: @Sendable (ServerFrame) -> Bool = { queue.push($0) }
        await hub.attach(id, sink: send)

        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    while let batch = await queue.take() {
                        for frame in batch {
                            // Written as UTF-8 bytes: no String in between.
                            try await outbound.write(
                                .custom(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(bytes: frame.bytes))))
                        }
                    }
                    if queue.isLagging {
                        let notice = ServerFrame.error(
                            GatewayErrorInfo(
                                code: .lagging,
                                message:
                                    "this client reads too slowly and missed frames; reconnect to resume the session"))
                        try await outbound.write(.text(notice.text))
                        try await outbound.close(.policyViolation, reason: "client too slow")
                    }
                } catch {
                    logger.debug("websocket write ended", metadata: ["error": "\(error)"])
                }
            }
            await read(inbound, connection: id, send: send)
            queue.close()
            await group.waitForAll()
        }
        await hub.detach(id)
    }

    private func read(
        _ inbound: WebSocketInboundStream, connection: ConnectionID, send: @Sendable (ServerFrame) -> Bool
    ) async {
        var negotiated = false
        do {
            for try await message in inbound.messages(maxSize: GatewayProtocol.maxClientFrameBytes) {
                let text: String
                switch message {
                case .text(let string): text = string
                case .binary(let buffer): text = String(buffer: buffer)
                }
                let frame: ClientFrame
                do {
                    frame = try ClientFrame(parsing: text)
                } catch {
                    _ = send(
                        .error(
                            GatewayErrorInfo(
                                requestID: error.requestID, code: .badFrame,
                                message: "failed to decode client frame: \(error.message)")))
                    continue
                }
                if !negotiated {
                    guard case .hello(let hello) = frame else {
                        _ = send(
                            .error(
                                GatewayErrorInfo(
                                    requestID: frame.requestID, code: .protocolError,
                                    message: "expected hello as first frame, got \(frame.type)")))
                        continue
                    }
                    guard hello.protocolVersion == GatewayProtocol.version else {
                        _ = send(
                            .error(
                                GatewayErrorInfo(
                                    requestID: hello.requestID, code: .protocolError,
                                    message: "unsupported protocol version \(hello.protocolVersion); "
                                        + "expected \(GatewayProtocol.version)")))
                        continue
                    }
                    let replies = await hub.hello(hello, connection: connection)
                    negotiated = replies.first.map { if case .helloAck = $0 { true } else { false } } ?? false
                    for reply in replies { _ = send(reply) }
                    continue
                }
                for reply in await hub.handle(frame, connection: connection) { _ = send(reply) }
            }
        } catch {
            logger.debug("websocket read ended", metadata: ["error": "\(error)"])
        }
    }
}
