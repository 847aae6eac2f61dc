import OxydraCore
import OxydraGateway
import OxydraTesting
import Testing

/// Chat channels reach the hub in process with the gateway's own frames: a turn a channel starts is
/// streamed to a WebSocket client on the same session, and the other way round.
@Suite("Channels on the session hub", .serialized)
struct HubConnectorTests {
    @Test func aChannelTurnIsSeenByAWebSocketClientOnTheSameSession() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Teardown.run { await fixture.stop() } }
        let (socket, session) = try await fixture.connected()
        let channel = await HubConnector(hub: fixture.hub).connect(client: "telegram")
        var frames = channel.frames.makeAsyncIterator()
        let answers = await channel.send(.hello(.init(requestID: "h", sessionID: session.rawValue, client: "telegram")))
        guard case .helloAck(_, _, let ref, _)? = answers.first else {
            Issue.record("expected hello_ack")
            return
        }
        #expect(ref.sessionID == session)

        fixture.server.enqueue(.text("hi from the model"))
        #expect(
            await channel.send(.sendTurn(.init(requestID: "t", sessionID: session, turnID: "tg-1", prompt: "hello")))
                .isEmpty)
        var text = ""
        while let frame = await frames.next() {
            if case .assistantDelta(_, let delta) = frame { text += delta }
            if case .turnCompleted = frame { break }
        }
        #expect(text == "hi from the model")
        // The WebSocket client on the session saw the same turn.
        try await socket.next { if case .turnCompleted = $0 { true } else { false } }

        // A second turn while one runs is refused the same way for a channel.
        var slow = ScriptedReply()
        slow.text = ["a", "b"]
        slow.chunkDelay = .milliseconds(200)
        fixture.server.enqueue(slow)
        socket.send(.sendTurn(.init(requestID: "s", sessionID: session, turnID: "ws-1", prompt: "slow")))
        try await socket.next { if case .turnStarted = $0 { true } else { false } }
        let refusal = await channel.send(
            .sendTurn(.init(requestID: "t2", sessionID: session, turnID: "tg-2", prompt: "again")))
        guard case .error(let info)? = refusal.first else {
            Issue.record("expected a refusal, got \(refusal)")
            return
        }
        #expect(info.code == .busy && info.requestID == "t2")
        await channel.close()
    }
}
