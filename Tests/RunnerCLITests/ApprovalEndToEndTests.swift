import Foundation
import OxydraClient
import OxydraCore
import OxydraRunner
import OxydraTesting
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Frames of one gateway connection, collected as they arrive.
final class FrameLog: Sendable {
    let client: GatewayClient
    private let frames = Mutex<[ServerFrame]>([])

    init(_ client: GatewayClient) {
        self.client = client
        Task { [self] in
            for await frame in client.frames { frames.withLock { $0.append(frame) } }
        }
    }

    /// The first frame so far (or within `timeout`) that `predicate` accepts.
    func first(within timeout: Duration = .seconds(15), _ predicate: (ServerFrame) -> Bool) async throws -> ServerFrame
    {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let found = frames.withLock({ $0.first(where: predicate) }) { return found }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw TestSupportError(
            "no matching frame; got: \(frames.withLock { $0.map(\.type) }) \(client.failure.map { "\($0)" } ?? "")")
    }
}

/// The scripted model server and a project whose guest runs (process tier).
struct RunningGuest {
    let server: ScriptedModelServer
    let project: Project

    static func start() async throws -> RunningGuest {
        let server = try await ScriptedModelServer.start()
        let project = try Project(agent: scriptedAgent(server))
        let guest = RunningGuest(server: server, project: project)
        try await launch(project) { await guest.stop() }
        return guest
    }

    /// `runner --insecure` for `project`; on failure `cleanUp` runs and the guest's error is thrown.
    static func launch(_ project: Project, cleanUp: () async -> Void) async throws {
        let started = try await project.run(["--insecure"])
        guard started.exitCode == 0 else {
            await cleanUp()
            throw TestSupportError("the guest did not start: \(started.standardError)")
        }
    }

    func stop() async {
        project.shutdownGuest()
        project.directory.remove()
        try? await server.shutdown()
    }
}

