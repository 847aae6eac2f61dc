import Foundation
import OxydraCore
import OxydraRunner
import OxydraTesting
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The agent config of a project whose provider is the scripted model server (loopback: no key).
func scriptedAgent(_ server: ScriptedModelServer) -> String {
    server.agentConfig(
        """
        [reliability]
        max_attempts = 1
        """)
}

extension Project {
    var workspace: String { root + "/.oxydra/workspaces/alice" }

    /// Stops a guest a test left running (synchronous, for `defer`).
    func shutdownGuest() {
        let socket = workspace + "/ipc/runner-control.sock"
        // Its supervisor first, so that nothing is started again.
        Supervisor.stop(ipc: workspace + "/ipc", wait: false)
        guard case .health(let health)? = try? ControlClient.request(.healthCheck, socket: socket, timeout: .seconds(2))
        else {
            Supervisor.stop(ipc: workspace + "/ipc", wait: true)
            return  // nothing running: nothing to stop
        }
        _ = try? ControlClient.request(.shutdownUser, socket: socket)
        for _ in 0..<200 where kill(Int32(health.pid), 0) == 0 { usleep(25_000) }
        kill(Int32(health.pid), SIGKILL)
    }

    func guestPID() async throws -> Int32 {
        let status = try await run(["status"])
        guard let pid = Int32(value("runtime_pid", in: status.standardOutput) ?? "") else {
            throw TestSupportError("no running guest: \(status.standardOutput)\(status.standardError)")
        }
        return pid
    }

    /// Waits until a guest other than `pid` is healthy (restarted by its supervisor); its status.
    func waitForRestart(replacing pid: Int32) async throws -> String {
        var last = ""
        for _ in 0..<150 {
            let status = try await run(["status"])
            if status.exitCode == 0, let now = Int32(value("runtime_pid", in: status.standardOutput) ?? ""), now != pid
            {
                return status.standardOutput
            }
            last = status.standardOutput + status.standardError
            try await Task.sleep(for: .milliseconds(100))
        }
        let state = (try? String(contentsOfFile: workspace + "/ipc/supervisor.json", encoding: .utf8)) ?? "-"
        throw TestSupportError("the guest was not restarted after a crash: \(last)\nsupervisor: \(state)")
    }

    /// Runs `body` with a process-tier guest on a scripted model; `prepare` runs before the start.
    static func withGuest(
        prepare: (ScriptedModelServer) -> Void = { _ in }, _ body: (Project, ScriptedModelServer) async throws -> Void
    ) async throws {
        let server = try await ScriptedModelServer.start()
        prepare(server)
        let project = try Project(agent: scriptedAgent(server))
        defer {
            project.shutdownGuest()
            project.directory.remove()
        }
        let started = try await project.run(["--insecure"])
        #expect(started.exitCode == 0, "\(started.standardError)")
        try await body(project, server)
        try? await server.shutdown()
    }
}

