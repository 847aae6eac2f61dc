import Foundation
import NIOCore
import NIOPosix
import OxydraCore
import OxydraSandbox
import OxydraTesting
import OxydraTools
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Whether bubblewrap can create the sandbox on this machine; nil when it can, else why not.
let sandboxUnavailable: String? = {
    guard let bwrap = ShellSandbox.findBubblewrap(environment: ["PATH": "/usr/bin:/bin:/usr/local/bin"]) else {
        return "bubblewrap is not installed (apt-get install bubblewrap)"
    }
    return ShellSandbox.probe(bubblewrap: bwrap)
}()

/// Escape attempts from inside the process tier's shell sandbox. Every command runs through the real
/// supervisor, bubblewrap and daemon; the checks are what the commands could reach.
@Suite(
    "Shell sandbox", .serialized, .timeLimit(.minutes(1)),
    .enabled(
        if: Capability.shouldRun(sandboxUnavailable),
        "\(Capability.skipReason("shell sandbox tests", sandboxUnavailable))"))
struct ShellSandboxTests {
    /// Runs first: where the suite runs only because it is required, this names what is missing.
    @Test func bubblewrapCanCreateTheSandbox() {
        #expect(sandboxUnavailable == nil, "required but missing: \(sandboxUnavailable ?? "")")
    }

    static func withSandbox(
        extraArguments: [String] = [], environment: [String] = [],
        _ body: (DaemonFixture, DaemonSession) async throws -> Void
    ) async throws {
        let daemon = try DaemonFixture(sandboxed: true, extraArguments: extraArguments, environment: environment)
        defer { daemon.stop() }
        let session = try await DaemonSession.open(try await daemon.connect())
        try await body(daemon, session)
    }

