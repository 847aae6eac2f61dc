import OxydraCore
import OxydraSandbox
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The shell sidecar's RPC server: length-prefixed JSON requests on a Unix socket, one thread per
/// connection, one watcher thread per running command. Sessions belong to the connection that
/// created them and are killed when it closes, so commands never outlive their client.
public final class ShellDaemonServer: Sendable {
    /// Largest request frame accepted (8 MiB).
    public static let maxFrameLength = 8 << 20
    /// Largest piece of output in one `stream_output` reply.
    public static let maxChunkBytes = 1 << 20

    public struct Settings: Sendable {
        /// Shell used when `spawn_session` names none: dash, whose grammar the command-line policy
        /// parses (`ShellCommandLine`), so what is checked is what runs.
        public var defaultShell = ShellSandbox.shell
        /// Timeout when `exec_command` gives none, and the largest one accepted.
        public var defaultTimeout = Duration.seconds(60)
        public var maxTimeout = Duration.seconds(3600)
        /// Output kept per command when `exec_command` gives no `max_output_bytes`, and the largest.
        public var defaultMaxOutputBytes = 1 << 20
        public var maxOutputBytes = 64 << 20
        /// The environment commands start with; a session's `env` is added on top.
        public var environment: [String: String]

        public init(environment: [String: String]) { self.environment = environment }
    }

    private let listener: Int32
    private let settings: Settings
    private let sessions = Mutex<[String: Session]>([:])
    private let counter = Atomic<Int>(0)
    private let sessionCounter = Atomic<Int>(0)

    final class Session: @unchecked Sendable {
        let id: String
        let shell: String
        let cwd: String?
        let environment: [String]
        let owner: Int
        /// Guarded by the server's session table lock.
        var run: CommandRun?

        init(id: String, shell: String, cwd: String?, environment: [String], owner: Int) {
            self.id = id
            self.shell = shell
            self.cwd = cwd
            self.environment = environment
            self.owner = owner
        }
    }

    /// Serves on an already listening socket (e.g. one inherited from the sandbox supervisor).
    public init(listeningDescriptor: Int32, settings: Settings) {
        listener = listeningDescriptor
        self.settings = settings
        _ = fcntl(listener, F_SETFD, FD_CLOEXEC)
    }

    /// Accepts connections until the listening socket fails; blocks the calling thread.
    public func run() -> Never {
        while true {
            let connection = accept(listener, nil, nil)
            if connection < 0 {
                if errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE {
                    if errno == EMFILE || errno == ENFILE { usleep(50_000) }
                    continue
                }
                StandardStreams.write("shell-daemon: accept failed: \(errorText()); exiting\n", to: 2)
                exit(1)
            }
            // Children never inherit it either way: spawning closes every descriptor above 2.
            _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
            let owner = counter.wrappingAdd(1, ordering: .relaxed).newValue
            startThread { [self] in serve(connection, owner: owner) }
        }
    }

    // MARK: Connections

    private func serve(_ fd: Int32, owner: Int) {
        defer {
            close(fd)
            let orphaned = sessions.withLock { table in
                let mine = table.values.filter { $0.owner == owner }
                for session in mine { table[session.id] = nil }
                return mine.compactMap(\.run)
            }
            for run in orphaned { run.kill() }
        }
        var decoder = LengthPrefixedDecoder(maxLength: Self.maxFrameLength)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 1)
        defer { buffer.deallocate() }
        while true {
            let body: [UInt8]
            do {
                guard let frame = try decoder.next() else {
                    let count = recv(fd, buffer.baseAddress, buffer.count, 0)
                    if count < 0, errno == EINTR { continue }
                    guard count > 0 else { return }
                    decoder.append(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
                    continue
                }
                body = frame
            } catch {
                // The stream cannot be resynchronised after a bad length; say why and hang up.
                send(ShellResponse(requestID: nil, .error("invalid shell-daemon request frame: \(error)")), to: fd)
                return
            }
            let response = handle(body, owner: owner, client: fd)
            guard send(response, to: fd) else { return }
            // A raw `stream_output` reply is followed by its bytes as a frame of their own.
            if case .output(_, let chunk) = response.body, let raw = chunk.raw, !raw.isEmpty {
                guard sendFrame(LengthPrefixedFrame.encode(raw), to: fd) else { return }
            }
        }
    }

    private func handle(_ body: [UInt8], owner: Int, client: Int32) -> ShellResponse {
        let value: JSONValue
        do {
            value = try body.withUnsafeBufferPointer { buffer throws(JSONSyntaxError) in try JSONParser.parse(buffer) }
        } catch {
            return ShellResponse(requestID: nil, .error("invalid shell-daemon request frame: \(error)"))
        }
        let request: ShellRequest
        do {
            request = try ShellRequest(value)
        } catch {
            return ShellResponse(
                requestID: ShellRequest.requestID(in: value), .error("invalid shell-daemon request frame: \(error)"))
        }
        return ShellResponse(requestID: request.requestID, perform(request.operation, owner: owner, client: client))
    }