/// A real guest killed with SIGKILL while a call waits for approval: after its supervisor restarts
/// it, the same request is offered to a new client and, once allowed, the turn resumes and the
/// file is written — nothing lost, nothing run unasked.
@Suite("Approvals across a hard kill", .serialized)
struct ApprovalEndToEndTests {
    @Test func aWaitingCallSurvivesKillNineAndTheTurnResumes() async throws {
        let guest = try await RunningGuest.start()
        defer { Teardown.run { await guest.stop() } }
        let (server, project) = (guest.server, guest.project)
        let pid = try await project.guestPID()
        server.enqueue([
            .toolCalls([
                ScriptedToolCall(
                    id: "call-w", name: "file_write", arguments: #"{"path":"/shared/kept.txt","content":"kept"}"#)
            ]),
            .text("written after the restart"),
        ])
        let gateway = try GatewayAccess.discover(ipcDirectory: project.workspace + "/ipc")
        let first = FrameLog(GatewayClient(endpoint: gateway.endpoint, token: gateway.token))
        first.client.send(.hello(.init(requestID: "h", userID: "alice", client: "tui")))
        guard case .helloAck(_, _, let ref, _) = try await first.first({ $0.type == "hello_ack" }) else {
            throw TestSupportError("no hello_ack")
        }
        first.client.send(
            .sendTurn(.init(requestID: "t", sessionID: ref.sessionID, turnID: "turn-1", prompt: "keep it")))
        guard case .approvalRequest(_, let request) = try await first.first({ $0.type == "approval_request" }) else {
            throw TestSupportError("no approval_request")
        }
        #expect(request.tool == "file_write")
        kill(pid, SIGKILL)
        for _ in 0..<200 where kill(pid, 0) == 0 { usleep(10_000) }
        first.client.close()
        #expect(access(project.workspace + "/shared/kept.txt", F_OK) != 0)

        _ = try await project.waitForRestart(replacing: pid)
        let renewed = try GatewayAccess.discover(ipcDirectory: project.workspace + "/ipc")
        let second = FrameLog(GatewayClient(endpoint: renewed.endpoint, token: renewed.token))
        second.client.send(.hello(.init(requestID: "h2", userID: "alice", client: "web")))
        guard case .helloAck(_, _, _, let active) = try await second.first({ $0.type == "hello_ack" }) else {
            throw TestSupportError("no hello_ack after the restart")
        }
        #expect(active?.turnID == "turn-1")
        guard case .approvalRequest(_, let offered) = try await second.first({ $0.type == "approval_request" }) else {
            throw TestSupportError("the request was not offered again")
        }
        #expect(offered.approvalID == request.approvalID && offered.callID == "call-w")
        second.client.send(.approve(requestID: "a", approvalID: offered.approvalID, decision: .allow, scope: .once))
        guard case .turnCompleted(let header, let completion) = try await second.first({ $0.type == "turn_completed" })
        else { throw TestSupportError("no turn_completed") }
        #expect(header.turn.turnID == "turn-1" && completion.message == "written after the restart")
        #expect(try String(contentsOfFile: project.workspace + "/shared/kept.txt", encoding: .utf8) == "kept")
        second.client.close()

        // The model saw the call's real result, right after the call.
        let body = String(decoding: server.requests.last!.body, as: UTF8.self)
        #expect(body.contains("wrote 4 bytes to /shared/kept.txt"), "\(body)")
        let audit = try await project.run(["audit", "show", "--json"])
        #expect(audit.standardOutput.contains("allowed_once") && audit.standardOutput.contains("web#"))
        let grants = try await project.run(["approvals", "list"])
        #expect(grants.exitCode == 0 && grants.standardOutput == "no standing approvals\n", "\(grants.standardError)")
    }

    /// `runner ask` on a terminal asks on it: answering `a` allows the kind for the session, which
    /// `runner approvals list` then shows and `revoke` removes.
    @Test func askPromptsOnATerminalAndTheGrantIsListedAndRevoked() async throws {
        let guest = try await RunningGuest.start()
        defer { Teardown.run { await guest.stop() } }
        let (server, project) = (guest.server, guest.project)
        server.enqueue([
            .toolCalls([
                ScriptedToolCall(id: "w1", name: "file_write", arguments: #"{"path":"/shared/t.txt","content":"yes"}"#)
            ]),
            .text("written"),
        ])
        // A pseudo-terminal that answers `a` when asked.
        let driver = #"""
            import os, pty, select, sys, time
            pid, fd = pty.fork()
            if pid == 0:
                os.execv(sys.argv[1], sys.argv[1:])
            out, answered, deadline = b"", False, time.time() + 60
            while time.time() < deadline:
                ready, _, _ = select.select([fd], [], [], 0.1)
                if fd in ready:
                    try:
                        data = os.read(fd, 4096)
                    except OSError:
                        break
                    if not data:
                        break
                    out += data
                    if not answered and b"Allow?" in out:
                        os.write(fd, b"a\n")
                        answered = True
            _, status = os.waitpid(pid, 0)
            sys.stdout.write(out.decode("utf-8", "replace"))
            sys.exit(os.waitstatus_to_exitcode(status))
            """#
        let asked = try await ChildProcess.runTool(
            "/usr/bin/python3", ["-c", driver, ChildProcess.path(of: "runner"), "ask", "write it"],
            environment: project.environment, workingDirectory: project.root)
        #expect(asked.exitCode == 0, "\(asked.standardOutput)\(asked.standardError)")
        #expect(asked.standardOutput.contains("⚠ approval needed: file_write("), "\(asked.standardOutput)")
        #expect(asked.standardOutput.contains("[a] file changes in /shared for this session"))
        #expect(asked.standardOutput.contains("approved (session) by ask#"))
        #expect(try String(contentsOfFile: project.workspace + "/shared/t.txt", encoding: .utf8) == "yes")

        let listed = try await project.run(["approvals", "list", "--json"])
        #expect(listed.exitCode == 0, "\(listed.standardError)")
        let grants = try JSONValue(parsing: listed.standardOutput).arrayValue ?? []
        #expect(grants.count == 1 && grants.first?["label"] == "file changes in /shared")
        let id = try #require(grants.first?["grant_id"]?.stringValue)
        let revoked = try await project.run(["approvals", "revoke", id])
        #expect(revoked.exitCode == 0 && revoked.standardOutput == "revoked=\(id)\n", "\(revoked.standardError)")
        let unknown = try await project.run(["approvals", "revoke", id])
        #expect(unknown.exitCode == 1 && unknown.standardError.contains("no grant"), "\(unknown.standardError)")
        #expect(try await project.run(["approvals", "list"]).standardOutput == "no standing approvals\n")
    }
}