    @Test func commandsSeeOnlySharedAndTmp() async throws {
        try await Self.withSandbox { daemon, session in
            let whoami = try await session.run("id -u; pwd; echo $HOME; hostname")
            #expect(whoami.chunks.text(.stdout) == "1000\n/shared\n/tmp\noxydra\n")

            // Host secrets and homes are not there.
            for path in [
                "/etc/shadow", "/root", "/home", "/var", daemon.directory.path,
                URL(fileURLWithPath: #filePath).deletingLastPathComponent().path, "/proc/1/root/etc/shadow",
            ] {
                let probe = try await session.run("ls -la \(path)")
                #expect(probe.last.exitStatus?.code != 0, "\(path) is visible: \(probe.chunks.text(.stdout))")
            }
            // Nothing outside /shared and /tmp is writable.
            for path in ["/usr/x", "/etc/x", "/x", "/bin/x", "/proc/x", "/dev/x"] {
                let probe = try await session.run("touch \(path)")
                #expect(probe.last.exitStatus?.code != 0, "could write \(path)")
            }
            let write = try await session.run("echo one > /shared/a.txt && echo two > /tmp/b.txt && cat /shared/a.txt")
            #expect(write.last.exitStatus?.code == 0, "\(write.chunks.text(.stderr))")
            #expect(try String(contentsOfFile: daemon.shared + "/a.txt", encoding: .utf8) == "one\n")
            #expect(try String(contentsOfFile: daemon.tmp + "/b.txt", encoding: .utf8) == "two\n")
            // Symlinks cannot point the way out either: the target does not exist inside.
            let link = try await session.run("ln -s /etc/shadow /shared/s && cat /shared/s")
            #expect(link.last.exitStatus?.code != 0)
        }
    }

    /// Second layer behind the runner's refusal of overlapping mounts: protected paths inside
    /// `/shared` are masked, so a command can neither read nor change them.
    @Test func maskedPathsInsideSharedAreInvisible() async throws {
        let directory = try TemporaryDirectory(prefix: "oxydra-mask")
        defer { directory.remove() }
        let secret = "api_key = \"sk-live-do-not-leak\"\n"
        _ = try directory.write(secret, to: "project/.oxydra/agent.toml")
        _ = try directory.write("be helpful\n", to: "project/.oxydra/workspaces/alice/.oxydra/SYSTEM.md")
        _ = try directory.write("visible\n", to: "project/notes.txt")
        let project = directory.path + "/project"
        let daemon = try DaemonFixture(
            sandboxed: true,
            extraArguments: ["--shared", project, "--mask", project + "/.oxydra", "--mask", project + "/notes.txt"])
        defer { daemon.stop() }
        let session = try await DaemonSession.open(try await daemon.connect())
        let read = try await session.run("cat /shared/.oxydra/agent.toml; ls -A /shared/.oxydra | wc -l")
        #expect(!read.chunks.text(.stdout).contains("sk-live"))
        #expect(read.chunks.text(.stdout).hasSuffix("0\n"), "\(read.chunks.text(.stdout))")
        let write = try await session.run(
            "echo '[x]' >> /shared/.oxydra/agent.toml; mkdir -p /shared/.oxydra/workspaces; echo evil > /shared/notes.txt"
        )
        #expect(write.last.exitStatus?.code != 0)
        #expect(try String(contentsOfFile: project + "/.oxydra/agent.toml", encoding: .utf8) == secret)
        #expect(try String(contentsOfFile: project + "/notes.txt", encoding: .utf8) == "visible\n")
        let system = project + "/.oxydra/workspaces/alice/.oxydra/SYSTEM.md"
        #expect(try String(contentsOfFile: system, encoding: .utf8) == "be helpful\n")
    }

    @Test func noNetworkNotEvenHostLoopback() async throws {
        // A real listener on the host's loopback.
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        defer { listener.close(promise: nil) }
        let port = listener.localAddress!.port!
        try await Self.withSandbox { _, session in
            let tcp = try await session.run("bash -c 'exec 3<>/dev/tcp/127.0.0.1/\(port) && echo connected'")
            #expect(tcp.last.exitStatus?.code != 0)
            #expect(!tcp.chunks.text(.stdout).contains("connected"))
            let interfaces = try await session.run("cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '")
            #expect(interfaces.chunks.text(.stdout) == "lo\n")
            let outside = try await session.run("bash -c 'exec 3<>/dev/tcp/1.1.1.1/80'", timeout: 5)
            #expect(outside.last.exitStatus?.code != 0)
        }
    }

    @Test func hostProcessesAreInvisibleAndUnreachable() async throws {
        try await Self.withSandbox { _, session in
            let me = getpid()
            let signal = try await session.run("kill -0 \(me)")
            #expect(signal.last.exitStatus?.code != 0, "the sandbox could signal host pid \(me)")
            let processes = try await session.run("ls /proc | grep -c '^[0-9]'")
            let count = Int(processes.chunks.text(.stdout).trimmed) ?? 99
            // bwrap's init, the daemon, the command's reaper, dash, ls and grep
            #expect(count <= 6, "the sandbox sees \(count) processes")
            let capabilities = try await session.run("grep CapEff /proc/self/status")
            #expect(capabilities.chunks.text(.stdout).contains("0000000000000000"))
            let privileges = try await session.run("grep NoNewPrivs /proc/self/status")
            #expect(privileges.chunks.text(.stdout).contains("1"))
        }
    }

    @Test func onlyForwardedVariablesAndLimitsApply() async throws {
        try await Self.withSandbox(
            extraArguments: ["--env", "ALLOWED_VAR", "--max-processes", "64"],
            environment: ["ALLOWED_VAR=visible", "SECRET_TOKEN=sk-do-not-leak"]
        ) { _, session in
            let environment = try await session.run("env")
            let text = environment.chunks.text(.stdout)
            #expect(text.contains("ALLOWED_VAR=visible"))
            #expect(!text.contains("sk-do-not-leak"))
            #expect(!text.contains("SECRET_TOKEN"))
            let limit = try await session.run("grep 'Max processes' /proc/self/limits")
            #expect(
                limit.chunks.text(.stdout).split(separator: " ", omittingEmptySubsequences: true).dropFirst(2).first
                    == "64")
        }
    }

    @Test func aForkBombStopsAtTheProcessLimit() async throws {
        try await Self.withSandbox(extraArguments: ["--max-processes", "24"]) { daemon, session in
            // Each started `sleep` leaves a line (echo is a builtin: no fork); the shell stops at the
            // first fork the limit refuses.
            let bomb = try await session.run(
                "i=0; while [ $i -lt 60 ]; do sleep 5 & echo x >> /tmp/started; i=$((i + 1)); done; wait",
                timeout: 20)
            let started =
                (try? String(contentsOfFile: daemon.tmp + "/started", encoding: .utf8))?.split(separator: "\n").count
                ?? 0
            let log = (try? String(contentsOfFile: daemon.log, encoding: .utf8)) ?? ""
            if getuid() == 0, !log.contains("pids.max=24") {
                // Root is exempt from RLIMIT_NPROC; only a cgroup can stop it, and none could be made.
                Issue.record("no cgroup for the sandbox as root, so the process limit is not enforced:\n\(log)")
                return
            }
            #expect(started < 24, "\(started) processes started in a sandbox limited to 24")
            #expect(started >= 5)
            #expect(bomb.last.exitStatus?.code != 0)
        }
    }

