import CSystemShims
import OxydraCore
import OxydraSandbox

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One command, watched by a thread that reads its output, enforces its timeout and reaps it.
/// `pid` is a small reaper process (a subreaper, in its own process group) whose child is the
/// shell: every process the command starts stays its descendant, even one that double-forks and
/// calls `setsid`, and when the shell exits — or the command is killed or times out (SIGTERM to
/// the reaper) — the reaper kills all of them before it exits. Nothing outlives its command.
final class CommandRun: @unchecked Sendable {
    let pid: pid_t
    let output: OutputBuffer
    private let monitor = Monitor()
    private var killRequested = false

    struct SpawnError: Error {
        var message: String
    }

    /// Starts `shell -c command`.
    init(
        shell: String, command: String, cwd: String?, environment: [String], timeout: Duration, maxOutputBytes: Int
    ) throws(SpawnError) {
        output = OutputBuffer(limit: maxOutputBytes)
        var stdoutPipe: [Int32] = [-1, -1]
        var stderrPipe: [Int32] = [-1, -1]
        guard oxydra_pipe_cloexec(&stdoutPipe) == 0 else {
            throw SpawnError(message: "cannot create a pipe: \(errorText())")
        }
        guard oxydra_pipe_cloexec(&stderrPipe) == 0 else {
            close(stdoutPipe[0])
            close(stdoutPipe[1])
            throw SpawnError(message: "cannot create a pipe: \(errorText())")
        }
        let devNull = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer {
            close(stdoutPipe[1])
            close(stderrPipe[1])
            if devNull >= 0 { close(devNull) }
        }
        var options = ProcessSpawner.Options(
            standardInput: devNull >= 0 ? devNull : stdoutPipe[1], standardOutput: stdoutPipe[1],
            standardError: stderrPipe[1])
        options.workingDirectory = cwd
        options.newProcessGroup = true
        options.reapDescendants = true
        let spawned: pid_t
        do {
            spawned = try ProcessSpawner.spawn(
                shell, arguments: ["-c", command], environment: environment, options: options)
        } catch {
            close(stdoutPipe[0])
            close(stderrPipe[0])
            throw SpawnError(
                message: error.errorNumber == ENOENT && cwd != nil
                    ? "cannot start \(shell) in \(cwd!): \(error) (do the shell and the directory exist?)"
                    : "cannot start \(shell): \(error)")
        }
        pid = spawned
        let out = stdoutPipe[0]
        let err = stderrPipe[0]
        let deadline = Monotonic.now + UInt64(timeout.components.seconds) * 1_000_000_000
        startThread { [self] in watch(stdout: out, stderr: err, deadline: deadline) }
    }

    /// Kills the command and everything it started (the reaper does it; the watcher escalates to
    /// SIGKILL for the group if the reaper has not exited after a grace period).
    func kill() {
        monitor.locked { killRequested = true }
        _ = Glibc.kill(pid, SIGTERM)
    }

    /// How long the reaper gets to clear up after SIGTERM.
    static let reaperGrace: UInt64 = 2_000_000_000

    private func watch(stdout: Int32, stderr: Int32, deadline: UInt64) {
        var open: [(fd: Int32, stream: ShellStream)] = [(stdout, .stdout), (stderr, .stderr)]
        let pidfd = oxydra_pidfd_open(pid)
        var status: Int32 = 0
        var exited = false
        var timedOut = false
        var exitedAt: UInt64 = 0
        var terminatedAt: UInt64?
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 1)
        defer {
            buffer.deallocate()
            if pidfd >= 0 { close(pidfd) }
        }
        while true {
            if exited, open.isEmpty { break }
            let now = Monotonic.now
            if !timedOut, !exited, now >= deadline {
                timedOut = true
                _ = Glibc.kill(pid, SIGTERM)
            }
            if !exited, terminatedAt == nil, timedOut || monitor.locked({ killRequested }) { terminatedAt = now }
            if !exited, let since = terminatedAt, now >= since + Self.reaperGrace {
                _ = Glibc.kill(-pid, SIGKILL)
            }
            // After the shell exits, give stray holders of the pipes a moment, then stop reading.
            if exited, now >= exitedAt + 500_000_000 { break }
            var fds = open.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            if pidfd >= 0, !exited { fds.append(pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)) }
            var wait: Int32 =
                exited ? 50 : timedOut ? 100 : Int32(clamping: (deadline - min(now, deadline)) / 1_000_000 + 1)
            if pidfd < 0, !exited { wait = min(wait, 20) }
            let ready = poll(&fds, nfds_t(fds.count), wait)
            if ready < 0, errno != EINTR { break }
            var closed: [Int32] = []
            for (index, entry) in open.enumerated() where fds[index].revents != 0 {
                let count = read(entry.fd, buffer.baseAddress, buffer.count)
                if count > 0 {
                    output.append(UnsafeRawBufferPointer(rebasing: buffer[..<count]), from: entry.stream)
                } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
                    closed.append(entry.fd)
                }
            }
            for fd in closed {
                close(fd)
                open.removeAll { $0.fd == fd }
            }
            if !exited {
                var zombie = false
                if pidfd >= 0 {
                    zombie = fds.last!.revents != 0
                } else {
                    var info = siginfo_t()
                    zombie =
                        waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0
                        && info._sifields._kill.si_pid != 0
                }
                if zombie {
                    // Kill what the shell left behind while it is still a zombie (its pid, and so
                    // its group id, cannot be reused yet), then reap it.
                    _ = Glibc.kill(-pid, SIGKILL)
                    while waitpid(pid, &status, 0) < 0, errno == EINTR {}
                    exited = true
                    exitedAt = Monotonic.now
                }
            }
        }
        for entry in open { close(entry.fd) }
        if !exited {
            _ = Glibc.kill(-pid, SIGKILL)
            while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        }
        let killed = monitor.locked { killRequested }
        let exitStatus: ShellExitStatus
        if status & 0x7f == 0 {
            exitStatus = ShellExitStatus(code: Int((status >> 8) & 0xff), timedOut: timedOut)
        } else {
            exitStatus = ShellExitStatus(signal: Int(status & 0x7f), timedOut: timedOut && !killed)
        }
        output.finish(exitStatus)
    }
}

func errorText() -> String { String(cString: strerror(errno)) }