func value(_ key: String, in output: String) -> String? {
    output.split(separator: "\n").first { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
}

@Suite("Runner and guest end to end", .serialized)
struct GuestEndToEndTests {
    @Test func startStatusStopRestart() async throws {
        let server = try await ScriptedModelServer.start()
        defer { Teardown.run { try? await server.shutdown() } }
        let project = try Project(agent: scriptedAgent(server))
        defer {
            project.shutdownGuest()
            project.directory.remove()
        }
        let start = try await project.run(["--config", ".oxydra/runner.toml", "--user", "alice", "--insecure"])
        #expect(start.exitCode == 0, "\(start.standardError)")
        let out = start.standardOutput
        #expect(value("user_id", in: out) == "alice")
        #expect(value("sandbox_tier", in: out) == "process")
        #expect(value("workspace_root", in: out) == project.workspace)
        #expect(value("shell_available", in: out) == "false")
        #expect(value("browser_available", in: out) == "false")
        #expect(value("gateway_endpoint", in: out)?.hasPrefix("ws://127.0.0.1:") == true)
        #expect(value("warning", in: out)?.hasPrefix("process tier") == true)
        #expect(!out.contains("process_hardening_limited"), "Landlock is available on this kernel")
        for directory in ["shared", "tmp", "vault", "ipc", "logs", ".oxydra"] {
            #expect(FileManager.default.fileExists(atPath: project.workspace + "/" + directory))
        }
        let marker = try String(contentsOfFile: project.workspace + "/ipc/gateway-endpoint", encoding: .utf8)
        #expect(marker.trimmed == value("gateway_endpoint", in: out))

        let status = try await project.run(["status"])
        #expect(status.exitCode == 0)
        #expect(value("running", in: status.standardOutput) == "true")
        #expect(value("runtime_pid", in: status.standardOutput) == value("runtime_pid", in: out))
        let json = try await project.run(["status", "--json"])
        #expect(try JSONValue(parsing: json.standardOutput)["healthy"] == true)

        let again = try await project.run(["start", "--insecure"])
        #expect(again.exitCode == 0)
        #expect(value("already_running", in: again.standardOutput) == "true")
        #expect(again.standardError.contains("user `alice` is already running"))

        let stop = try await project.run(["stop"])
        #expect(stop.exitCode == 0, "\(stop.standardError)")
        #expect(value("shutdown", in: stop.standardOutput) == "true")
        #expect(!FileManager.default.fileExists(atPath: project.workspace + "/ipc/gateway-endpoint"))
        let pid = Int32(value("runtime_pid", in: out) ?? "0") ?? 0
        #expect(kill(pid, 0) != 0, "the guest exited")

        let stopped = try await project.run(["status"])
        #expect(stopped.exitCode == 3)
        #expect(value("running", in: stopped.standardOutput) == "false")
        #expect(
            stopped.standardError.contains(
                "start it with `runner --config .oxydra/runner.toml --user alice --insecure`"))
        let stopAgain = try await project.run(["stop"])
        #expect(stopAgain.exitCode == 0)
        #expect(stopAgain.standardOutput == "user_id=alice\nalready_stopped=true\n")
        #expect(stopAgain.standardError.hasPrefix("note: no running guest found for user `alice`"))

        let restart = try await project.run(["restart", "--insecure"])
        #expect(restart.exitCode == 0, "\(restart.standardError)")
        #expect(value("runtime_pid", in: restart.standardOutput) != value("runtime_pid", in: out))

        // A restart with a broken configuration refuses before it stops anything.
        let agent = try String(contentsOfFile: project.root + "/.oxydra/agent.toml", encoding: .utf8)
        try project.directory.write(agent + "\n[runtime]\nmax_turn = 3\n", to: ".oxydra/agent.toml")
        let refused = try await project.run(["restart", "--insecure"])
        #expect(refused.exitCode == 1)
        #expect(refused.standardError.contains("unknown key runtime.max_turn"), "\(refused.standardError)")
        #expect(refused.standardError.contains("nothing was stopped; the running guest (if any) keeps running"))
        let still = try await project.run(["status"])
        #expect(still.exitCode == 0)
        #expect(value("runtime_pid", in: still.standardOutput) == value("runtime_pid", in: restart.standardOutput))
        try project.directory.write(agent, to: ".oxydra/agent.toml")

        let logs = try await project.run(["logs", "--tail", "50"])
        #expect(logs.exitCode == 0)
        #expect(logs.standardOutput.contains("gateway ready"))
    }

    /// `runner --config /path/to/.oxydra/runner.toml …` from anywhere uses that project's agent
    /// config, for the runner's checks and for the guest it starts; `SYSTEM.md` next to
    /// `agent.toml` reaches the prompt.
    @Test func theRunnerConfigsProjectIsTheAgentConfigsProject() async throws {
        let server = try await ScriptedModelServer.start()
        defer { Teardown.run { try? await server.shutdown() } }
        let project = try Project(agent: scriptedAgent(server))
        try project.directory.write("Answer like a pirate.\n", to: ".oxydra/SYSTEM.md")
        let elsewhere = try TemporaryDirectory(prefix: "oxydra-elsewhere")
        defer {
            project.shutdownGuest()
            project.directory.remove()
            elsewhere.remove()
        }
        func run(_ arguments: [String]) async throws -> ProcessResult {
            try await ChildProcess.run(
                "runner", ["--config", project.root + "/.oxydra/runner.toml"] + arguments,
                environment: project.environment, workingDirectory: elsewhere.path)
        }
        let shown = try await run(["config", "show", "--sources"])
        #expect(shown.exitCode == 0, "\(shown.standardError)")
        #expect(shown.standardOutput.contains("provider = \"local\""), "\(shown.standardOutput)")
        let started = try await run(["start", "--insecure"])
        #expect(started.exitCode == 0, "\(started.standardError)")
        server.enqueue(.text("arr"))
        let ask = try await run(["ask", "hello"])
        #expect(ask.exitCode == 0, "\(ask.standardError)")
        #expect(ask.standardOutput == "arr\n")
        let request = String(decoding: server.requests.last?.body ?? Data(), as: UTF8.self)
        #expect(request.contains("Answer like a pirate."))

        // `ask -`: the prompt from standard input, line breaks kept.
        server.enqueue(.text("read it"))
        let piped = try await ChildProcess.runTool(
            "/bin/sh",
            [
                "-c", "printf 'first line\\nsecond line\\n' | \"$0\" --config \"$1\" ask -",
                ChildProcess.path(of: "runner"), project.root + "/.oxydra/runner.toml",
            ], environment: project.environment, workingDirectory: elsewhere.path)
        #expect(piped.exitCode == 0, "\(piped.standardError)")
        #expect(piped.standardOutput == "read it\n")
        let pipedRequest = String(decoding: server.requests.last?.body ?? Data(), as: UTF8.self)
        #expect(pipedRequest.contains("first line\\nsecond line\""), "\(pipedRequest)")
        #expect(try await run(["stop"]).exitCode == 0)
    }

    @Test func sessionsCanBeListedShownExportedRenamedArchivedAndDeleted() async throws {
        try await Project.withGuest { project, server in
            server.enqueue(.text("Tomatoes by the door."))
            #expect(try await project.run(["ask", "Plan the spring garden"]).exitCode == 0)
            server.enqueue(.text("A scratch answer."))
            #expect(try await project.run(["ask", "--new-session", "throwaway question"]).exitCode == 0)

            let listed = try await project.run(["sessions", "list", "--json"])
            #expect(listed.exitCode == 0, "\(listed.standardError)")
            let listing = try JSONValue(parsing: listed.standardOutput)
            let sessions = try #require(listing["sessions"]?.arrayValue)
            #expect(listing["total"] == 2 && listing["next_cursor"] == nil)
            // One per page: a cursor to the next page, then the last page without one.
            let first = try await project.run(["sessions", "list", "--limit", "1"])
            let hint = try #require(first.standardOutput.split(separator: "\n").last.map(String.init))
            #expect(first.standardOutput.contains("(1 of 2 sessions; --all lists every one)\n"))
            #expect(hint.hasPrefix("next page: runner sessions list --cursor "), "\(hint)")
            let cursor = String(hint.split(separator: " ").last ?? "")
            let second = try await project.run(["sessions", "list", "--limit", "1", "--cursor", cursor, "--json"])
            let page = try JSONValue(parsing: second.standardOutput)
            #expect(page["sessions"]?.arrayValue?.count == 1 && page["next_cursor"] == nil, "\(second.standardOutput)")
            #expect(
                !first.standardOutput.contains(page["sessions"]?.arrayValue?.first?["session_id"]?.stringValue ?? "?"))
            let all = try await project.run(["sessions", "list", "--limit", "1", "--all", "--json"])
            #expect(try JSONValue(parsing: all.standardOutput)["sessions"]?.arrayValue?.count == 2)
            let bad = try await project.run(["sessions", "list", "--cursor", "garbage"])
            #expect(bad.exitCode == 1 && bad.standardError.contains("not a cursor"), "\(bad.standardError)")
            #expect(
                Set(sessions.compactMap { $0["display_name"]?.stringValue }) == [
                    "Plan the spring garden", "throwaway question",
                ])
            let scratch = try #require(
                sessions.first { $0["display_name"] == "throwaway question" }?["session_id"]?.stringValue)

            let renamed = try await project.run(["sessions", "rename", "runtime-alice", "Garden", "plan"])
            #expect(renamed.standardOutput.contains("title=Garden plan"), "\(renamed.standardError)")
            let shown = try await project.run(["sessions", "show", "runtime-alice"])
            #expect(shown.standardOutput.contains("user: Plan the spring garden"), "\(shown.standardOutput)")
            #expect(shown.standardOutput.contains("assistant: Tomatoes by the door."))
            let exported = try await project.run(["sessions", "export", "runtime-alice", "--format", "markdown"])
            #expect(exported.standardOutput.hasPrefix("# Garden plan\n"), "\(exported.standardOutput)")
            #expect(exported.standardOutput.contains("**You:**\n\nPlan the spring garden"))

            #expect(try await project.run(["sessions", "archive", String(scratch.prefix(8))]).exitCode == 0)
            let visible = try await project.run(["sessions", "list"])
            #expect(!visible.standardOutput.contains("throwaway question"))
            #expect(try await project.run(["sessions", "list", "--archived"]).standardOutput.contains("(archived)"))

            // --ephemeral: a new session, archived once answered.
            server.enqueue(.text("quick answer"))
            let quick = try await project.run(["ask", "--ephemeral", "quick scripted check"])
            #expect(quick.exitCode == 0, "\(quick.standardError)")
            #expect(quick.standardOutput == "quick answer\n")
            #expect(!(try await project.run(["sessions", "list"])).standardOutput.contains("quick scripted check"))
            #expect(
                try await project.run(["sessions", "list", "--archived"]).standardOutput.contains(
                    "quick scripted check  (archived)"))

            let unconfirmed = try await project.run(["sessions", "delete", scratch])
            #expect(unconfirmed.exitCode == 1)
            #expect(unconfirmed.standardError.contains("pass --yes"))
            let deleted = try await project.run(["sessions", "delete", scratch, "--yes"])
            #expect(deleted.standardOutput == "deleted=\(scratch)\n", "\(deleted.standardError)")
            let after = try await project.run(["sessions", "list", "--archived", "--json"])
            #expect(!after.standardOutput.contains(scratch))
            let missing = try await project.run(["sessions", "show", scratch])
            #expect(missing.exitCode == 1)
            #expect(missing.standardError.contains("not found"), "\(missing.standardError)")
        }
    }

    /// Every tool call lands in the hash-chained audit log; `runner audit verify` notices an edit.
    @Test func toolCallsAreAuditedAndAnEditIsNoticed() async throws {
        try await Project.withGuest { project, server in
            server.enqueue([
                .toolCalls([ScriptedToolCall(id: "c1", name: "file_list", arguments: #"{"path":"/shared"}"#)]),
                .text("listed"),
            ])
            #expect(try await project.run(["ask", "list my files"]).exitCode == 0)
            let verified = try await project.run(["audit", "verify"])
            #expect(verified.exitCode == 0, "\(verified.standardError)")
            #expect(verified.standardOutput.hasPrefix("ok: 1 record (1–1) in "), "\(verified.standardOutput)")
            let shown = try await project.run(["audit", "show", "--since", "1d", "--json"])
            let records = try #require(try JSONValue(parsing: shown.standardOutput).arrayValue)
            #expect(records.count == 1)
            #expect(records.first?["tool"] == "file_list" && records.first?["decision"] == "not_asked")
            #expect(records.first?["arguments"] == #"{"path":"/shared"}"#)
            #expect(records.first?["session"] == "runtime-alice" && records.first?["status"] == "ok")

            let path = project.workspace + "/logs/audit.jsonl"
            let text = try String(contentsOfFile: path, encoding: .utf8)
            try text.replacing("file_list", with: "file_read").write(toFile: path, atomically: true, encoding: .utf8)
            let broken = try await project.run(["audit", "verify"])
            #expect(broken.exitCode == 1)
            #expect(broken.standardError.contains("record 1 does not match its hash (it was changed)"))
        }
    }

    /// `runner usage`: every provider call, per day, model and session; unpriced local models count $0.
    @Test func usageReportsEveryCall() async throws {
        try await Project.withGuest { project, server in
            server.enqueue([.text("one"), .text("two")])
            #expect(try await project.run(["ask", "first"]).exitCode == 0)
            #expect(try await project.run(["ask", "--new-session", "second"]).exitCode == 0)
            let report = try await project.run(["usage", "--json"])
            #expect(report.exitCode == 0, "\(report.standardError)")
            let json = try JSONValue(parsing: report.standardOutput)
            #expect(json["total"]?["calls"] == 2 && json["total"]?["unpriced_calls"] == 2, "\(report.standardOutput)")
            #expect(json["total"]?["prompt_tokens"] == 22 && json["total"]?["completion_tokens"] == 14)
            #expect(json["sessions"]?.arrayValue?.count == 2)
            #expect(json["models"]?.arrayValue?.first?["key"] == "local/scripted-model")
            let text = try await project.run(["usage", "--since", "30d"])
            #expect(
                text.standardOutput.contains("2 calls, 22 prompt and 14 output tokens, $0.0000"),
                "\(text.standardOutput)")
            #expect(text.standardOutput.contains("2 calls to unpriced (local) models count $0"))
            #expect(text.standardOutput.contains("budget: today $0.0000 (no daily limit)"))
            let bad = try await project.run(["usage", "--since", "0d"])
            #expect(bad.exitCode != 0 && bad.standardError.contains("--since takes 1d…366d"))
        }
    }

    /// `runner ask --attach`: the file lands in the user's /shared/inbox and the prompt says where.
    @Test func askAttachesFiles() async throws {
        try await Project.withGuest { project, server in
            try "line one\n".write(toFile: project.root + "/notes.txt", atomically: true, encoding: .utf8)
            let missing = try await project.run(["ask", "--attach", "nope.txt", "summarize"])
            #expect(missing.exitCode == 1)
            #expect(missing.standardError.contains("cannot attach nope.txt: No such file or directory"))
            server.enqueue(.text("one line"))
            let asked = try await project.run(["ask", "summarize", "--attach", "notes.txt"])
            #expect(asked.exitCode == 0, "\(asked.standardError)")
            #expect(asked.standardOutput == "one line\n")
            #expect(
                try String(contentsOfFile: project.workspace + "/shared/inbox/notes.txt", encoding: .utf8)
                    == "line one\n")
            let body = String(decoding: server.requests.last?.body ?? Data(), as: UTF8.self)
            #expect(body.contains("[Attached file: /shared/inbox/notes.txt (text/plain, 9 bytes)]"), "\(body)")
        }
    }

    /// An unlisted model on a local server gets the server's context window, not the 128k default.
    @Test func theContextWindowOfALocalServerIsAsked() async throws {
        let props = ScriptedReply.raw(
            #"{"default_generation_settings":{"n_ctx":4096}}"#, contentType: "application/json")
        try await Project.withGuest(
            prepare: { $0.route("/props", props) },
            { project, _ in
                let logs = try await project.run(["logs", "--tail", "50"])
                #expect(logs.standardOutput.contains("context window discovered"), "\(logs.standardOutput)")
                #expect(logs.standardOutput.contains("tokens=4096"))
                #expect(logs.standardOutput.contains("source=llama.cpp /props"))
            })
    }

    @Test func askStreamsTheAnswerAndReportsFailures() async throws {
        try await Project.withGuest { project, server in
            server.enqueue(.text("Hello there, Alice"))
            let ask = try await project.run(["ask", "hi"])
            #expect(ask.exitCode == 0, "\(ask.standardError)")
            #expect(ask.standardOutput == "Hello there, Alice\n")
            #expect(ask.standardError.contains("session runtime-alice"))
            #expect(ask.standardError.contains("· [1/100] Calling provider"))
            #expect(ask.standardError.contains("11 tokens in · 7 out"))

            // On a terminal, control sequences in the answer are removed: no new window title, no
            // cleared screen, no clipboard write.
            let hostile = "safe\u{1B}]0;pwned title\u{07} text\u{1B}[2J\u{1B}]52;c;ZXZpbA==\u{1B}\\ end\u{9B}"
            server.enqueue(.text(hostile))
            let runner = ChildProcess.path(of: "runner")
            let onTerminal = try await ChildProcess.runTool(
                "/usr/bin/script", ["-q", "-e", "-c", "\(runner) ask 'title?' 2>/dev/null", "/dev/null"],
                environment: project.environment.merging(["TERM": "xterm"]) { $1 }, workingDirectory: project.root)
            #expect(onTerminal.exitCode == 0, "\(onTerminal.standardError)")
            #expect(
                onTerminal.standardOutput.contains("safe text end"), "\(onTerminal.standardOutput.debugDescription)")
            #expect(!onTerminal.standardOutput.contains("\u{1B}"), "\(onTerminal.standardOutput.debugDescription)")
            #expect(!onTerminal.standardOutput.contains("pwned"))
            // Piped, the bytes are the model's (the caller asked for them).
            server.enqueue(.text(hostile))
            let piped = try await project.run(["ask", "again"])
            #expect(piped.standardOutput == hostile + "\n")

            server.enqueue(.text("json mode"))
            let json = try await project.run(["ask", "again", "--json"])
            #expect(json.exitCode == 0)
            let types = try json.standardOutput.split(separator: "\n").map { try ServerFrame(parsing: String($0)).type }
            #expect(types.first == "hello_ack")
            #expect(types.last == "turn_completed")
            #expect(types.contains("assistant_delta"))
            // Every turn frame is this turn's: the previous ask's terminal frame, replayed to a joining
            // client, is not printed.
            let frames = try json.standardOutput.split(separator: "\n").map { try ServerFrame(parsing: String($0)) }
            #expect(Set(frames.compactMap(\.turnID)).count == 1, "\(json.standardOutput)")
            #expect(types.filter { $0 == "turn_completed" }.count == 1)

            server.enqueue(.status(500, message: "model melted"))
            let failed = try await project.run(["ask", "break"])
            #expect(failed.exitCode == 1)
            #expect(failed.standardError.contains("runner error:"))
            #expect(failed.standardError.contains("500"))
            #expect(failed.standardError.contains("[turn_failed]"))

            let stop = try await project.run(["stop"])
            #expect(stop.exitCode == 0)
            let offline = try await project.run(["ask", "anyone?"])
            #expect(offline.exitCode == 1)
            #expect(offline.standardError.contains("NoRunningGuest: no running guest for user `alice`"))
            #expect(offline.standardError.contains("marker: ./.oxydra/workspaces/alice/ipc/gateway-endpoint"))
            let tui = try await project.run(["--tui"])
            #expect(tui.exitCode == 1)
            #expect(tui.standardError.contains("NoRunningGuest"))
        }
    }

    @Test func ctrlCCancelsTheTurnOfAsk() async throws {
        try await Project.withGuest { project, server in
            var slow = ScriptedReply.text("this answer takes a very long time to arrive")
            slow.chunkDelay = .milliseconds(400)
            server.enqueue(slow)
            let (_, code) = try await ChildProcess.launch(
                "runner", ["ask", "slow please"], environment: project.environment, workingDirectory: project.root
            ) { process, lines in
                try await Task.sleep(for: .milliseconds(1200))
                process.send(SIGINT)
                var output = ""
                for try await line in lines { output += line }
                return output
            }
            #expect(code == 130)
            server.enqueue(.text("after cancel"))
            let next = try await project.run(["ask", "next"])
            #expect(next.exitCode == 0, "\(next.standardError)")
            let sent =
                server.requests.last?.json?["messages"]?.arrayValue?.compactMap { $0["content"]?.stringValue } ?? []
            #expect(sent.contains("slow please"))
            #expect(sent.contains { $0.hasPrefix("this") }, "the partial answer was committed: \(sent)")
        }
    }

    @Test func aKilledGuestRestartsWithItsSessionsAndHistory() async throws {
        try await Project.withGuest { project, server in
            server.enqueue(.text("noted"))
            let first = try await project.run(["ask", "--new-session", "my locker code is 4711"])
            #expect(first.exitCode == 0, "\(first.standardError)")
            let session = first.standardError.split(separator: "\n").first { $0.hasPrefix("session ") }.map {
                String($0.dropFirst(8))
            }
            let id = try #require(session)
            let status = try await project.run(["status"])
            let pid = try #require(Int32(value("runtime_pid", in: status.standardOutput) ?? ""))
            #expect(
                status.standardOutput.contains("restart_policy=on-failure\nrestarts=0\n"), "\(status.standardOutput)")
            kill(pid, SIGKILL)

            // Its supervisor starts it again (after 1 s) and says so in status and the logs.
            let back = try await project.waitForRestart(replacing: pid)
            #expect(back.contains("restarts=1\n"), "\(back)")
            #expect(back.contains(" signal 9 (SIGKILL) after "), "\(back)")
            let logs = try await project.run(["logs", "--role", "runtime", "--tail", "50"])
            #expect(
                logs.standardOutput.contains("warning oxydra.supervisor: the guest ended (signal 9 (SIGKILL)) after "),
                "\(logs.standardOutput)")

            server.enqueue(.text("4711"))
            let again = try await project.run(["ask", "--session", String(id.prefix(8)), "what is my locker code?"])
            #expect(again.exitCode == 0, "\(again.standardError)")
            let sent =
                server.requests.last?.json?["messages"]?.arrayValue?.compactMap { $0["content"]?.stringValue } ?? []
            #expect(sent.contains("my locker code is 4711"))
            #expect(sent.contains("noted"))
        }
    }

    /// Too many crashes in the window: left stopped, and status says why. `runner stop` between a
    /// crash and its restart cancels the restart. `restart = "no"` leaves a crashed guest stopped.
    @Test func aCrashLoopIsLeftStoppedAndStopCancelsARestart() async throws {
        try await Project.withGuest { project, _ in
            try project.directory.write(
                SeedConfig.runnerTOML + "\n[runner]\nmax_restarts = 1\nrestart_window_secs = 300\n",
                to: ".oxydra/runner.toml")
            #expect(try await project.run(["restart", "--insecure"]).exitCode == 0)
            var pid = try await project.guestPID()
            kill(pid, SIGKILL)
            _ = try await project.waitForRestart(replacing: pid)
            pid = try await project.guestPID()
            kill(pid, SIGKILL)
            var status = try await project.run(["status"])
            for _ in 0..<100 where !status.standardOutput.contains("crash_loop=true") {
                try await Task.sleep(for: .milliseconds(50))
                status = try await project.run(["status"])
            }
            #expect(status.exitCode == 3)
            #expect(status.standardOutput.contains("crash_loop=true\nrestarts=1\n"), "\(status.standardOutput)")
            #expect(status.standardError.contains("crashed 2 times within 300 s and was left stopped"))

            // A fresh start; a crash; stop before the restart.
            #expect(try await project.run(["--insecure"]).exitCode == 0)
            pid = try await project.guestPID()
            kill(pid, SIGKILL)
            for _ in 0..<100 where kill(pid, 0) == 0 { try await Task.sleep(for: .milliseconds(10)) }
            let stopped = try await project.run(["stop"])
            #expect(stopped.exitCode == 0, "\(stopped.standardError)")
            #expect(stopped.standardOutput.contains("restart_cancelled=true"), "\(stopped.standardOutput)")
            try await Task.sleep(for: .milliseconds(1500))
            #expect(try await project.run(["status"]).exitCode == 3)

            // restart = "no"
            try project.directory.write(
                SeedConfig.runnerTOML + "\n[runner]\nrestart = \"no\"\n", to: ".oxydra/runner.toml")
            #expect(try await project.run(["--insecure"]).exitCode == 0)
            pid = try await project.guestPID()
            kill(pid, SIGKILL)
            try await Task.sleep(for: .milliseconds(1500))
            #expect(try await project.run(["status"]).exitCode == 3)
        }
    }

    /// A guest that stops answering (here: SIGSTOP) is still ended by `runner restart` and
    /// `runner stop`: its supervisor knows the process, which is killed.
    @Test func aGuestThatDoesNotAnswerIsStoppedByForce() async throws {
        try await Project.withGuest { project, server in
            var pid = try await project.guestPID()
            kill(pid, SIGSTOP)
            let restarted = try await project.run(["restart", "--insecure"])
            #expect(restarted.exitCode == 0, "\(restarted.standardError)")
            #expect(restarted.standardOutput.contains("forced=true"), "\(restarted.standardOutput)")
            #expect(restarted.standardError.contains("note: the guest did not answer ("), "\(restarted.standardError)")
            #expect(kill(pid, 0) != 0, "the stopped guest was killed")
            server.enqueue(.text("back"))
            let asked = try await project.run(["ask", "hello?"])
            #expect(asked.standardOutput == "back\n", "\(asked.standardError)")

            pid = try await project.guestPID()
            kill(pid, SIGSTOP)
            let stopped = try await project.run(["stop"])
            #expect(stopped.exitCode == 0, "\(stopped.standardError)")
            #expect(stopped.standardOutput.contains("forced=true"), "\(stopped.standardOutput)")
            #expect(kill(pid, 0) != 0, "the stopped guest was killed")
            #expect(!Supervisor.isActive(ipc: project.workspace + "/ipc"))
            #expect(try await project.run(["status"]).exitCode == 3)
        }
    }

    @Test func landlockConfinesTheGuestToItsWorkspace() async throws {
        let project = try Project()
        defer { project.directory.remove() }
        let workspace = try project.directory.createDirectory("ws/alice")
        try project.directory.write("inside", to: "ws/alice/inside.txt")
        try project.directory.write("host secret", to: "host-secret.txt")
        let outside = try await project.run(
            "oxydra-vm",
            [
                "--user-id", "alice", "--workspace-root", workspace, "--confinement-probe",
                project.root + "/host-secret.txt",
            ])
        #expect(outside.exitCode == 2, "\(outside.standardOutput)\(outside.standardError)")
        #expect(outside.standardOutput.hasPrefix("denied: \(project.root)/host-secret.txt: Permission denied"))
        let etc = try await project.run(
            "oxydra-vm", ["--user-id", "alice", "--workspace-root", workspace, "--confinement-probe", "/etc/passwd"])
        #expect(etc.exitCode == 2)
        // /proc is readable (libdispatch needs it), but not another process's environment.
        let environ = try await project.run(
            "oxydra-vm",
            ["--user-id", "alice", "--workspace-root", workspace, "--confinement-probe", "/proc/1/environ"])
        #expect(environ.exitCode == 2, "\(environ.standardOutput)")
        let inside = try await project.run(
            "oxydra-vm",
            ["--user-id", "alice", "--workspace-root", workspace, "--confinement-probe", workspace + "/inside.txt"])
        #expect(inside.exitCode == 0, "\(inside.standardOutput)")
        #expect(inside.standardOutput.hasPrefix("allowed: "))
    }

    @Test func theTerminalUIUnderTmux() async throws {
        try await Project.withGuest { project, server in
            let tmux = try await Tmux.terminalUI(project, columns: 80, rows: 24)
            defer { tmux.kill() }

            server.enqueue(.text("Hello from the **scripted** model\n```swift\nlet x = 1\n```"))
            tmux.send("hello tui", "Enter")
            try await tmux.waitFor("Hello from the scripted model")
            #expect(try tmux.capture().contains("you: hello tui"))
            // In colour: bold for **…**, a keyword colour in the code block.
            let styled = try tmux.capture(escapes: true).replacing("\u{1B}[39m", with: "").replacing(
                "\u{1B}[49m", with: "")
            #expect(styled.contains("\u{1B}[1mscripted"), "\(styled.debugDescription)")
            #expect(styled.contains("\u{1B}[35mlet"), "\(styled.debugDescription)")

            tmux.send("/sessions", "Enter")
            try await tmux.waitFor("sessions (most recent first):")
            // Titled from the first prompt; renamed; deleting asks again first.
            try await tmux.waitFor("hello tui")
            tmux.send("/rename Tmux talk", "Enter")
            try await tmux.waitFor("“Tmux talk”")
            tmux.send("/delete nonexistent", "Enter")
            try await tmux.waitFor("repeat the command within 15 s")
            tmux.send("/delete nonexistent", "Enter")
            try await tmux.waitFor("not found")

            var slow = ScriptedReply.text("a slow answer that will be cancelled before it ends")
            slow.chunkDelay = .milliseconds(500)
            server.enqueue(slow)
            tmux.send("slow one", "Enter")
            try await tmux.waitFor("streaming")
            // Cancel once the model's answer is arriving (the scripted reply is then used up; cancelling
            // before the request reaches the server would leave it queued for the next turn).
            try await tmux.waitFor("a slow")
            tmux.send("C-c")
            try await tmux.waitFor("turn cancelled")
            try await tmux.waitFor("idle")

            // Typed while a turn runs: queued, then sent when it ends; Esc takes a queued one back.
            var slower = ScriptedReply.text("the first answer arrives slowly")
            slower.chunkDelay = .milliseconds(300)
            server.enqueue([slower, .text("the queued one was answered")])
            tmux.send("first", "Enter")
            try await tmux.waitFor("streaming")
            tmux.send("second, typed meanwhile", "Enter")
            try await tmux.waitFor("Esc removes it): second, typed meanwhile")
            try await tmux.waitFor("the queued one was answered", timeout: .seconds(15))
            #expect(try tmux.capture().contains("you: second, typed meanwhile"))
            var slowest = ScriptedReply.text("another slow answer")
            slowest.chunkDelay = .milliseconds(300)
            server.enqueue(slowest)
            tmux.send("third", "Enter")
            try await tmux.waitFor("streaming")
            tmux.send("never sent", "Enter")
            try await tmux.waitFor("Esc removes it): never sent")
            tmux.send("Escape")
            try await tmux.waitFor("removed the queued message: never sent")
            try await tmux.waitFor("idle", timeout: .seconds(15))
            let bodies = server.requests.map { String(decoding: $0.body, as: UTF8.self) }
            #expect(!bodies.contains { $0.contains("never sent") })

            // A restarted guest listens on a new port; the UI finds it and resumes the session.
            let restart = try await project.run(["restart", "--insecure"])
            #expect(restart.exitCode == 0, "\(restart.standardError)")
            try await tmux.waitFor("reconnected", timeout: .seconds(20))
            server.enqueue(.text("back again"))
            tmux.send("after restart", "Enter")
            try await tmux.waitFor("back again")
            #expect(try tmux.capture().contains("session runtime-alice"))

            tmux.send("/copy", "Enter")
            try await tmux.waitFor("copied the last answer (10 characters)")
            server.enqueue(.text("retried it"))
            let before = server.requests.count
            tmux.send("/retry", "Enter")
            try await tmux.waitFor("retried it")
            #expect(server.requests.count == before + 1)
            #expect(String(decoding: server.requests.last!.body, as: UTF8.self).contains("after restart"))

            // Prompts are kept for the next run (the guest's HOME is the project's).
            let kept = try String(
                contentsOfFile: project.root + "/home/.local/state/oxydra/prompt_history", encoding: .utf8)
            #expect(kept.contains("\"hello tui\"") && kept.contains("\"after restart\""), "\(kept)")
            tmux.send("C-c")
            try await tmux.waitFor("press Ctrl+C again to quit")
            tmux.send("C-c")
            try await tmux.waitUntilExited()
        }
    }
}