    private func perform(_ operation: ShellRequest.Operation, owner: Int, client: Int32) -> ShellResponse.Body {
        switch operation {
        case .spawnSession(let shell, let cwd, let env):
            let number = sessionCounter.wrappingAdd(1, ordering: .relaxed).newValue
            let digits = String(number)
            let id = "session-" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits
            var environment = settings.environment
            for (key, value) in env {
                guard !key.isEmpty, !key.contains("="), !key.contains("\0"), !value.contains("\0") else {
                    return .error("env: `\(key)` is not a valid variable name")
                }
                environment[key] = value
            }
            let session = Session(
                id: id, shell: shell ?? settings.defaultShell, cwd: cwd,
                environment: environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }, owner: owner)
            sessions.withLock { $0[id] = session }
            return .sessionSpawned(sessionID: id)

        case .execCommand(let sessionID, let command, let timeoutSeconds, let maxOutput):
            let timeout = timeoutSeconds.map { Duration.seconds($0) } ?? settings.defaultTimeout
            guard timeout <= settings.maxTimeout else {
                return .error(
                    "timeout_secs \(timeoutSeconds!) exceeds the limit of \(settings.maxTimeout.components.seconds)")
            }
            let limit = min(maxOutput ?? settings.defaultMaxOutputBytes, settings.maxOutputBytes)
            guard !command.contains("\0") else { return .error("command must not contain NUL bytes") }
            let lookup: Result<Session, ShellDaemonError> = sessions.withLock { table in
                guard let session = table[sessionID], session.owner == owner else {
                    return .failure(ShellDaemonError("session `\(sessionID)` not found"))
                }
                if let run = session.run, !run.output.isFinished {
                    return .failure(
                        ShellDaemonError(
                            "session `\(sessionID)` is still running a command; read its output to the end or kill the session"
                        ))
                }
                return .success(session)
            }
            let session: Session
            switch lookup {
            case .success(let found): session = found
            case .failure(let error): return .error(error.message)
            }
            do {
                let run = try CommandRun(
                    shell: session.shell, command: command, cwd: session.cwd, environment: session.environment,
                    timeout: timeout, maxOutputBytes: limit)
                sessions.withLock { _ in session.run = run }
                return .commandAccepted(sessionID: sessionID)
            } catch {
                return .error(error.message)
            }

        case .streamOutput(let sessionID, let maxBytes, let waitMilliseconds, let raw):
            let run: CommandRun?? = sessions.withLock { table in
                guard let session = table[sessionID], session.owner == owner else { return nil }
                return .some(session.run)
            }
            guard let found = run else { return .error("session `\(sessionID)` not found") }
            guard let command = found else {
                return .error("session `\(sessionID)` has not run a command yet (send exec_command first)")
            }
            // Wait in short slices, checking that the client is still there: a client that goes away
            // (a cancelled tool call) gets its commands killed now, not when the long-poll ends.
            let deadline = Monotonic.now + UInt64(min(waitMilliseconds ?? 1000, 30_000)) * 1_000_000
            let limit = min(maxBytes ?? 64 << 10, Self.maxChunkBytes)
            while true {
                let now = Monotonic.now
                let slice = min(deadline > now ? deadline - now : 0, 100_000_000)
                let chunk = command.output.next(maxBytes: limit, waitNanoseconds: slice, raw: raw)
                if !chunk.data.isEmpty || chunk.rawLength > 0 || chunk.eof || chunk.skippedBefore > 0
                    || Monotonic.now >= deadline
                {
                    return .output(sessionID: sessionID, chunk)
                }
                if Self.peerClosed(client) { return .error("the client closed the connection") }
            }

        case .killSession(let sessionID):
            let removed: Session? = sessions.withLock { table in
                guard let session = table[sessionID], session.owner == owner else { return nil }
                table[sessionID] = nil
                return session
            }
            guard let removed else { return .sessionKilled(killed: false) }
            if let run = removed.run, !run.output.isFinished { run.kill() }
            return .sessionKilled(killed: true)
        }
    }

    /// Whether the peer has closed its end (a zero-byte peek without waiting).
    static func peerClosed(_ fd: Int32) -> Bool {
        var byte: UInt8 = 0
        let got = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        return got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
    }

    @discardableResult
    private func send(_ response: ShellResponse, to fd: Int32) -> Bool {
        sendFrame(LengthPrefixedFrame.encode(response.json), to: fd)
    }

    private func sendFrame(_ frame: [UInt8], to fd: Int32) -> Bool {
        var sent = 0
        while sent < frame.count {
            let written = frame[sent...].withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if written < 0 {
                if errno == EINTR { continue }
                return false
            }
            sent += written
        }
        return true
    }
}

/// A problem starting the daemon or serving a request.
public struct ShellDaemonError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
