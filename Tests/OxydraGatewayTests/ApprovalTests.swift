import OxydraAudit
import OxydraClient
import OxydraCore
import OxydraGateway
import OxydraMemory
import OxydraTesting
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Approvals end to end: a real gateway over loopback, a real SQLite store, the real file tools in
/// a temporary workspace, and the scripted model asking to write a file.
@Suite("Approvals")
struct ApprovalTests {
    static func writeCall(_ id: String, _ path: String = "/shared/out.txt") -> ScriptedReply {
        .toolCalls([ScriptedToolCall(id: id, name: "file_write", arguments: #"{"path":"\#(path)","content":"hi"}"#)])
    }

    static func request(_ client: TestClient) async throws -> (TurnHeader, ApprovalRequest) {
        guard case .approvalRequest(let header, let request) = try await client.next(isType("approval_request")) else {
            throw TestSupportError("no approval_request")
        }
        return (header, request)
    }

    static func resolution(_ client: TestClient) async throws -> ApprovalResolution {
        guard case .approvalResolved(_, let resolution) = try await client.next(isType("approval_resolved")) else {
            throw TestSupportError("no approval_resolved")
        }
        return resolution
    }

    static func errorFrame(_ client: TestClient) async throws -> GatewayErrorInfo {
        guard case .error(let info) = try await client.next(isType("error")) else {
            throw TestSupportError("no error frame")
        }
        return info
    }

    static func helloed(_ fixture: GatewayFixture, as client: String, session: String? = nil) async throws -> TestClient
    {
        let connection = fixture.connect()
        connection.send(.hello(.init(requestID: "h", userID: "alice", sessionID: session, client: client)))
        try await connection.next(isType("hello_ack"))
        return connection
    }

    func exists(_ fixture: GatewayFixture, _ name: String) -> Bool {
        access(fixture.directory.path + "/shared/" + name, F_OK) == 0
    }

    @Test func anAllowedWriteRunsAndTheAuditNamesWhoAllowedIt() async throws {
        let fixture = try await GatewayFixture.start(fileTools: true, audit: true)
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue([Self.writeCall("c1"), .text("done")])
        let client = try await Self.helloed(fixture, as: "tui")
        client.send(turn("t1", "write it"))
        let (header, request) = try await Self.request(client)
        #expect(header.turn.turnID == "t1")
        #expect(request.tool == "file_write" && request.risk == .medium && request.callID == "c1")
        #expect(request.reason == "writes /shared/out.txt" && request.details.contains(#""path":"/shared/out.txt""#))
        #expect(request.kindLabel == "file changes in /shared")
        guard case .turnProgress(_, let progress) = try await client.next(isType("turn_progress")) else {
            Issue.record("no waiting progress")
            return
        }
        #expect(progress.kind == "awaiting_approval")
        #expect(!exists(fixture, "out.txt"), "nothing runs before the answer")
        client.send(.approve(requestID: "a1", approvalID: request.approvalID, decision: .allow, scope: .once))
        let resolution = try await Self.resolution(client)
        #expect(resolution.decision == .allow && resolution.reason == .answered)
        #expect(resolution.answeredBy?.hasPrefix("tui#") == true)
        guard case .toolResult(_, let result) = try await client.next(isType("tool_result")) else {
            Issue.record("no tool_result")
            return
        }
        #expect(!result.isError)
        try await client.next(isType("turn_completed"))
        #expect(exists(fixture, "out.txt"))
        let records = AuditLog.records(directory: fixture.directory.path + "/logs")
        #expect(records.count == 1)
        #expect(records.first?.fields["decision"] == "allowed_once")
        #expect(records.first?.fields["approved_by"]?.stringValue == resolution.answeredBy)
        #expect(try await fixture.store.pendingApprovals().isEmpty)
    }

    @Test func aDeniedCallDoesNotRunAndTheModelIsTold() async throws {
        let fixture = try await GatewayFixture.start(fileTools: true, audit: true)
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue([Self.writeCall("c1"), .text("understood")])
        let client = try await Self.helloed(fixture, as: "tui")
        client.send(turn("t1", "write it"))
        let (_, request) = try await Self.request(client)
        client.send(.approve(requestID: "a1", approvalID: request.approvalID, decision: .deny, scope: .session))
        let resolution = try await Self.resolution(client)
        #expect(resolution.decision == .deny && resolution.scope == .once)
        guard case .toolResult(_, let result) = try await client.next(isType("tool_result")) else {
            Issue.record("no tool_result")
            return
        }
        #expect(result.isError && result.output?.contains("the user denied it") == true)
        try await client.next(isType("turn_completed"))
        #expect(!exists(fixture, "out.txt"))
        let second = try #require(fixture.server.requests.last).json
        let toolMessage = second?["messages"]?.arrayValue?.last
        #expect(toolMessage?["role"] == "tool")
        #expect(toolMessage?["content"]?.stringValue?.contains("denied") == true)
        #expect(AuditLog.records(directory: fixture.directory.path + "/logs").first?.fields["decision"] == "denied")
    }

    @Test func noAnswerInTimeIsADenial() async throws {
        var approvals = ApprovalConfig()
        approvals.timeoutSecs = 1
        let fixture = try await GatewayFixture.start(fileTools: true, approvals: approvals)
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue([Self.writeCall("c1"), .text("ok")])
        let client = try await Self.helloed(fixture, as: "tui")
        client.send(turn("t1", "write it"))
        let (_, request) = try await Self.request(client)
        let resolution = try await Self.resolution(client)
        #expect(resolution.reason == .timedOut && resolution.decision == .deny)
        guard case .toolResult(_, let result) = try await client.next(isType("tool_result")) else {
            Issue.record("no tool_result")
            return
        }
        #expect(result.output?.contains("within 1 s") == true, "\(result)")
        try await client.next(isType("turn_completed"))
        #expect(!exists(fixture, "out.txt"))
        // A late answer is told what happened.
        client.send(.approve(requestID: "late", approvalID: request.approvalID, decision: .allow, scope: .once))
        let info = try await Self.errorFrame(client)
        #expect(info.code == .notFound && info.message.contains("timed out"))
    }

    @Test func everyClientSeesTheRequestAndTheFirstAnswerWins() async throws {
        let fixture = try await GatewayFixture.start(fileTools: true)
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue([Self.writeCall("c1"), .text("done")])
        let first = try await Self.helloed(fixture, as: "tui")
        let second = try await Self.helloed(fixture, as: "web")
        first.send(turn("t1", "write it"))
        let (_, request) = try await Self.request(first)
        let (_, seen) = try await Self.request(second)
        #expect(seen.approvalID == request.approvalID)
        second.send(.approve(requestID: "b", approvalID: request.approvalID, decision: .allow, scope: .once))
        let fromFirst = try await Self.resolution(first)
        let fromSecond = try await Self.resolution(second)
        #expect(fromFirst == fromSecond && fromFirst.answeredBy?.hasPrefix("web#") == true)
        // The turn goes on at once: wait for its end first (reading frames for the late answer's
        // error could otherwise pass over it).
        try await first.next(isType("turn_completed"))
        #expect(exists(fixture, "out.txt"))
        first.send(.approve(requestID: "a", approvalID: request.approvalID, decision: .deny, scope: .once))
        let info = try await Self.errorFrame(first)
        #expect(info.requestID == "a" && info.message.contains("answered (allow, once) by web#"), "\(info.message)")
    }

    @Test func cancellingTheTurnDeniesAndKeepsTheHistoryValid() async throws {
        let fixture = try await GatewayFixture.start(fileTools: true)
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue([Self.writeCall("c1"), .text("after"), .text("next turn")])
        let client = try await Self.helloed(fixture, as: "tui")
        client.send(turn("t1", "write it"))
        let (_, _) = try await Self.request(client)
        client.send(.cancelActiveTurn(requestID: "x", sessionID: nil, turnID: "t1"))
        let resolution = try await Self.resolution(client)
        #expect(resolution.reason == .cancelled)
        try await client.next(isType("turn_cancelled"))
        #expect(!exists(fixture, "out.txt"))
        #expect(try await fixture.store.pendingApprovals().isEmpty)
        let stored = try await fixture.store.restore("runtime-alice").map(\.message)
        #expect(stored.last?.role == .tool && stored.last?.toolCallID == "c1")
        // The session goes on.
        fixture.server.enqueue(.text("next turn"))
        client.send(turn("t2", "hello again"))
        try await client.next(isType("turn_completed"))
    }

    @Test func aSessionGrantCoversTheKindUntilRevoked() async throws {
        let fixture = try await GatewayFixture.start(fileTools: true, audit: true)
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue([Self.writeCall("c1", "/shared/a.txt"), .text("one")])
        let client = try await Self.helloed(fixture, as: "tui")
        client.send(turn("t1", "write a"))
        let (_, request) = try await Self.request(client)
        client.send(.approve(requestID: "a1", approvalID: request.approvalID, decision: .allow, scope: .session))
        #expect(try await Self.resolution(client).scope == .session)
        try await client.next(isType("turn_completed"))

        // The same kind (a file in /shared) runs without asking in this session.
        fixture.server.enqueue([Self.writeCall("c2", "/shared/b.txt"), .text("two")])
        client.send(turn("t2", "write b"))
        try await client.next(isType("turn_completed"))
        #expect(exists(fixture, "b.txt"))
        #expect(!client.frames.contains { $0.type == "approval_request" && $0.turnID == "t2" })
        let decisions = AuditLog.records(directory: fixture.directory.path + "/logs").map { $0.fields["decision"] }
        #expect(decisions == ["allowed_session", "granted_session"])

        // Listed, revoked, and the next such call asks again.
        client.send(.listGrants(requestID: "g"))
        guard case .grantList(_, let grants) = try await client.next(isType("grant_list")) else {
            throw TestSupportError("no grant_list")
        }
        #expect(grants.count == 1 && grants.first?.scope == .session && grants.first?.kind.key == "file:/shared")
        client.send(.revokeGrant(requestID: "r", grantID: try #require(grants.first).grantID))
        try await client.next(isType("grant_revoked"))
        fixture.server.enqueue([Self.writeCall("c3", "/shared/c.txt"), .text("three")])
        client.send(turn("t3", "write c"))
        let (_, again) = try await Self.request(client)
        #expect(again.callID == "c3")
        client.send(.approve(requestID: "a3", approvalID: again.approvalID, decision: .deny, scope: .once))
        try await client.next(isType("turn_completed"))

        // Another session is not covered by a session grant (and `/tmp` never asks).
        let other = fixture.connect()
        other.send(.hello(.init(requestID: "h2", userID: "alice", createNewSession: true, client: "tui")))
        try await other.next(isType("hello_ack"))
        fixture.server.enqueue([Self.writeCall("c4", "/tmp/scratch.txt"), .text("scratch")])
        other.send(turn("t4", "scratch"))
        try await other.next(isType("turn_completed"))
        #expect(!other.frames.contains { $0.type == "approval_request" })
    }

    /// `always` covers the kind in every session of the user, until revoked; `turn` only until the
    /// turn ends.
    @Test func anAlwaysGrantCoversOtherSessionsAndATurnGrantEndsWithItsTurn() async throws {
        let fixture = try await GatewayFixture.start(fileTools: true, audit: true)
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue([
            Self.writeCall("c1", "/shared/notes/a.md"), Self.writeCall("c2", "/shared/notes/b.md"), .text("turn"),
        ])
        let client = try await Self.helloed(fixture, as: "tui")
        client.send(turn("t1", "two notes"))
        let (_, first) = try await Self.request(client)
        client.send(.approve(requestID: "a1", approvalID: first.approvalID, decision: .allow, scope: .turn))
        try await client.next(isType("turn_completed"))
        #expect(client.frames.filter { $0.type == "approval_request" }.count == 1, "the turn grant covered c2")

        fixture.server.enqueue([Self.writeCall("c3", "/shared/notes/c.md"), .text("next turn")])
        client.send(turn("t2", "a third"))
        let (_, third) = try await Self.request(client)
        client.send(.approve(requestID: "a3", approvalID: third.approvalID, decision: .allow, scope: .always))
        try await client.next(isType("turn_completed"))

        let other = fixture.connect()
        other.send(.hello(.init(requestID: "h2", userID: "alice", createNewSession: true, client: "tui")))
        try await other.next(isType("hello_ack"))
        fixture.server.enqueue([Self.writeCall("c4", "/shared/notes/deeper/d.md"), .text("other session")])
        other.send(turn("t3", "a fourth elsewhere"))
        try await other.next(isType("turn_completed"))
        #expect(!other.frames.contains { $0.type == "approval_request" })
        let decisions = AuditLog.records(directory: fixture.directory.path + "/logs").map {
            $0.fields["decision"]?.stringValue ?? "-"
        }
        #expect(decisions == ["allowed_turn", "granted_turn", "allowed_always", "granted_always"])
        other.send(.listGrants(requestID: "g"))
        guard case .grantList(_, let grants) = try await other.next(isType("grant_list")) else {
            throw TestSupportError("no grant_list")
        }
        #expect(grants.map(\.scope) == [.always] && grants.first?.session == nil)
    }

    /// `web_fetch` asks for a host new in the session; once allowed, the session's later fetches
    /// from that host do not ask, another host does.
    @Test func aHostFetchedBeforeInTheSessionDoesNotAskAgain() async throws {
        let probe = try await ScriptedModelServer.start()
        let host = "127.0.0.1:\(probe.port)"
        let fixture = try await GatewayFixture.start(fileTools: true, egress: [host])
        defer { Teardown.run { await fixture.stop() } }
        func fetch(_ id: String, _ url: String) -> ScriptedReply {
            .toolCalls([ScriptedToolCall(id: id, name: "web_fetch", arguments: #"{"url":"\#(url)"}"#)])
        }
        fixture.server.enqueue([fetch("f1", "http://\(host)/one"), .text("one")])
        let client = try await Self.helloed(fixture, as: "tui")
        client.send(turn("t1", "fetch one"))
        let (_, request) = try await Self.request(client)
        #expect(request.tool == "web_fetch" && request.reason == "fetches from 127.0.0.1, new in this session")
        client.send(.approve(requestID: "a", approvalID: request.approvalID, decision: .allow, scope: .once))
        try await client.next(isType("turn_completed"))

        fixture.server.enqueue([fetch("f2", "http://\(host)/two"), .text("two")])
        client.send(turn("t2", "fetch two"))
        try await client.next(isType("turn_completed"))
        #expect(!client.frames.contains { $0.type == "approval_request" && $0.turnID == "t2" })
        #expect(probe.requests.count == 2, "both fetches reached the host")

        fixture.server.enqueue([fetch("f3", "http://localhost:\(probe.port)/three"), .text("three")])
        client.send(turn("t3", "fetch three"))
        let (_, other) = try await Self.request(client)
        #expect(other.reason == "fetches from localhost, new in this session")
        client.send(.approve(requestID: "b", approvalID: other.approvalID, decision: .deny, scope: .once))
        try await client.next(isType("turn_completed"))
        try await probe.shutdown()
    }

    /// The guest stops while a call waits: the request and the open call stay stored; the next
    /// start offers the same request to every client and, when allowed, the turn resumes.
    @Test func aPendingApprovalSurvivesARestartAndTheTurnResumes() async throws {
        let first = try await GatewayFixture.start(fileTools: true)
        first.server.enqueue([Self.writeCall("c1"), .text("written after the restart")])
        let client = try await Self.helloed(first, as: "tui")
        client.send(turn("t1", "write it"))
        let (_, request) = try await Self.request(client)
        await first.stop(everything: false)
        #expect(!client.frames.contains { $0.type == "turn_cancelled" })
        #expect(try await first.store.pendingApprovals().map(\.request.approvalID) == [request.approvalID])
        let open = try await first.store.restore("runtime-alice").map(\.message)
        #expect(open.last?.toolCalls.map(\.id) == ["c1"], "the call stays open: \(open)")

        let second = try await GatewayFixture.start(reusing: (first.server, first.directory), fileTools: true)
        defer { Teardown.run { await second.stop() } }
        #expect(await second.hub.resumeSuspendedTurns() == 1)
        let again = try await Self.helloed(second, as: "web")
        let (header, offered) = try await Self.request(again)
        #expect(offered.approvalID == request.approvalID && offered.expiresAt == request.expiresAt)
        #expect(header.turn.turnID == "t1")
        // A turn waits in the session: a new one is refused as busy.
        again.send(turn("t2", "something else"))
        let busy = try await Self.errorFrame(again)
        #expect(busy.code == .busy)
        again.send(.approve(requestID: "a", approvalID: offered.approvalID, decision: .allow, scope: .once))
        try await Self.resolution(again)
        guard case .turnCompleted(let done, let completion) = try await again.next(isType("turn_completed")) else {
            throw TestSupportError("no turn_completed")
        }
        #expect(done.turn.turnID == "t1" && completion.message == "written after the restart")
        #expect(exists(second, "out.txt"))
        let history = try await second.store.restore("runtime-alice").map(\.message)
        #expect(history.map(\.role) == [.user, .assistant, .tool, .assistant])
        #expect(try await second.store.pendingApprovals().isEmpty)
    }

    /// A guest killed while a call waits leaves the same state as a graceful stop; a request that
    /// expired meanwhile is a denial at the next start.
    @Test func anExpiredRequestIsDeniedAtTheNextStart() async throws {
        var approvals = ApprovalConfig()
        approvals.timeoutSecs = 2
        let first = try await GatewayFixture.start(fileTools: true, approvals: approvals)
        first.server.enqueue([Self.writeCall("c1"), .text("told")])
        let client = try await Self.helloed(first, as: "tui")
        client.send(turn("t1", "write it"))
        _ = try await Self.request(client)
        await first.stop(everything: false)
        try await Task.sleep(for: .seconds(2.5))
        let second = try await GatewayFixture.start(
            reusing: (first.server, first.directory), fileTools: true, approvals: approvals)
        defer { Teardown.run { await second.stop() } }
        await second.hub.resumeSuspendedTurns()
        let again = try await Self.helloed(second, as: "tui")
        try await again.next(isType("turn_completed"))
        #expect(!exists(second, "out.txt"))
        let history = try await second.store.restore("runtime-alice").map(\.message)
        #expect(history[2].content?.contains("nobody approved it") == true)
    }
}
