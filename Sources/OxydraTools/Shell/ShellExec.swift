import OxydraCore

/// What one command produced.
public struct ShellCommandResult: Sendable, Hashable {
    public var stdout: String
    public var stderr: String
    public var exitStatus: ShellExitStatus
    /// The daemon discarded output beyond its cap.
    public var truncated: Bool
    public var totalBytes: Int
}

/// Shell sessions on the daemon, one per agent session, each on its own connection (so one
/// session's long command never blocks another's). A broken connection is replaced once per call.
public actor ShellSessions {
    private struct Entry {
        var connection: ShellDaemonConnection
        var daemonSession: String
        var lastUsed: ContinuousClock.Instant
    }

    public let socketPath: String
    private let maxConnections: Int
    private var entries: [String: Entry] = [:]
    private var requestCounter = 0

    /// Settles once the daemon first answers (nil) or gives up (why not); nil when there is
    /// nothing to wait for. The guest serves before its shell sandbox is up: a call made
    /// meanwhile waits for it here.
    private let readiness: Task<String?, Never>?

    public init(socketPath: String, maxConnections: Int = 32, readiness: Task<String?, Never>? = nil) {
        self.socketPath = socketPath
        self.maxConnections = maxConnections
        self.readiness = readiness
    }

    private func nextID(_ prefix: String) -> String {
        requestCounter += 1
        return "\(prefix)-\(requestCounter)"
    }

    /// Runs `command` in `session`'s shell and collects its output to the end.
    public func run(
        _ command: String, session: String, timeoutSeconds: Int, maxOutputBytes: Int
    ) async throws -> ShellCommandResult {
        var attempt = 0
        while true {
            attempt += 1
            let entry = try await entry(for: session)
            var accepted = false
            do {
                let exec = try await entry.connection.call(
                    ShellRequest(
                        requestID: nextID("exec"),
                        .execCommand(
                            sessionID: entry.daemonSession, command: command, timeoutSeconds: timeoutSeconds,
                            maxOutputBytes: maxOutputBytes)))
                switch exec.body {
                case .commandAccepted: accepted = true
                case .error(let message): throw ShellClientError.refused(message)
                default: throw ShellClientError.protocolError("unexpected `\(exec.op)` reply to exec_command")
                }
                return try await collect(entry)
            } catch let error as ShellClientError {
                switch error {
                case .refused: throw error
                case .unavailable, .connectionLost, .protocolError:
                    drop(session)
                    // Reconnect once, but never rerun a command that may already have had effects.
                    if attempt == 1, !accepted { continue }
                    if accepted {
                        throw ShellClientError.connectionLost(
                            "the shell sandbox restarted while the command ran (\(error)); its output is lost and it "
                                + "may have run partly — check before running it again")
                    }
                    throw error
                }
            } catch {
                drop(session)
                throw error
            }
        }
    }

    private func collect(_ entry: Entry) async throws -> ShellCommandResult {
        var stdout: [UInt8] = []
        var stderr: [UInt8] = []
        while true {
            let response = try await entry.connection.call(
                ShellRequest(
                    requestID: nextID("stream"),
                    .streamOutput(sessionID: entry.daemonSession, maxBytes: 1 << 20, waitMilliseconds: 5000, raw: true))
            )
            switch response.body {
            case .output(_, let chunk):
                if chunk.skippedBefore > 0 {
                    let marker = Array("\n…[\(chunk.skippedBefore) bytes of output left out]…\n".utf8)
                    if chunk.stream == .stdout { stdout += marker } else { stderr += marker }
                }
                if let raw = chunk.raw {
                    if chunk.stream == .stdout { stdout += raw } else { stderr += raw }
                } else if chunk.stream == .stdout {
                    stdout += chunk.data.utf8
                } else {
                    stderr += chunk.data.utf8
                }
                if chunk.eof {
                    return ShellCommandResult(
                        stdout: String(decoding: stdout, as: UTF8.self),
                        stderr: String(decoding: stderr, as: UTF8.self),
                        exitStatus: chunk.exitStatus ?? ShellExitStatus(), truncated: chunk.truncated,
                        totalBytes: chunk.totalBytes)
                }
            case .error(let message): throw ShellClientError.refused(message)
            default: throw ShellClientError.protocolError("unexpected `\(response.op)` reply to stream_output")
            }
        }
    }

    private func entry(for session: String) async throws -> Entry {
        if var entry = entries[session], !entry.connection.isClosed {
            entry.lastUsed = .now
            entries[session] = entry
            return entry
        }
        drop(session)
        if let problem = await readiness?.value {
            throw ShellClientError.unavailable("the shell sandbox did not come up: \(problem)")
        }
        if entries.count >= maxConnections,
            let oldest = entries.min(by: { $0.value.lastUsed < $1.value.lastUsed })?.key
        {
            drop(oldest)
        }
        let connection = try await ShellDaemonConnection.connect(to: socketPath)
        let reply = try await connection.call(
            ShellRequest(requestID: nextID("spawn"), .spawnSession(shell: nil, cwd: "/shared", env: [:])))
        guard case .sessionSpawned(let id) = reply.body else {
            connection.close()
            if case .error(let message) = reply.body { throw ShellClientError.refused(message) }
            throw ShellClientError.protocolError("unexpected `\(reply.op)` reply to spawn_session")
        }
        let entry = Entry(connection: connection, daemonSession: id, lastUsed: .now)
        entries[session] = entry
        return entry
    }

    private func drop(_ session: String) {
        entries.removeValue(forKey: session)?.connection.close()
    }

    /// Closes every connection (the daemon kills their commands).
    public func closeAll() {
        for entry in entries.values { entry.connection.close() }
        entries = [:]
    }
}

