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

    /// Serves the connection; called in a task that prefers `executor`, the loop the socket
    /// belongs to (see ``EventLoopTaskExecutor``), so its reads, its turns and its writes
    /// stay on one thread.
    func serve(_ socket: GatewaySocket, on executor: EventLoopTaskExecutor) async {
        await EventLoopTaskExecutor.$current.withValue(executor) {
            // Tool time limits and heartbeats wait on this loop's timer, not through dispatch.
            await Sleep.$timer.withValue(LoopTimer(loop: executor.eventLoop)) { await serveOnLoop(socket) }
        }
    }

    private func serveOnLoop(_ socket: GatewaySocket) async {
        let id = ConnectionID.next()
        let queue = OutboundQueue(limit: bufferFrames)
        let send: @Sendable (ServerFrame) -> Bool = { queue.push($0) }
        await hub.attach(id, sink: send)

        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    while let batch = await queue.take() {
                        try await socket.write(batch)
                    }
                    if queue.isLagging {
                        let notice = ServerFrame.error(
                            GatewayErrorInfo(
                                code: .lagging,
                                message:
                                    "this client reads too slowly and missed frames; reconnect to resume the session"))
                        try await socket.write([notice])
                        socket.close(.policyViolation, reason: "client too slow")
                    }
                } catch {
                    logger.debug("websocket write ended", metadata: ["error": "\(error)"])
                }
            }
            await read(socket, connection: id, send: send)
            queue.close()
            await group.waitForAll()
        }
        await hub.detach(id)
    }

    private func read(_ socket: GatewaySocket, connection: ConnectionID, send: @Sendable (ServerFrame) -> Bool) async {
        var negotiated = false
        while let text = await socket.next() {
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
    }
}
