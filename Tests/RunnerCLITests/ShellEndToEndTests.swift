import Foundation
import OxydraCore
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
        defer { Task { try? await server.shutdown() } }
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
        server.enqueue(.text("ran it"))
        let ask = try await project.run(["ask", "run the command"])
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
        let refused = try await project.run(["ask", "delete everything"])
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

    @Test func withoutBubblewrapTheShellIsOffAndStatusSaysHowToFixIt() async throws {
        let server = try await ScriptedModelServer.start()
        defer { Task { try? await server.shutdown() } }
        let project = try Project(agent: scriptedAgent(server))
        try project.directory.write(Self.shellUser, to: ".oxydra/users/alice.toml")
        defer {
            project.shutdownGuest()
            project.directory.remove()
        }
        let started = try await project.run(["--insecure"], extraEnvironment: ["OXYDRA_BWRAP": "/nonexistent/bwrap"])
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