/// `shell_exec`: runs a command line in the user's sandboxed shell after the policy allows every
/// program in it.
public struct ShellExecTool: TypedTool {
    public struct Arguments: Decodable, Sendable {
        var command: String
        var timeoutSecs: Int?
        enum CodingKeys: String, CodingKey {
            case command
            case timeoutSecs = "timeout_secs"
        }
    }

    let policy: ShellPolicy
    let sessions: ShellSessions
    let maxTimeout: Int
    let maxOutputBytes: Int

    public init(config: ShellToolsConfig, sessions: ShellSessions) {
        policy = ShellPolicy(config)
        self.sessions = sessions
        maxTimeout = config.commandTimeoutSecs
        maxOutputBytes = config.maxOutputBytes
    }

    public var safety: SafetyTier { .sideEffecting }
    public var timeout: Duration { .seconds(maxTimeout + 15) }
    public func risk(of arguments: JSONValue) -> ToolRisk {
        ShellRisk.assess(arguments["command"]?.stringValue ?? "")
    }
    public static let name = "shell_exec"

    public var declaration: ToolDeclaration {
        ToolDeclaration(
            name: Self.name,
            description: "Run a shell command line (POSIX sh: dash) in a sandbox that sees only /shared (the working "
                + "directory) and /tmp, with no network. Returns the exit status, stdout and stderr. Only "
                + "allowed programs may run; every program in a pipeline or list is checked.",
            parameters: Schema.object(
                [
                    "command": Schema.string(
                        "The command line, e.g. `ls -la` or `grep -rn TODO . | head`", minLength: 1),
                    "timeout_secs": Schema.integer(
                        "Seconds before the command is killed (default and maximum \(maxTimeout))", minimum: 1,
                        maximum: maxTimeout),
                ], required: ["command"]))
    }

    public func run(_ arguments: Arguments, context: ToolContext) async throws -> ToolOutput {
        if case .refused(let reason) = policy.check(arguments.command) {
            throw ToolError.blocked(tool: "shell_exec", reason: "CommandNotAllowed", detail: reason)
        }
        let result: ShellCommandResult
        do {
            result = try await sessions.run(
                arguments.command, session: context.session?.rawValue ?? "default",
                timeoutSeconds: min(arguments.timeoutSecs ?? maxTimeout, maxTimeout), maxOutputBytes: maxOutputBytes)
        } catch let error as ShellClientError {
            throw ToolError.executionFailed(tool: "shell_exec", message: error.description)
        }
        return ToolOutput(Self.render(result, timeout: min(arguments.timeoutSecs ?? maxTimeout, maxTimeout)))
    }

    static func render(_ result: ShellCommandResult, timeout: Int) -> String {
        var lines: [String] = []
        let status = result.exitStatus
        if status.timedOut {
            lines.append("exit_status: timed out after \(timeout) s (the command and its children were killed)")
        } else if let code = status.code {
            lines.append("exit_status: \(code)")
        } else if let signal = status.signal {
            lines.append("exit_status: killed by signal \(signal)")
        }
        let stdout = excerpt(result.stdout.trimmingTrailingNewlines, budget: 10 << 10)
        let stderr = excerpt(result.stderr.trimmingTrailingNewlines, budget: 5 << 10)
        if stdout.isEmpty, stderr.isEmpty { lines.append("(no output)") }
        if !stdout.isEmpty { lines.append("stdout:\n" + stdout) }
        if !stderr.isEmpty { lines.append("stderr:\n" + stderr) }
        if result.truncated || result.stdout.utf8.count > 10 << 10 || result.stderr.utf8.count > 5 << 10 {
            lines.append("[long output: \(result.totalBytes) bytes in total; showing the beginning and the end]")
        }
        return lines.joined(separator: "\n")
    }

    /// The text, or its first third and last two thirds of `budget` bytes around a marker (the end of
    /// a long log is usually what matters). Cuts fall on character boundaries.
    static func excerpt(_ text: String, budget: Int) -> String {
        let bytes = Array(text.utf8)
        guard bytes.count > budget else { return text }
        var headEnd = budget / 3
        while headEnd > 0, bytes[headEnd] & 0xC0 == 0x80 { headEnd -= 1 }
        var tailStart = bytes.count - (budget - budget / 3)
        while tailStart < bytes.count, bytes[tailStart] & 0xC0 == 0x80 { tailStart += 1 }
        return String(decoding: bytes[..<headEnd], as: UTF8.self)
            + "\n…[\(tailStart - headEnd) bytes left out]…\n" + String(decoding: bytes[tailStart...], as: UTF8.self)
    }
}

extension String {
    fileprivate var trimmingTrailingNewlines: String {
        var text = Substring(self)
        while text.last == "\n" || text.last == "\r" { text = text.dropLast() }
        return String(text)
    }
}
