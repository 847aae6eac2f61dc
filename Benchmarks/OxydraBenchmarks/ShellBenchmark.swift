import CSystemShims
import Foundation
import OxydraConfig
import OxydraCore
import OxydraSandbox
import OxydraTesting
import OxydraTools

#if canImport(Glibc)
    import Glibc
#endif

/// `shell_exec` through the tool, the daemon connection and the bubblewrap sandbox, against
/// spawning the same `dash -c` command directly with the daemon's own fork/exec (the floor: any
/// shell tool must at least start the shell and read its output). Sandbox start-up is paid once
/// per guest and measured separately.
func benchmarkShell() async throws {
    guard let bwrap = ShellSandbox.findBubblewrap(environment: ["PATH": "/usr/bin:/bin"]) else {
        print("shell: skipped (bubblewrap is not installed)")
        return
    }
    if let problem = ShellSandbox.probe(bubblewrap: bwrap) {
        print("shell: skipped (\(problem))")
        return
    }
    let directory = try TemporaryDirectory(prefix: "oxydra-bench-shell")
    defer { directory.remove() }
    let shared = try directory.createDirectory("shared")
    let tmp = try directory.createDirectory("tmp")
    let socket = directory.path + "/shell.sock"
    let executable = FilePaths.parent(ExecutableLocator.selfPath() ?? "") + "/shell-daemon"
    let devNull = open("/dev/null", O_RDWR)
    var options = ProcessSpawner.Options(standardInput: devNull, standardOutput: devNull, standardError: devNull)
    options.deathSignal = SIGKILL

    // Sandbox start-up: supervisor + bubblewrap + daemon until the first session answers.
    var startups: [Double] = []
    var supervisor: pid_t = 0
    for round in 0..<10 {
        unlink(socket)
        let start = clock.now
        supervisor = try ProcessSpawner.spawn(
            executable,
            arguments: [
                "--sandbox", "--socket", socket, "--bwrap", bwrap, "--shared", shared, "--tmp", tmp, "--etc",
                directory.path + "/etc", "--parent", String(getpid()),
            ], environment: ["PATH=/usr/bin:/bin"], options: options)
        while true {
            if let connection = try? await ShellDaemonConnection.connect(to: socket),
                let reply = try? await connection.call(
                    ShellRequest(requestID: "r", .spawnSession(shell: nil, cwd: nil, env: [:]))),
                case .sessionSpawned = reply.body
            {
                connection.close()
                break
            }
            try await Task.sleep(for: .milliseconds(1))
        }
        startups.append(seconds(clock.now - start))
        if round < 9 {
            kill(supervisor, SIGKILL)
            waitpid(supervisor, nil, 0)
        }
    }
    defer {
        kill(supervisor, SIGKILL)
        waitpid(supervisor, nil, 0)
    }

    // The default configuration keeps 64 KiB of a command's output (its first and last halves);
    // `keepAll` keeps up to 4 MiB, so the whole megabyte crosses the socket as JSON.
    var config = ShellToolsConfig()
    config.allow = ["*"]
    let sessions = ShellSessions(socketPath: socket)
    let tool = ShellExecTool(config: config, sessions: sessions)
    config.maxOutputBytes = 4 << 20
    let keepAll = ShellExecTool(config: config, sessions: sessions)
    let context = ToolContext(session: SessionID("bench"))

    // The floor spawns the shell exactly as the daemon does (oxydra_spawn: fork, a reaper that
    // owns the command's processes, exec of dash; pipes read with poll), only without the sandbox,
    // the daemon protocol and the tool.
    func direct(_ command: String) throws -> Double {
        let start = clock.now
        var out: [Int32] = [-1, -1]
        var err: [Int32] = [-1, -1]
        guard oxydra_pipe_cloexec(&out) == 0, oxydra_pipe_cloexec(&err) == 0 else { throw TestSupportError("pipe") }
        var spawn = ProcessSpawner.Options(standardInput: devNull, standardOutput: out[1], standardError: err[1])
        spawn.workingDirectory = shared
        spawn.newProcessGroup = true
        spawn.reapDescendants = true
        let pid = try ProcessSpawner.spawn(
            ShellSandbox.shell, arguments: ["-c", command], environment: ["PATH=/usr/bin:/bin"], options: spawn)
        close(out[1])
        close(err[1])
        var open = [out[0], err[0]]
        var received = 0
        var last: UInt8 = 0
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while !open.isEmpty {
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            guard poll(&fds, nfds_t(fds.count), 1000) >= 0 || errno == EINTR else { break }
            for entry in fds where entry.revents != 0 {
                let count = read(entry.fd, &buffer, buffer.count)
                if count > 0 {
                    if entry.fd == out[0] {
                        received += count
                        last = buffer[count - 1]
                    }
                } else if count == 0 || errno != EINTR {
                    close(entry.fd)
                    open.removeAll { $0 == entry.fd }
                }
            }
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        precondition(status == 0 && (command == "true" || received == 1_000_000 && last == UInt8(ascii: "a")))
        return seconds(clock.now - start)
    }
    func throughTool(_ command: String, _ tool: ShellExecTool) async throws -> Double {
        let start = clock.now
        let output = try await tool.run(["command": .string(command)], context: context)
        precondition(output.text.hasPrefix("exit_status: 0"), output.text)
        return seconds(clock.now - start)
    }

    let big = "head -c 1000000 /dev/zero | tr '\\0' a"
    for (label, command, rounds, tool) in [
        ("`true`", "true", 300, tool), ("1 MB of output (default: 64 KiB kept)", big, 60, tool),
        ("1 MB of output (all of it kept and sent)", big, 60, keepAll),
    ] {
        for _ in 0..<10 {
            _ = try direct(command)
            _ = try await throughTool(command, tool)
        }
        var floor: [Double] = []
        var ours: [Double] = []
        for _ in 0..<rounds {
            floor.append(try direct(command))
            ours.append(try await throughTool(command, tool))
        }
        print(
            "shell: \(label) through shell_exec (policy, daemon, sandbox) min/median/max \(spread(ours, scale: 1000)) ms "
                + "vs spawning dash the daemon's way \(spread(floor, scale: 1000)) ms; ratio of medians "
                + "\(String(format2: median(ours) / median(floor)))x (target ≤ 1.5x)")
    }
    print(
        "shell: sandbox start-up (supervisor + bubblewrap + daemon, once per guest) min/median/max "
            + "\(spread(startups, scale: 1000)) ms")
}