    @Test func theSandboxRestartsAndTheClientReconnectsOnce() async throws {
        try await Self.withSandbox { daemon, _ in
            let sessions = ShellSessions(socketPath: daemon.socket)
            let first = try await sessions.run("echo before", session: "s", timeoutSeconds: 10, maxOutputBytes: 1000)
            #expect(first.stdout == "before\n")
            // A command that kills the daemon (its reaper's parent) loses its own result...
            await #expect(throws: ShellClientError.self) {
                _ = try await sessions.run(
                    "kill -9 $(cut -d ' ' -f 4 /proc/$PPID/stat)", session: "s", timeoutSeconds: 10,
                    maxOutputBytes: 1000)
            }
            // ...and the next call reconnects to the restarted sandbox.
            let after = try await sessions.run("echo after", session: "s", timeoutSeconds: 10, maxOutputBytes: 1000)
            #expect(after.stdout == "after\n")
            let log = try String(contentsOfFile: daemon.log, encoding: .utf8)
            #expect(log.contains("restarting"))
        }
    }

    @Test func cancellingTheToolKillsTheCommand() async throws {
        try await Self.withSandbox { daemon, _ in
            let sessions = ShellSessions(socketPath: daemon.socket)
            let clock = ContinuousClock()
            let start = clock.now
            let task = Task {
                try await sessions.run(
                    "echo $$ > /tmp/running.pid; sleep 30", session: "c", timeoutSeconds: 60, maxOutputBytes: 1000)
            }
            for _ in 0..<200 where access(daemon.tmp + "/running.pid", F_OK) != 0 { usleep(10_000) }
            usleep(50_000)
            task.cancel()
            _ = try? await task.value
            #expect(clock.now - start < .seconds(5))
            // The command and its shell are gone within moments, not when a long-poll would have ended.
            var left: [String] = []
            for _ in 0..<25 {
                // Exactly this command (other processes on the machine may mention `sleep 300`).
                left = Self.processes(mentioning: "sleep 30").filter { $0.hasSuffix(": sleep 30 ") }
                if left.isEmpty { break }
                usleep(20_000)
            }
            #expect(left.isEmpty, "still running after cancellation: \(left)")
            // The session still works afterwards.
            let after = try await sessions.run("echo fine", session: "c", timeoutSeconds: 10, maxOutputBytes: 1000)
            #expect(after.stdout == "fine\n")
        }
    }

    @Test func aDaemonInstalledUnderTmpIsNotHiddenByTheSandboxTmp() async throws {
        // A checkout under /tmp (as in CI) puts the daemon where the sandbox mounts the user's /tmp.
        let install = try TemporaryDirectory(prefix: "oxydra-install")
        defer { install.remove() }
        let copy = install.path + "/shell-daemon"
        try FileManager.default.copyItem(atPath: ChildProcess.path(of: "shell-daemon"), toPath: copy)
        let daemon = try DaemonFixture(sandboxed: true, executable: copy)
        defer { daemon.stop() }
        let session = try await DaemonSession.open(try await daemon.connect())
        let run = try await session.run("echo ok; ls /tmp; env | grep -c LD_LIBRARY_PATH")
        #expect(run.chunks.text(.stdout) == "ok\n0\n", "\(run.chunks.text(.stderr))")
        #expect(try FileManager.default.contentsOfDirectory(atPath: daemon.tmp).isEmpty)
    }

    @Test func theSandboxDiesWithItsSupervisor() async throws {
        let daemon = try DaemonFixture(sandboxed: true)
        defer { daemon.stop() }
        let session = try await DaemonSession.open(try await daemon.connect())
        let (chunks, _) = try await session.run("echo $$")
        #expect(!chunks.text(.stdout).isEmpty)
        kill(daemon.pid, SIGKILL)
        var status: Int32 = 0
        waitpid(daemon.pid, &status, 0)
        // bubblewrap (--die-with-parent) and everything in its pid namespace go with it.
        var remaining: [String] = []
        for _ in 0..<100 {
            remaining = Self.processes(mentioning: daemon.socket) + Self.processes(mentioning: daemon.shared)
            if remaining.isEmpty { break }
            usleep(20_000)
        }
        #expect(remaining.isEmpty, "left running: \(remaining)")
    }

    static func processes(mentioning text: String) -> [String] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { entry in
            guard Int(entry) != nil,
                let raw = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline"),
                !processIsGone(pid_t(entry)!)
            else { return nil }
            let line = String(decoding: raw.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
            return line.contains(text) ? "\(entry): \(line)" : nil
        }
    }
}
