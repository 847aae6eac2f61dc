import Foundation
import OxydraClient
import OxydraCore
import OxydraSandbox
import OxydraTesting
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `shell_exec` through the whole product: runner → guest → sandboxed shell-daemon, driven by a
/// scripted model.
@Suite(
    "Shell end to end", .serialized,
    .enabled(
        if: Capability.shouldRun(sandboxUnavailable),
        "\(Capability.skipReason("shell end-to-end tests", sandboxUnavailable))"))
struct ShellEndToEndTests {
    /// Runs first: where the suite runs only because it is required, this names what is missing.
    @Test func bubblewrapCanCreateTheSandbox() {
        #expect(sandboxUnavailable == nil, "required but missing: \(sandboxUnavailable ?? "")")
    }

    static let shellUser = """
        [behavior]
        sandbox_tier = "process"
        shell_enabled = true
        browser_enabled = false
        [resources]
        max_processes = 128
        """

    @Test func theAgentRunsCommandsInTheSandbox() async throws {
        let server = try await ScriptedModelServer.start()
        defer { Teardown.run { try? await server.shutdown() } }
        let project = try Project(agent: scriptedAgent(server) + "\n[tools.shell]\nenv_keys = [\"PROJECT_NAME\"]\n")
        try project.directory.write(Self.shellUser, to: ".oxydra/users/alice.toml")
        defer {
            project.shutdownGuest()
            project.directory.remove()
        }
        let environment = ["PROJECT_NAME": "oxydra-test", "OPENAI_API_KEY": "sk-never-in-the-sandbox"]
        let started = try await project.run(["--insecure"], extraEnvironment: environment)
        #expect(started.exitCode == 0, "\(started.standardError)")
        #expect(value("shell_available", in: started.standardOutput) == "true", "\(started.standardOutput)")
        #expect(value("sidecar_available", in: started.standardOutput) == "true")

        server.enqueue(
            .toolCalls([
                ScriptedToolCall(
                    id: "c1", name: "shell_exec",
                    arguments:
                        #"{"command": "echo hello > /shared/f.txt && cat /shared/f.txt && echo $PROJECT_NAME && env | grep -c OPENAI; ls /root"}"#
                )
            ]))
        server.enqueue(.text("not allowed"))
        // It writes a file: without a terminal to ask, `runner ask` denies it and says how to allow it.
        let denied = try await project.run(["ask", "run the command"])
        #expect(denied.exitCode == 0, "\(denied.standardError)")
        #expect(denied.standardError.contains("no terminal to ask; pass --approve-all or --approve shell_exec"))
        #expect(!FileManager.default.fileExists(atPath: project.workspace + "/shared/f.txt"))
        let refusalText = String(decoding: server.requests.last!.body, as: UTF8.self)
        #expect(refusalText.contains("the user denied it (answered from ask#"), "\(refusalText)")
        let audit = try String(contentsOfFile: project.workspace + "/logs/audit.jsonl", encoding: .utf8)
        #expect(audit.contains(#""decision":"denied""#) && audit.contains(#""approved_by":"ask#"#), "\(audit)")

        server.enqueue(
            .toolCalls([
                ScriptedToolCall(
                    id: "c1b", name: "shell_exec",
                    arguments:
                        #"{"command": "echo hello > /shared/f.txt && cat /shared/f.txt && echo $PROJECT_NAME && env | grep -c OPENAI; ls /root"}"#
                )
            ]))
        server.enqueue(.text("ran it"))
        let ask = try await project.run(["ask", "--approve", "shell_exec", "run the command"])
        #expect(ask.exitCode == 0, "\(ask.standardError)")
        #expect(ask.standardOutput == "ran it\n")
        let result = String(decoding: server.requests.last!.body, as: UTF8.self)
        #expect(result.contains("exit_status: 2"), "\(result)")  // ls /root fails: there is no /root
        #expect(result.contains("hello\\noxydra-test\\n0"), "\(result)")
        #expect(try String(contentsOfFile: project.workspace + "/shared/f.txt", encoding: .utf8) == "hello\n")

        // The policy refuses before anything runs, naming the program.
        server.enqueue(
            .toolCalls([
                ScriptedToolCall(id: "c2", name: "shell_exec", arguments: #"{"command": "ls /shared; rm -rf /shared"}"#)
            ]))
        server.enqueue(.text("refused"))
        let refused = try await project.run(["ask", "--approve-all", "delete everything"])
        #expect(refused.exitCode == 0, "\(refused.standardError)")
        let refusal = String(decoding: server.requests.last!.body, as: UTF8.self)
        #expect(refusal.contains("blocked by security policy (CommandNotAllowed)"), "\(refusal)")
        #expect(refusal.contains("`rm` is not an allowed command"))
        #expect(FileManager.default.fileExists(atPath: project.workspace + "/shared/f.txt"))

        let status = try await project.run(["status"])
        #expect(value("shell_available", in: status.standardOutput) == "true")

        // Stopping the guest takes the sandbox with it.
        let stop = try await project.run(["stop"])
        #expect(stop.exitCode == 0)
        var left: [String] = []
        for _ in 0..<100 {
            left = ShellSandboxTests.processes(mentioning: project.workspace + "/shared")
            if left.isEmpty { break }
            usleep(20_000)
        }
        #expect(left.isEmpty, "still running after stop: \(left)")
    }

    /// `runner start` probes bubblewrap once per boot: a passing verdict is kept in
    /// `ipc/bwrap-probe.json` (private) and reused while the bwrap binary is the same; a failing
    /// one is never kept, so a fixed host is noticed at the next start.
    @Test func aPassingBubblewrapProbeIsKeptAndAFailingOneIsNot() async throws {
        try await Self.withShellUser { project, _ in
            // A bwrap that logs its probe runs (they end with `env true`) and then is the real one;
            // `failing: true` makes the probe fail.
            let log = project.root + "/probes.log"
            let wrapper = project.root + "/bwrap"
            func writeWrapper(failing: Bool) throws {
                let script = """
                    #!/bin/sh
                    case "$*" in *"/usr/bin/env true") echo probe >> \(log); \(failing ? "exit 1;" : "") ;; esac
                    exec \(ShellSandbox.findBubblewrap(environment: ProcessInfo.processInfo.environment) ?? "/usr/bin/bwrap") "$@"
                    """
                unlink(wrapper)
                try script.write(toFile: wrapper, atomically: false, encoding: .utf8)
                chmod(wrapper, 0o755)
            }
            func probes() -> Int {
                ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").count
            }
            func start() async throws -> String {
                let started = try await project.run(["--insecure"], extraEnvironment: ["OXYDRA_BWRAP": wrapper])
                #expect(started.exitCode == 0, "\(started.standardError)")
                let stop = try await project.run(["stop"])
                #expect(stop.exitCode == 0, "\(stop.standardError)")
                return started.standardOutput
            }
            try writeWrapper(failing: false)
            #expect(value("shell_available", in: try await start()) == "true")
            #expect(probes() == 1)
            #expect(LocalUserIsolationTests.mode(project.workspace + "/ipc/bwrap-probe.json") == 0o600)
            #expect(value("shell_available", in: try await start()) == "true")
            #expect(probes() == 1, "a passing probe is not repeated within the boot")

            // Another bwrap binary is probed again; a failure is reported and probed again next time.
            try writeWrapper(failing: true)
            let failed = try await start()
            #expect(value("shell_available", in: failed) == "false")
            #expect(value("degraded_reason", in: failed)?.contains("bubblewrap cannot create the sandbox here") == true)
            #expect(probes() == 2)
            #expect(value("shell_available", in: try await start()) == "false")
            #expect(probes() == 3, "a failing probe is never kept")
        }
    }

    /// The guest does not wait for its shell sandbox to serve: `runner start` returns while the
    /// sandbox is still coming up, and a shell call made meanwhile waits for it.
    @Test func theGuestServesBeforeItsShellSandboxIsUpAndAShellCallWaitsForIt() async throws {
        try await Self.withShellUser { project, server in
            // A shell-daemon that takes three seconds to start, then is the real one.
            let wrapper = project.root + "/slow-shell-daemon"
            try """
            #!/bin/sh
            sleep 3
            exec \(ChildProcess.path(of: "shell-daemon")) "$@"
            """.write(toFile: wrapper, atomically: false, encoding: .utf8)
            chmod(wrapper, 0o755)
            let clock = ContinuousClock()
            let begin = clock.now
            let started = try await project.run(
                ["--insecure"], extraEnvironment: ["OXYDRA_SHELL_DAEMON_EXECUTABLE": wrapper])
            let took = clock.now - begin
            #expect(started.exitCode == 0, "\(started.standardError)")
            #expect(took < .seconds(3), "runner start waited for the shell sandbox (\(took))")
            #expect(value("shell_available", in: started.standardOutput) == "true", "\(started.standardOutput)")

            server.enqueue(
                .toolCalls([ScriptedToolCall(id: "c1", name: "shell_exec", arguments: #"{"command": "echo ready"}"#)]))
            server.enqueue(.text("done"))
            let ask = try await project.run(["ask", "--approve-all", "run it"])
            #expect(ask.exitCode == 0, "\(ask.standardError)")
            let result = String(decoding: server.requests.last!.body, as: UTF8.self)
            #expect(result.contains("exit_status: 0\\nstdout:\\nready"), "\(result)")
            let log = try String(contentsOfFile: project.workspace + "/logs/oxydra-vm.log", encoding: .utf8)
            #expect(log.contains("shell sandbox ready"), "\(log)")
        }
    }

    /// A shell sandbox that never comes up, although the runner's checks passed: the guest
    /// serves anyway, then withdraws the shell tool and reports itself degraded with the reason.
    @Test func aShellSandboxThatNeverComesUpIsWithdrawnAndTheStatusSaysWhy() async throws {
        try await Self.withShellUser { project, server in
            let wrapper = project.root + "/broken-shell-daemon"
            try "#!/bin/sh\necho 'broken on purpose' >&2\nexit 3\n".write(
                toFile: wrapper, atomically: false, encoding: .utf8)
            chmod(wrapper, 0o755)
            let started = try await project.run(
                ["--insecure"], extraEnvironment: ["OXYDRA_SHELL_DAEMON_EXECUTABLE": wrapper])
            #expect(started.exitCode == 0, "\(started.standardError)")
            var status = ""
            for _ in 0..<100 {
                status = try await project.run(["status"]).standardOutput
                if value("shell_available", in: status) == "false" { break }
                usleep(50_000)
            }
            #expect(value("shell_available", in: status) == "false", "\(status)")
            #expect(value("sidecar_available", in: status) == "false")
            let reason = value("degraded_reason", in: status) ?? ""
            #expect(
                reason.hasPrefix("sidecar_connection_failed:") && reason.contains("exited with status 3"), "\(reason)")
            let log = try String(contentsOfFile: project.workspace + "/logs/shell-daemon.log", encoding: .utf8)
            #expect(log.contains("broken on purpose"))

            // The model is no longer offered the shell; a call it makes anyway gets the reason.
            server.enqueue(
                .toolCalls([ScriptedToolCall(id: "c1", name: "shell_exec", arguments: #"{"command": "echo hi"}"#)]))
            server.enqueue(.text("no shell"))
            let ask = try await project.run(["ask", "--approve-all", "run it"])
            #expect(ask.exitCode == 0, "\(ask.standardError)")
            let first = String(decoding: server.requests[server.requests.count - 2].body, as: UTF8.self)
            #expect(!first.contains("\"shell_exec\""), "\(first)")
            let result = String(decoding: server.requests.last!.body, as: UTF8.self)
            #expect(result.contains("not available: the shell sandbox's supervisor exited"), "\(result)")
        }
    }

    /// A project whose user has the shell on, on a scripted model, stopped and removed afterwards.
    static func withShellUser(_ body: (Project, ScriptedModelServer) async throws -> Void) async throws {
        let server = try await ScriptedModelServer.start()
        defer { Teardown.run { try? await server.shutdown() } }
        let project = try Project(agent: scriptedAgent(server))
        try project.directory.write(Self.shellUser, to: ".oxydra/users/alice.toml")
        defer {
            project.shutdownGuest()
            project.directory.remove()
        }
        try await body(project, server)
    }

    @Test func withoutBubblewrapTheShellIsOffAndStatusSaysHowToFixIt() async throws {
        try await Self.withShellUser { project, server in
            let started = try await project.run(
                ["--insecure"], extraEnvironment: ["OXYDRA_BWRAP": "/nonexistent/bwrap"])
            #expect(started.exitCode == 0, "\(started.standardError)")
            #expect(value("shell_available", in: started.standardOutput) == "false")
            let reason = value("degraded_reason", in: started.standardOutput) ?? ""
            #expect(reason.hasPrefix("sidecar_unavailable:bubblewrap (bwrap) is not installed"), "\(reason)")
            #expect(reason.contains("apt-get install bubblewrap"))
            // The model is not offered a shell it cannot use.
            server.enqueue(.text("no shell"))
            _ = try await project.run(["ask", "hi"])
            let request = String(decoding: server.requests.last!.body, as: UTF8.self)
            #expect(!request.contains("\"shell_exec\""))
        }
    }
}

/// `kill -9` of the guest while `shell_exec` runs leaves an assistant tool call without a result in
/// the store. After a restart the next turn must still be accepted by every provider: the call is
/// closed with a result saying the guest stopped while it ran.
@Suite(
    "Hard kill during a tool call", .serialized,
    .enabled(
        if: Capability.shouldRun(sandboxUnavailable),
        "\(Capability.skipReason("hard-kill tests", sandboxUnavailable))"))
struct HardKillDuringToolTests {
    @Test(arguments: ["openai", "openai_responses", "anthropic", "gemini"])
    func theNextTurnAfterAKillHasAValidHistory(providerType: String) async throws {
        let server = try await ScriptedModelServer.start()
        let agent = scriptedAgent(server).replacingOccurrences(
            of: "provider_type = \"openai\"", with: "provider_type = \"\(providerType)\"")
        let project = try Project(agent: agent)
        try project.directory.write(ShellEndToEndTests.shellUser, to: ".oxydra/users/alice.toml")
        defer {
            project.shutdownGuest()
            project.directory.remove()
        }
        let started = try await project.run(["--insecure"])
        try #require(started.exitCode == 0, "\(started.standardError)")
        let pid = try #require(Int32(value("runtime_pid", in: started.standardOutput) ?? ""))

        server.enqueue(
            .toolCalls([ScriptedToolCall(id: "call-long", name: "shell_exec", arguments: #"{"command": "sleep 30"}"#)]))
        let access = try GatewayAccess.discover(ipcDirectory: project.workspace + "/ipc")
        let client = GatewayClient(endpoint: access.endpoint, token: access.token)
        client.send(.hello(.init(requestID: "h", userID: "alice")))
        var iterator = client.frames.makeAsyncIterator()
        var sessionID: SessionID?
        while let frame = await iterator.next() {
            if case .helloAck(_, _, let ref, _) = frame {
                sessionID = ref.sessionID
                client.send(
                    .sendTurn(.init(requestID: "t", sessionID: ref.sessionID, turnID: "turn-1", prompt: "wait a bit")))
            }
            if case .toolCall = frame { break }
        }
        try #require(sessionID != nil)
        usleep(200_000)  // the call is committed before it runs; let the command start
        kill(pid, SIGKILL)
        for _ in 0..<200 where kill(pid, 0) == 0 { usleep(10_000) }
        client.close()

        let restarted = try await project.run(["--insecure"])
        try #require(restarted.exitCode == 0, "\(restarted.standardError)")
        server.enqueue(.text("recovered"))
        let ask = try await project.run(["ask", "are you there?"])
        #expect(ask.exitCode == 0, "\(ask.standardError)")
        #expect(ask.standardOutput == "recovered\n")
        let body = try JSONValue(parsing: String(decoding: server.requests.last!.body, as: UTF8.self))
        let text = String(decoding: server.requests.last!.body, as: UTF8.self)
        #expect(text.contains("the guest stopped while it ran"), "\(text)")
        // The result answers the call in the provider's own terms, right after it.
        switch providerType {
        case "openai":
            let messages = body["messages"]?.arrayValue ?? []
            let call = messages.firstIndex { $0["tool_calls"]?.arrayValue?.first?["id"] == "call-long" }
            let index = try #require(call, "\(text)")
            #expect(messages[index + 1]["role"] == "tool" && messages[index + 1]["tool_call_id"] == "call-long")
        case "openai_responses":
            let items = body["input"]?.arrayValue ?? []
            let call = try #require(items.firstIndex { $0["type"] == "function_call" && $0["call_id"] == "call-long" })
            #expect(items[call + 1]["type"] == "function_call_output" && items[call + 1]["call_id"] == "call-long")
        case "anthropic":
            let messages = body["messages"]?.arrayValue ?? []
            let call = try #require(
                messages.firstIndex { ($0["content"]?.arrayValue ?? []).contains { $0["id"] == "call-long" } })
            let next = messages[call + 1]["content"]?.arrayValue ?? []
            #expect(next.contains { $0["type"] == "tool_result" && $0["tool_use_id"] == "call-long" }, "\(text)")
        default:
            let contents = body["contents"]?.arrayValue ?? []
            let call = try #require(
                contents.firstIndex { ($0["parts"]?.arrayValue ?? []).contains { $0["functionCall"] != nil } })
            let next = contents[call + 1]["parts"]?.arrayValue ?? []
            #expect(next.contains { $0["functionResponse"]?["name"] == "shell_exec" }, "\(text)")
        }
        // The store itself was repaired: a second restart has nothing left to close.
        let log = try String(contentsOfFile: project.workspace + "/logs/oxydra-vm.log", encoding: .utf8)
        #expect(log.components(separatedBy: "closed tool calls the guest never finished").count == 2, "\(log)")
        try? await server.shutdown()
    }
}

extension ShellEndToEndTests {
    /// Without `[resources] max_processes` the sandbox still has a process limit.
    @Test func theSandboxHasADefaultProcessLimit() async throws {
        let server = try await ScriptedModelServer.start()
        defer { Teardown.run { try? await server.shutdown() } }
        let project = try Project(agent: scriptedAgent(server))
        try project.directory.write(
            "[behavior]\nsandbox_tier = \"process\"\nshell_enabled = true\n", to: ".oxydra/users/alice.toml")
        defer {
            project.shutdownGuest()
            project.directory.remove()
        }
        let started = try await project.run(["--insecure"])
        try #require(started.exitCode == 0, "\(started.standardError)")
        #expect(value("shell_available", in: started.standardOutput) == "true")
        server.enqueue(
            .toolCalls([
                ScriptedToolCall(
                    id: "c1", name: "shell_exec", arguments: #"{"command": "grep 'Max processes' /proc/self/limits"}"#)
            ]))
        server.enqueue(.text("limited"))
        let ask = try await project.run(["ask", "what is the process limit?"])
        #expect(ask.exitCode == 0, "\(ask.standardError)")
        let result = String(decoding: server.requests.last!.body, as: UTF8.self)
        let limit = String(ShellSandbox.defaultMaxProcesses)
        #expect(result.contains(#"Max processes             \#(limit)                  \#(limit)"#), "\(result)")
    }
}
