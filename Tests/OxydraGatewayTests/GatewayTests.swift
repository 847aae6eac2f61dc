import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import OxydraClient
import OxydraCore
import OxydraMemory
import OxydraTesting
import Synchronization
import Testing

@testable import OxydraGateway

@Suite("Gateway over real WebSockets", .serialized)
struct GatewayTests {
    @Test func aTurnStreamsDeltasProgressAndCompletion() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue(chunks(["Hel", "lo ", "there"]))
        let (client, session) = try await fixture.connected()
        #expect(session == "runtime-alice")
        client.send(turn("t1", "hi", request: "req-1"))
        let started = try await client.next(isType("turn_started"))
        #expect(started.requestID == "req-1")
        try await client.next(isType("turn_progress"))
        var text = ""
        while true {
            let frame = try await client.next { $0.type == "assistant_delta" || $0.type == "turn_completed" }
            if case .assistantDelta(let header, let delta) = frame {
                #expect(header.turn == TurnRef(turnID: "t1", state: .running))
                text += delta
                continue
            }
            guard case .turnCompleted(let header, let completion) = frame else { break }
            #expect(header.turn.state == .completed)
            #expect(completion.message == "Hello there")
            #expect(completion.usage?.promptTokens == 11)
            #expect(completion.providerCalls == 1)
            #expect((completion.contextWindow ?? 0) >= 100_000)
            #expect((completion.contextTokens ?? 0) >= 11)
            break
        }
        #expect(text == "Hello there")
        let stored = try await fixture.store.restore("runtime-alice")
        #expect(stored.map(\.message.content) == ["hi", "Hello there"])
    }

    /// Clients that expand a tool call get its arguments and its whole result.
    @Test func toolFramesCarryTheArgumentsAndTheOutput() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue([
            .toolCalls([ScriptedToolCall(id: "c1", name: "no_such_tool", arguments: #"{"path":"/shared/a"}"#)]),
            .text("done"),
        ])
        let (client, _) = try await fixture.connected()
        client.send(turn("t1", "use a tool"))
        guard case .toolCall(_, let call) = try await client.next(isType("tool_call")) else {
            Issue.record("no tool_call frame")
            return
        }
        #expect(call.callID == "c1" && call.arguments == #"{"path":"/shared/a"}"#)
        guard case .toolResult(_, let result) = try await client.next(isType("tool_result")) else {
            Issue.record("no tool_result frame")
            return
        }
        #expect(result.isError)
        #expect(result.output?.contains("no_such_tool") == true, "\(result)")
        try await client.next(isType("turn_completed"))
    }

    @Test func malformedAndOutOfOrderFramesGetErrorsAndTheConnectionStaysUsable() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Teardown.run { await fixture.stop() } }
        let client = fixture.connect()
        client.send(turn("t0", "too early"))
        let early = try await client.next(isType("error"))
        guard case .error(let info) = early else {
            Issue.record("expected `.error`")
            return
        }
        #expect(info.code == .protocolError)
        #expect(info.message == "expected hello as first frame, got send_turn")

        client.sendRaw("{not json")
        guard case .error(let syntax) = try await client.next(isType("error")) else {
            Issue.record("expected `.error`")
            return
        }
        #expect(syntax.code == .badFrame)
        #expect(syntax.message.hasPrefix("failed to decode client frame: frame is not valid JSON"))

        client.sendRaw(#"{"type":"sned_turn","payload":{"request_id":"x"}}"#)
        guard case .error(let unknown) = try await client.next(isType("error")) else {
            Issue.record("expected `.error`")
            return
        }
        #expect(unknown.message.contains("unknown frame type `sned_turn`; did you mean `send_turn`?"))
        #expect(unknown.requestID == "x")

        client.send(.hello(.init(requestID: "v2", protocolVersion: 2)))
        guard case .error(let version) = try await client.next(isType("error")) else {
            Issue.record("expected `.error`")
            return
        }
        #expect(version.message == "unsupported protocol version 2; expected 1")

        client.send(.hello(.init(requestID: "h1")))
        try await client.next(isType("hello_ack"))
        client.send(.hello(.init(requestID: "h2")))
        guard case .error(let again) = try await client.next(isType("error")) else {
            Issue.record("expected `.error`")
            return
        }
        #expect(again.message == "hello already negotiated for this websocket connection")

        client.sendRaw(#"{"type":"send_turn","payload":{"request_id":"r","turn_id":"t","prompt":42}}"#)
        guard case .error(let field) = try await client.next(isType("error")) else {
            Issue.record("expected `.error`")
            return
        }
        #expect(field.message.contains("send_turn.payload.prompt: expected a string, got integer"))
        #expect(field.requestID == "r")

        fixture.server.enqueue(chunks(["still works"]))
        client.send(turn("t1", "hello"))
        guard case .turnCompleted(_, let done) = try await client.next(isType("turn_completed")) else {
            Issue.record("expected `.turnCompleted`")
            return
        }
        #expect(done.message == "still works")
    }

    @Test func aSecondTurnInTheSameSessionIsRefusedAsBusy() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Teardown.run { await fixture.stop() } }
        var slow = chunks(["a", "b", "c", "d"])
        slow.chunkDelay = .milliseconds(150)
        fixture.server.enqueue(slow)
        let (client, _) = try await fixture.connected()
        client.send(turn("first", "one"))
        try await client.next(isType("turn_started"))
        client.send(turn("second", "two", request: "busy-req"))
        guard case .error(let busy) = try await client.next(isType("error")) else {
            Issue.record("expected `.error`")
            return
        }
        #expect(busy.code == .busy)
        #expect(busy.requestID == "busy-req")
        #expect(busy.turn?.turnID == "first")
        #expect(busy.message.contains("an active turn is already running"))
        guard case .turnCompleted(let header, _) = try await client.next(isType("turn_completed")) else {
            Issue.record("expected `.turnCompleted`")
            return
        }
        #expect(header.turn.turnID == "first")
        #expect(fixture.server.requests.count == 1)
    }

    @Test func turnsBeyondThePerUserLimitQueueInOrderAndTheQueueIsBounded() async throws {
        let fixture = try await GatewayFixture.start(limits: {
            $0.maxConcurrentTurnsPerUser = 1
            $0.maxQueuedTurnsPerUser = 1
        })
        defer { Teardown.run { await fixture.stop() } }
        var slow = chunks(["slow ", "answer"])
        slow.chunkDelay = .milliseconds(200)
        fixture.server.enqueue([slow, chunks(["second"])])
        let (a, _) = try await fixture.connected()
        let (b, _) = try await fixture.connected(newSession: true)
        let (c, _) = try await fixture.connected(newSession: true)
        a.send(turn("a1", "first"))
        try await a.next(isType("turn_started"))
        b.send(turn("b1", "second"))
        guard case .turnProgress(let header, let queued) = try await b.next(isType("turn_progress")) else {
            Issue.record("expected `.turnProgress`")
            return
        }
        #expect(queued.kind == "queued")
        #expect(header.turn.state == .queued)
        c.send(turn("c1", "third"))
        guard case .error(let full) = try await c.next(isType("error")) else {
            Issue.record("expected `.error`")
            return
        }
        #expect(full.code == .queueFull)
        #expect(full.message.hasPrefix("too many queued turns (queue limit: 1)"))

        try await a.next(isType("turn_completed"))
        try await b.next(isType("turn_started"))
        guard case .turnCompleted(_, let second) = try await b.next(isType("turn_completed")) else {
            Issue.record("expected `.turnCompleted`")
            return
        }
        #expect(second.message == "second")
        let order = fixture.server.requests.compactMap {
            $0.json?["messages"]?.arrayValue?.last?["content"]?.stringValue
        }
        #expect(order == ["first", "second"])
    }

    @Test func cancelStopsTheTurnAndKeepsItsPartialText() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Teardown.run { await fixture.stop() } }
        var slow = chunks(["partial ", "answer ", "that ", "never ", "ends"])
        slow.chunkDelay = .milliseconds(300)
        fixture.server.enqueue(slow)
        let (client, session) = try await fixture.connected()
        client.send(.cancelActiveTurn(requestID: "c0", sessionID: nil, turnID: nil))
        guard case .error(let none) = try await client.next(isType("error")) else {
            Issue.record("expected `.error`")
            return
        }
        #expect(none.code == .noActiveTurn)
        #expect(none.message == "no active turn to cancel")

        client.send(turn("t1", "go"))
        try await client.next(isType("assistant_delta"))
        client.send(.cancelActiveTurn(requestID: "c1", sessionID: session, turnID: "t1"))
        guard case .turnCancelled(let header) = try await client.next(isType("turn_cancelled")) else {
            Issue.record("expected `.turnCancelled`")
            return
        }
        #expect(header.turn.state == .cancelled)
        let stored = try await fixture.store.restore(session).map(\.message)
        #expect(stored.first?.content == "go")
        #expect(stored.last?.role == .assistant)
        #expect(stored.last?.content?.hasPrefix("partial") == true)

        // The session is usable again, with the cancelled exchange in its history.
        fixture.server.enqueue(chunks(["next"]))
        client.send(turn("t2", "again"))
        try await client.next(isType("turn_completed"))
        let sent = fixture.server.requests.last?.json?["messages"]?.arrayValue ?? []
        #expect(sent.compactMap { $0["content"]?.stringValue }.contains { $0.hasPrefix("partial") })
    }

    @Test func cancelAllStopsTurnsInEverySession() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Teardown.run { await fixture.stop() } }
        var slow = chunks(["x", "y", "z", "w"])
        slow.chunkDelay = .milliseconds(400)
        fixture.server.enqueue([slow, slow])
        let (a, _) = try await fixture.connected()
        let (b, _) = try await fixture.connected(newSession: true)
        a.send(turn("a1", "one"))
        b.send(turn("b1", "two"))
        try await a.next(isType("turn_started"))
        try await b.next(isType("turn_started"))
        a.send(.cancelAllActiveTurns(requestID: "all"))
        try await a.next(isType("turn_cancelled"))
        try await b.next(isType("turn_cancelled"))
        a.send(.cancelAllActiveTurns(requestID: "none"))
        guard case .error(let none) = try await a.next(isType("error")) else {
            Issue.record("expected `.error`")
            return
        }
        #expect(none.message == "no active turns to cancel")
    }

    @Test func aReconnectingClientGetsTheEndOfATurnItMissed() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Teardown.run { await fixture.stop() } }
        var slow = chunks(["finished ", "while ", "away"])
        slow.chunkDelay = .milliseconds(150)
        fixture.server.enqueue(slow)
        let (first, session) = try await fixture.connected(newSession: true)
        first.send(turn("t1", "long job"))
        try await first.next(isType("turn_started"))
        first.close()
        try await Task.sleep(for: .milliseconds(800))
        let (second, resumed) = try await fixture.connected(session: String(session.rawValue.prefix(8)))
        #expect(resumed == session)
        guard case .turnCompleted(let header, let completion) = try await second.next(isType("turn_completed")) else {
            return
        }
        #expect(header.turn.turnID == "t1")
        #expect(completion.message == "finished while away")
    }

    @Test func sessionsAreCreatedListedSwitchedAndRestoredWithHistoryAfterARestart() async throws {
        let fixture = try await GatewayFixture.start()
        fixture.server.enqueue(chunks(["noted"]))
        let (client, _) = try await fixture.connected()
        client.send(.createSession(requestID: "c", displayName: "work", agentName: nil))
        guard case .sessionCreated(_, let work, let name, let agent) = try await client.next(isType("session_created"))
        else {
            Issue.record("expected `.sessionCreated`")
            return
        }
        #expect(name == "work" && agent == "default")
        client.send(turn("t1", "my locker code is 4711"))
        try await client.next(isType("turn_completed"))

        client.send(.listSessions(requestID: "l", includeArchived: false))
        guard case .sessionList(_, let sessions, _, _) = try await client.next(isType("session_list")) else {
            Issue.record("expected `.sessionList`")
            return
        }
        #expect(Set(sessions.map(\.sessionID)) == [work.sessionID, "runtime-alice"])
        #expect(sessions.first?.sessionID == work.sessionID, "most recently active first")
        #expect(sessions.first { $0.sessionID == work.sessionID }?.displayName == "work")

        client.send(.switchSession(requestID: "s", session: "runtime"))
        guard case .sessionSwitched(_, let switched, _) = try await client.next(isType("session_switched")) else {
            return
        }
        #expect(switched.sessionID == "runtime-alice")
        client.send(.switchSession(requestID: "missing", session: "zzz"))
        guard case .error(let missing) = try await client.next(isType("error")) else {
            Issue.record("expected `.error`")
            return
        }
        #expect(missing.code == .notFound)
        #expect(missing.message == "session `zzz` not found for user `alice`")

        // A new guest on the same database: the session and its history come back.
        await fixture.stop(everything: false)
        let restarted = try await GatewayFixture.start(reusing: (fixture.server, fixture.directory))
        defer { Teardown.run { await restarted.stop() } }
        restarted.server.enqueue(chunks(["4711"]))
        let (again, resumed) = try await restarted.connected(session: work.sessionID.rawValue)
        #expect(resumed == work.sessionID)
        again.send(turn("t2", "what is my locker code?"))
        try await again.next(isType("turn_completed"))
        let sent = restarted.server.requests.last?.json?["messages"]?.arrayValue ?? []
        let contents = sent.compactMap { $0["content"]?.stringValue }
        #expect(contents.contains("my locker code is 4711"))
        #expect(contents.contains("noted"))
        #expect(contents.last == "what is my locker code?")

        // A client that lands on the session can show the conversation so far.
        again.send(.getHistory(requestID: "g", limit: 50))
        guard case .history(_, let ref, let entries, let truncated, _) = try await again.next(isType("history")) else {
            Issue.record("expected `.history`")
            return
        }
        #expect(ref.sessionID == work.sessionID)
        #expect(!truncated)
        #expect(entries.map(\.role) == ["user", "assistant", "user", "assistant"])
        #expect(entries.map(\.text) == ["my locker code is 4711", "noted", "what is my locker code?", "4711"])
        again.send(.getHistory(requestID: "g2", limit: 1))
        guard case .history(_, _, let last, let cut, let first) = try await again.next(isType("history")) else {
            Issue.record("expected `.history`")
            return
        }
        #expect(last.map(\.text) == ["4711"] && cut && first == 3)
        // Earlier pages, as a client scrolling up asks for them.
        again.send(.getHistory(requestID: "g3", limit: 2, before: 3))
        guard case .history(_, _, let page, let more, let pageStart) = try await again.next(isType("history")) else {
            Issue.record("expected `.history`")
            return
        }
        #expect(page.map(\.text) == ["noted", "what is my locker code?"] && more && pageStart == 1)
        again.send(.getHistory(requestID: "g4", limit: 50, before: 1))
        guard case .history(_, _, let oldest, let beyond, let start) = try await again.next(isType("history")) else {
            Issue.record("expected `.history`")
            return
        }
        #expect(oldest.map(\.text) == ["my locker code is 4711"] && !beyond && start == 0)
    }

    /// The limit is on sessions in memory: sessions nobody is on are unloaded to make room (any
    /// number can be created over time); only when every live one is in use is a new one refused.
    @Test func theSessionLimitCountsLiveSessionsInUse() async throws {
        let fixture = try await GatewayFixture.start(limits: { $0.maxSessionsPerUser = 2 })
        defer { Teardown.run { await fixture.stop() } }
        let (client, _) = try await fixture.connected()
        for index in 0..<5 {
            client.send(.createSession(requestID: "c\(index)", displayName: nil, agentName: nil))
            try await client.next(isType("session_created"))
        }
        #expect(try await fixture.store.listSessions(includeArchived: true).sessions.count == 6)
        // A second client on the default session: now both live sessions are in use.
        let (other, _) = try await fixture.connected()
        other.send(.createSession(requestID: "x", displayName: nil, agentName: nil))
        guard case .error(let limit) = try await other.next(isType("error")) else {
            Issue.record("expected `.error`")
            return
        }
        #expect(limit.code == .limitReached)
        #expect(limit.message.hasPrefix("maximum live sessions reached (limit: 2)"))
        // Leaving frees the room again.
        client.close()
        try await Task.sleep(for: .milliseconds(100))
        other.send(.createSession(requestID: "y", displayName: nil, agentName: nil))
        try await other.next(isType("session_created"))
    }

    /// Every connection needs the guest's token, on loopback as well (other OS users share it);
    /// off loopback the operator's token works too. A refused client gets no frame and changes nothing.
    @Test(arguments: ["127.0.0.1:0", "0.0.0.0:0"])
    func everyConnectionNeedsTheToken(bind: String) async throws {
        let remote = "0123456789abcdef-remote-secret"
        let fixture = try await GatewayFixture.start(bind: bind, remoteToken: remote)
        let sessionsBefore = try await fixture.store.listSessions(includeArchived: true).sessions.count
        let anonymous = fixture.connect(anonymous: true)
        anonymous.send(.hello(.init(requestID: "h", createNewSession: true)))
        await anonymous.client.waitUntilClosed()
        #expect(anonymous.frames.isEmpty)
        #expect(anonymous.client.failure?.message.contains("refused the WebSocket upgrade") == true)
        // The right token but for its last character.
        let wrong = fixture.connect(
            token: String(fixture.token.dropLast()) + (fixture.token.hasSuffix("0") ? "1" : "0"))
        wrong.send(.hello(.init(requestID: "h", createNewSession: true)))
        await wrong.client.waitUntilClosed()
        #expect(wrong.frames.isEmpty)
        // A refused upgrade is answered with its reason, as is a plain request.
        let port = fixture.port
        let refused = try LoopbackHTTP.raw(port: port, upgradeRequest(port: port))
        #expect(refused.hasPrefix("HTTP/1.1 401 Unauthorized\r\n"))
        #expect(refused.contains("missing or wrong bearer token") && refused.lowercased().contains("connection: close"))
        #expect(
            try rawRequest(port: port, upgradeRequest(port: port, authorization: "Basic \(fixture.token)"))
                == "HTTP/1.1 401 Unauthorized")
        let plain = try rawRequest(port: port, "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n\r\n")
        #expect(plain == "HTTP/1.1 401 Unauthorized")
        // With the token but no upgrade: 426; another path: 404.
        let noUpgrade = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nAuthorization: \(fixture.bearer)\r\n\r\n"
        #expect(try rawRequest(port: port, noUpgrade) == "HTTP/1.1 426 Upgrade Required")
        #expect(
            try rawRequest(port: port, "GET /w HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n\r\n") == "HTTP/1.1 404 Not Found"
        )
        #expect(try await fixture.store.listSessions(includeArchived: true).sessions.count == sessionsBefore)

        for token in [fixture.token, remote] {
            let right = fixture.connect(token: token)
            right.send(.hello(.init(requestID: "h")))
            try await right.next(isType("hello_ack"))
            right.client.close()
        }
        await fixture.stop()
    }

    @Test func twoHostHeadersAreRefused() async throws {
        let fixture = try await GatewayFixture.start()
        let port = fixture.port
        let doubled = try rawRequest(
            port: port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nHost: evil.example\r\n\r\n")
        #expect(doubled == "HTTP/1.1 400 Bad Request")
        let upgrade = upgradeRequest(port: port, authorization: fixture.bearer)
            .replacingOccurrences(of: "\r\n\r\n", with: "\r\nHost: 127.0.0.1:\(port)\r\n\r\n")
        let answer = try LoopbackHTTP.raw(port: port, upgrade)
        #expect(answer.hasPrefix("HTTP/1.1 400 Bad Request\r\n") && answer.contains("more than one Host header"))
        await fixture.stop()
    }

    @Test func browserOriginsAndRebindingHostsAreRefused() async throws {
        let fixture = try await GatewayFixture.start(origins: ["https://chat.example"])
        defer { Teardown.run { await fixture.stop() } }
        let port = fixture.port
        let auth = "Authorization: \(fixture.bearer)\r\n"
        let refused = "HTTP/1.1 403 Forbidden"
        let evil = try rawRequest(
            port: port, upgradeRequest(port: port, authorization: fixture.bearer, origin: "http://evil.example"))
        #expect(evil == refused)
        #expect(
            try rawRequest(port: port, upgradeRequest(port: port, authorization: fixture.bearer, origin: "null"))
                == refused)
        #expect(
            try rawRequest(
                port: port,
                upgradeRequest(
                    port: port, authorization: fixture.bearer, host: "evil.example:\(port)",
                    origin: "http://evil.example:\(port)"))
                == refused)
        let rebound = try rawRequest(port: port, "GET /healthz HTTP/1.1\r\nHost: evil.example:\(port)\r\n\r\n")
        #expect(rebound == "HTTP/1.1 403 Forbidden")
        let page = try rawRequest(
            port: port, "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nOrigin: http://evil.example\r\n\(auth)\r\n")
        #expect(page == "HTTP/1.1 403 Forbidden")
        #expect(
            try rawRequest(
                port: port,
                upgradeRequest(port: port, authorization: fixture.bearer, origin: "http://127.0.0.1:\(port)"))
                == "HTTP/1.1 101 Switching Protocols")
        #expect(
            try rawRequest(
                port: port, upgradeRequest(port: port, authorization: fixture.bearer, origin: "https://chat.example"))
                == "HTTP/1.1 101 Switching Protocols")
        #expect(
            try rawRequest(port: port, upgradeRequest(port: port, authorization: fixture.bearer))
                == "HTTP/1.1 101 Switching Protocols")
    }

    @Test func healthzAndHealthCheckReportTheGuest() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Teardown.run { await fixture.stop() } }
        let response = try await HTTPClient.shared.get(url: "http://127.0.0.1:\(fixture.port)/healthz").get()
        #expect(response.status == .ok)
        let body = try JSONValue(parsing: String(buffer: response.body!))
        #expect(body["status"] == "ok" && body["protocol_version"] == 1)
        // Open without a token, so it must not say whose guest this is.
        #expect(body["user_id"] == nil && !String(buffer: response.body!).contains("alice"))

        let (client, _) = try await fixture.connected()
        client.send(.healthCheck(requestID: "hc"))
        guard case .healthStatus(let info) = try await client.next(isType("health_status")) else {
            Issue.record("expected `.healthStatus`")
            return
        }
        #expect(info.healthy && info.requestID == "hc")
        #expect(info.startupStatus?.sandboxTier == .process)
        #expect(info.session?.sessionID == "runtime-alice")
    }

    @Test func aFailingProviderEndsTheTurnWithAnErrorAndTheSessionRecovers() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue([.status(500, message: "upstream exploded"), chunks(["recovered"])])
        let (client, _) = try await fixture.connected()
        client.send(turn("t1", "fail please"))
        guard case .error(let failed) = try await client.next(isType("error")) else {
            Issue.record("expected `.error`")
            return
        }
        #expect(failed.code == .turnFailed)
        #expect(failed.turn == TurnRef(turnID: "t1", state: .failed))
        #expect(failed.message.contains("500"))
        client.send(turn("t2", "again"))
        guard case .turnCompleted(_, let done) = try await client.next(isType("turn_completed")) else {
            Issue.record("expected `.turnCompleted`")
            return
        }
        #expect(done.message == "recovered")
    }
}

