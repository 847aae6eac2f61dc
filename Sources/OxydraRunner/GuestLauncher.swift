import OxydraConfig
import OxydraCore
import OxydraSandbox

#if canImport(Glibc)
    import Glibc
#endif

/// Launches a guest process that outlives the runner.
public enum DetachedProcess {
    /// Starts `executable` in a new session with `input` written to its standard input (then closed)
    /// and its output appended to the given log files. Returns the pid.
    public static func launch(
        _ executable: String, arguments: [String], environment: [String: String], workingDirectory: String,
        input: [UInt8], standardOutput: String, standardError: String
    ) throws(RunnerError) -> Int32 {
        var pipe: [Int32] = [-1, -1]
        guard Glibc.pipe(&pipe) == 0 else { throw RunnerError("cannot create a pipe: \(errorText())") }
        let out = open(standardOutput, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        let err = open(standardError, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        defer {
            if out >= 0 { close(out) }
            if err >= 0 { close(err) }
        }
        guard out >= 0, err >= 0 else {
            close(pipe[0])
            close(pipe[1])
            throw RunnerError(
                "cannot open the guest's log files in \(FilePaths.parent(standardOutput)): \(errorText())")
        }
        var options = ProcessSpawner.Options(standardInput: pipe[0], standardOutput: out, standardError: err)
        options.workingDirectory = workingDirectory
        options.newSession = true
        let pid: Int32
        do {
            pid = try ProcessSpawner.spawn(
                executable, arguments: arguments, environment: environment.map { "\($0.key)=\($0.value)" },
                options: options)
        } catch {
            close(pipe[0])
            close(pipe[1])
            throw RunnerError("cannot start \(executable): \(error)")
        }
        close(pipe[0])
        // The guest reads exactly one frame; a closed pipe afterwards is fine.
        var remaining = input[...]
        while !remaining.isEmpty {
            let written = remaining.withUnsafeBytes { Glibc.write(pipe[1], $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                break
            }
            remaining = remaining.dropFirst(written)
        }
        close(pipe[1])
        return pid
    }

    /// Whether `pid` (a child of this process) has exited; reaps it if so.
    public static func hasExited(_ pid: Int32) -> (exited: Bool, status: Int32) {
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        if result == pid { return (true, status) }
        if result < 0 && errno == ECHILD { return (kill(pid, 0) != 0, 0) }
        return (false, 0)
    }

    /// Whether any process with this pid is alive.
    public static func isAlive(_ pid: Int32) -> Bool {
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid { return false }
        return kill(pid, 0) == 0
    }

    /// The parent of `pid` (from `/proc`), or nil when it is gone: tells whether a pid read from a
    /// state file is still the child it was written for, not a later process with a reused pid.
    public static func parent(of pid: Int32) -> Int32? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        // "pid (comm) state ppid …": the command name may hold spaces and parentheses.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 ? Int32(fields[1]) : nil
    }

    private static func errorText() -> String { String(cString: strerror(errno)) }
}