/// A detached tmux session running one command.
struct Tmux {
    let session: String

    /// `runner --tui` for the project's running guest, connected (`environment`: more variables).
    static func terminalUI(_ project: Project, columns: Int, rows: Int, environment extra: String = "")
        async throws -> Tmux
    {
        let environment = project.environment.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let command =
            "cd \(project.root) && env -i \(environment) TERM=xterm-256color \(extra) \(ChildProcess.path(of: "runner")) --tui"
        let tmux = Tmux(session: "oxydra-tui-\(getpid())-\(columns)")
        try tmux.start(command, columns: columns, rows: rows)
        do {
            try await tmux.waitFor("● connected")
        } catch {
            tmux.kill()
            throw error
        }
        return tmux
    }

    func start(_ command: String, columns: Int, rows: Int) throws {
        let status = run(["new-session", "-d", "-s", session, "-x", "\(columns)", "-y", "\(rows)", command])
        guard status == 0 else { throw TestSupportError("tmux new-session failed (\(status)); is tmux installed?") }
        _ = run(["set-option", "-t", session, "remain-on-exit", "on"])
    }

    func send(_ keys: String...) { _ = run(["send-keys", "-t", session] + keys) }

    /// The screen's text; with `escapes`, with its colours and attributes as SGR sequences.
    func capture(escapes: Bool = false) throws -> String {
        let path = FileManager.default.temporaryDirectory.path + "/\(session).txt"
        _ = run(["capture-pane", "-t", session, "-p", "-J"] + (escapes ? ["-e"] : []), output: path)
        defer { unlink(path) }
        return (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }

    func waitFor(_ text: String, timeout: Duration = .seconds(15)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try capture().contains(text) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestSupportError("the TUI never showed \"\(text)\"; screen:\n\(try capture())")
    }

    func waitUntilExited(timeout: Duration = .seconds(10)) async throws {
        let deadline = ContinuousClock.now + timeout
        let path = FileManager.default.temporaryDirectory.path + "/\(session)-dead.txt"
        defer { unlink(path) }
        while ContinuousClock.now < deadline {
            _ = run(["display-message", "-t", session, "-p", "#{pane_dead}"], output: path)
            if (try? String(contentsOfFile: path, encoding: .utf8))?.trimmed == "1" { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestSupportError("the TUI did not exit; screen:\n\(try capture())")
    }

    func kill() { _ = run(["kill-session", "-t", session]) }

    /// Pastes `text` as a terminal does (bracketed when the program asked for it). tmux turns LF
    /// into CR unless `keepLineFeeds`.
    func paste(_ text: String, keepLineFeeds: Bool = false) {
        _ = run(["set-buffer", "-b", "oxydra-test", text])
        _ = run(["paste-buffer", "-p", "-d", "-b", "oxydra-test", "-t", session] + (keepLineFeeds ? ["-r"] : []))
    }

    @discardableResult
    private func run(_ arguments: [String], output: String? = nil) -> Int32 {
        var command = (["tmux"] + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
            .joined(separator: " ")
        command += output.map { " > '\($0)'" } ?? " > /dev/null"
        command += " 2>/dev/null"
        return system(command) >> 8
    }
}