@Suite("Session fanout")
struct FanoutTests {
    /// A subscriber whose buffer overflows mid-turn is dropped from the session (its connection then
    /// closes as `lagging`); the turn and the other subscribers carry on.
    @Test func aLaggingSubscriberIsDroppedAndTheOthersKeepStreaming() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue(chunks(["one ", "two ", "three ", "four ", "five"]))

        final class Recorder: @unchecked Sendable {
            private let lock = Mutex<[ServerFrame]>([])
            let capacity: Int
            init(capacity: Int) { self.capacity = capacity }
            func sink(_ frame: ServerFrame) -> Bool {
                lock.withLock { frames in
                    guard frames.count < capacity else { return false }
                    frames.append(frame)
                    return true
                }
            }
            var frames: [ServerFrame] { lock.withLock { $0 } }
        }
        let slow = Recorder(capacity: 2)
        let fine = Recorder(capacity: 10_000)
        let slowID = ConnectionID.next()
        let fineID = ConnectionID.next()
        await fixture.hub.attach(slowID, sink: slow.sink)
        await fixture.hub.attach(fineID, sink: fine.sink)
        _ = await fixture.hub.hello(.init(requestID: "h1", userID: "alice"), connection: slowID)
        _ = await fixture.hub.hello(.init(requestID: "h2", userID: "alice"), connection: fineID)
        _ = await fixture.hub.handle(turn("t1", "count"), connection: fineID)
        for _ in 0..<500 where !fine.frames.contains(where: \.isTurnTerminal) {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(fine.frames.contains { if case .turnCompleted = $0 { true } else { false } })
        let streamed = fine.frames.compactMap { if case .assistantDelta(_, let text) = $0 { text } else { nil } }
        #expect(streamed.joined() == "one two three four five")
        #expect(slow.frames.count == 2, "the lagging subscriber got \(slow.frames.count) frames")
        #expect(await fixture.hub.currentSession(of: slowID) == nil)
        #expect(await fixture.hub.currentSession(of: fineID) != nil)
    }
}
