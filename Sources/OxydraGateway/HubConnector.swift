import OxydraCore

/// In-process connections to the hub for chat channels: the same frames and rules as a WebSocket
/// client (hello first, one turn per session, approvals, fan-out), without a socket.
public struct HubConnector: ChannelConnector {
    let hub: SessionHub

    public init(hub: SessionHub) { self.hub = hub }

    public func connect(client: String) async -> any ChannelConnection {
        let (frames, continuation) = AsyncStream.makeStream(of: ServerFrame.self)
        let id = ConnectionID.next()
        await hub.attach(id) { frame in
            if case .terminated = continuation.yield(frame) { return false }
            return true
        }
        return HubConnection(hub: hub, id: id, frames: frames, continuation: continuation)
    }
}

/// One channel connection. Published frames are buffered without bound: the channel reads them as
/// they come (a Telegram chat cannot lag the way a slow socket can).
final class HubConnection: ChannelConnection {
    let hub: SessionHub
    let id: ConnectionID
    let frames: AsyncStream<ServerFrame>
    let continuation: AsyncStream<ServerFrame>.Continuation

    init(
        hub: SessionHub, id: ConnectionID, frames: AsyncStream<ServerFrame>,
        continuation: AsyncStream<ServerFrame>.Continuation
    ) {
        self.hub = hub
        self.id = id
        self.frames = frames
        self.continuation = continuation
    }

    func send(_ frame: ClientFrame) async -> [ServerFrame] {
        if case .hello(let hello) = frame { return await hub.hello(hello, connection: id) }
        return await hub.handle(frame, connection: id)
    }

    func resumeTurn(requestID: String, turnID: TurnID) async -> ServerFrame? {
        await hub.submit(
            ClientFrame.SendTurn(requestID: requestID, turnID: turnID, prompt: ""), connection: id, resuming: true)
    }

    func close() async {
        await hub.detach(id)
        continuation.finish()
    }
}
