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

/// One channel connection. Frames are buffered without bound: the channel reads them as they come
/// (a Telegram chat cannot lag the way a slow socket can).
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

    func send(_ frame: ClientFrame) async {
        let replies: [ServerFrame]
        if case .hello(let hello) = frame {
            replies = await hub.hello(hello, connection: id)
        } else {
            replies = await hub.handle(frame, connection: id)
        }
        for reply in replies { continuation.yield(reply) }
    }

    func close() async {
        await hub.detach(id)
        continuation.finish()
    }
}
