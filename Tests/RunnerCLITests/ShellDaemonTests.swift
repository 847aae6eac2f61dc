import Foundation
import OxydraCore
import OxydraSandbox
import OxydraTesting
import OxydraTools
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A `shell-daemon` process for one test: started directly (`--socket`) or inside its bubblewrap
/// sandbox (`sandbox`), killed at the end.
final class DaemonFixture: @unchecked Sendable {
    let directory: TemporaryDirectory
    let socket: String
    let pid: pid_t
    let parent = ParentThread()
    var shared: String { directory.path + "/shared" }
    var tmp: String { directory.path + "/tmp" }
    var log: String { directory.path + "/daemon.log" }

    init(
        sandboxed: Bool, extraArguments: [String] = [], environment: [String] = [],
        executable: String = ChildProcess.path(of: "shell-daemon")
    ) throws {
        directory = try TemporaryDirectory(prefix: "oxydra-shell")
        _ = try directory.createDirectory("shared")
        _ = try directory.createDirectory("tmp")
        socket = directory.path + "/shell.sock"
        var arguments: [String]
        if sandboxed {
            guard let bwrap = ShellSandbox.findBubblewrap(environment: ["PATH": "/usr/bin:/bin:/usr/local/bin"]) else {
                throw TestSupportError("bubblewrap is not installed")
            }
            arguments = [
                "--sandbox", "--socket", socket, "--bwrap", bwrap, "--shared", directory.path + "/shared", "--tmp",
                directory.path + "/tmp", "--etc",
                directory.path + "/etc", "--parent", String(getpid()),
            ]
        } else {
            arguments = ["--socket", socket]
        }
        arguments += extraArguments
        let logFD = open(directory.path + "/daemon.log", O_WRONLY | O_CREAT | O_APPEND, 0o600)
        defer { close(logFD) }
        var options = ProcessSpawner.Options(standardInput: logFD, standardOutput: logFD, standardError: logFD)
        options.deathSignal = SIGKILL
        let launch: @Sendable () throws -> pid_t = { [arguments, options] in
            try ProcessSpawner.spawn(
                executable, arguments: arguments, environment: ["PATH=/usr/bin:/bin"] + environment, options: options)
        }
        pid = try parent.run(launch)
        for _ in 0..<400 where access(socket, F_OK) != 0 { usleep(10_000) }
    }

    func stop() {
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        parent.finish()
        directory.remove()
    }

    func connect() async throws -> ShellDaemonConnection {
        var lastError: (any Error)?
        for _ in 0..<200 {
            do {
                return try await ShellDaemonConnection.connect(to: socket)
            } catch {
                lastError = error
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        throw lastError!
    }
}

/// Request helpers over one connection.
struct DaemonSession {
    let connection: ShellDaemonConnection
    let id: String
    static let counter = Counter()

    final class Counter: @unchecked Sendable {
        private var value = 0
        private let lock = NSLock()
        func next() -> String {
            lock.withLock {
                value += 1
                return "t\(value)"
            }
        }
    }

    static func open(_ connection: ShellDaemonConnection, cwd: String? = nil) async throws -> DaemonSession {
        let reply = try await connection.call(
            ShellRequest(requestID: counter.next(), .spawnSession(shell: nil, cwd: cwd, env: ["GREETING": "hi"])))
        guard case .sessionSpawned(let id) = reply.body else { throw TestSupportError("spawn failed: \(reply)") }
        return DaemonSession(connection: connection, id: id)
    }

    func start(_ command: String, timeout: Int? = nil, maxOutput: Int? = nil) async throws {
        let reply = try await connection.call(
            ShellRequest(
                requestID: Self.counter.next(),
                .execCommand(sessionID: id, command: command, timeoutSeconds: timeout, maxOutputBytes: maxOutput)))
        guard case .commandAccepted = reply.body else { throw TestSupportError("exec refused: \(reply)") }
    }

    func next(maxBytes: Int? = nil, wait: Int = 5000) async throws -> ShellOutputChunk {
        let reply = try await connection.call(
            ShellRequest(
                requestID: Self.counter.next(), .streamOutput(sessionID: id, maxBytes: maxBytes, waitMilliseconds: wait)
            ))
        guard case .output(_, let chunk) = reply.body else { throw TestSupportError("stream failed: \(reply)") }
        return chunk
    }

    /// Runs `command` to the end: its chunks in order and the final one.
    func run(_ command: String, timeout: Int? = nil, maxOutput: Int? = nil, maxBytes: Int? = nil) async throws
        -> (chunks: [ShellOutputChunk], last: ShellOutputChunk)
    {
        try await start(command, timeout: timeout, maxOutput: maxOutput)
        var chunks: [ShellOutputChunk] = []
        while true {
            let chunk = try await next(maxBytes: maxBytes)
            if !chunk.data.isEmpty { chunks.append(chunk) }
            if chunk.eof { return (chunks, chunk) }
        }
    }
}

extension [ShellOutputChunk] {
    func text(_ stream: ShellStream) -> String { filter { $0.stream == stream }.map(\.data).joined() }
}

func processIsGone(_ pid: pid_t) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
    // A killed child of a reaper-less init lingers as a zombie: dead all the same.
    return stat.split(separator: ")").last?.split(separator: " ").first == "Z"
}

@Suite("Shell daemon", .serialized, .timeLimit(.minutes(1)))
struct ShellDaemonTests {
    @Test func roundTripWithExitStatusAndStreams() async throws {
        let daemon = try DaemonFixture(sandboxed: false)
        defer { daemon.stop() }
        let session = try await DaemonSession.open(try await daemon.connect(), cwd: daemon.shared)
        let (chunks, last) = try await session.run("echo out; echo $GREETING; echo err >&2; pwd; exit 7")
        #expect(chunks.text(.stdout) == "out\nhi\n\(daemon.shared)\n")
        #expect(chunks.text(.stderr) == "err\n")
        #expect(last.exitStatus == ShellExitStatus(code: 7))
        #expect(!last.truncated)
        let killed = try await session.run("kill -9 $$")
        #expect(killed.last.exitStatus == ShellExitStatus(signal: 9))
        let missing = try await session.run("definitely-not-a-command-xyz")
        #expect(missing.last.exitStatus?.code == 127)
        #expect(missing.chunks.text(.stderr).contains("not found"))
    }

    @Test func outputStreamsInOrderWhileTheCommandRuns() async throws {
        let daemon = try DaemonFixture(sandboxed: false)
        defer { daemon.stop() }
        let session = try await DaemonSession.open(try await daemon.connect())
        let clock = ContinuousClock()
        let start = clock.now
        try await session.start("echo a; sleep 0.4; echo b >&2; sleep 0.4; echo c")
        var seen: [(ShellStream, String, Duration)] = []
        while true {
            let chunk = try await session.next()
            if !chunk.data.isEmpty { seen.append((chunk.stream, chunk.data, clock.now - start)) }
            if chunk.eof { break }
        }
        #expect(seen.map(\.1) == ["a\n", "b\n", "c\n"])
        #expect(seen.map(\.0) == [.stdout, .stderr, .stdout])
        // The first line arrives long before the command ends.
        #expect(seen[0].2 < .milliseconds(350), "first chunk after \(seen[0].2)")
        #expect(seen[2].2 >= .milliseconds(800))
    }

    @Test func timeoutKillsTheWholeProcessGroup() async throws {
        let daemon = try DaemonFixture(sandboxed: false)
        defer { daemon.stop() }
        let session = try await DaemonSession.open(try await daemon.connect(), cwd: daemon.tmp)
        let clock = ContinuousClock()
        let start = clock.now
        let (_, last) = try await session.run("sleep 30 & echo $! > child.pid; sleep 30", timeout: 1)
        #expect(clock.now - start < .seconds(5))
        #expect(last.exitStatus?.timedOut == true)
        #expect(last.exitStatus?.signal == Int(SIGKILL))
        let child = try String(contentsOfFile: daemon.tmp + "/child.pid", encoding: .utf8).trimmed
        let pid = pid_t(child)!
        for _ in 0..<100 where !processIsGone(pid) { usleep(20_000) }
        #expect(processIsGone(pid), "the background sleep \(pid) survived the timeout")
        // Background jobs of a command that exits normally do not outlive it either.
        let quick = try await session.run("sleep 30 & echo $! > bg.pid; echo done")
        #expect(quick.last.exitStatus?.code == 0)
        let background = pid_t(try String(contentsOfFile: daemon.tmp + "/bg.pid", encoding: .utf8).trimmed)!
        for _ in 0..<100 where !processIsGone(background) { usleep(20_000) }
        #expect(processIsGone(background))
    }

    /// A daemon made with a double fork and `setsid` leaves the command's process group and
    /// session, so a group kill misses it; the command's reaper still takes it down — when the
    /// command exits, when it times out and when it is killed.
    @Test(arguments: ["exit", "timeout", "kill"])
    func aDoubleForkedDaemonDoesNotOutliveItsCommand(ending: String) async throws {
        let daemon = try DaemonFixture(sandboxed: false)
        defer { daemon.stop() }
        let session = try await DaemonSession.open(try await daemon.connect(), cwd: daemon.tmp)
        let escape =
            "( setsid sh -c 'echo $$ > escaped.pid; while :; do date >> beat.txt; sleep 0.05; done' </dev/null >/dev/null 2>&1 & ) ; "
            + "while [ ! -s escaped.pid ]; do sleep 0.01; done"
        switch ending {
        case "exit":
            let run = try await session.run(escape + "; echo started")
            #expect(run.last.exitStatus?.code == 0)
        case "timeout":
            let run = try await session.run(escape + "; sleep 30", timeout: 1)
            #expect(run.last.exitStatus?.timedOut == true)
        default:
            try await session.start(escape + "; echo started; sleep 30")
            while !FileManager.default.fileExists(atPath: daemon.tmp + "/escaped.pid") { usleep(10_000) }
            usleep(100_000)
            let reply = try await session.connection.call(
                ShellRequest(requestID: DaemonSession.counter.next(), .killSession(sessionID: session.id)))
            #expect(reply.op != "error", "\(reply)")
        }
        let escaped = pid_t(try String(contentsOfFile: daemon.tmp + "/escaped.pid", encoding: .utf8).trimmed)!
        for _ in 0..<150 where !processIsGone(escaped) { usleep(20_000) }
        #expect(processIsGone(escaped), "the setsid daemon \(escaped) outlived its command (\(ending))")
        // And it has stopped writing.
        let size = (try? FileManager.default.attributesOfItem(atPath: daemon.tmp + "/beat.txt")[.size] as? Int) ?? 0
        usleep(300_000)
        let later = (try? FileManager.default.attributesOfItem(atPath: daemon.tmp + "/beat.txt")[.size] as? Int) ?? 0
        #expect(size == later, "something is still writing to /tmp/beat.txt")
    }

    @Test func outputIsCappedAndChunksNeverSplitACharacter() async throws {
        let daemon = try DaemonFixture(sandboxed: false)
        defer { daemon.stop() }
        let session = try await DaemonSession.open(try await daemon.connect())
        let big = try await session.run("head -c 200000 /dev/zero | tr '\\0' a", maxOutput: 1000)
        #expect(big.chunks.text(.stdout).count == 1000)
        #expect(big.last.truncated)
        #expect(big.last.totalBytes == 200_000)
        #expect(big.last.exitStatus?.code == 0)
        // The first and last halves are kept, the gap is reported where it is.
        let long = try await session.run("seq 1 100000; echo tail-marker >&2", maxOutput: 2000)
        let kept = long.chunks.map(\.data).joined()
        #expect(kept.hasPrefix("1\n2\n3\n"))
        #expect(long.chunks.text(.stdout).hasSuffix("99999\n100000\n"))
        #expect(long.chunks.text(.stderr) == "tail-marker\n")
        let gap = long.chunks.map(\.skippedBefore).reduce(0, +)
        #expect(gap > 0)
        #expect(kept.utf8.count + gap == long.last.totalBytes)
        #expect(kept.utf8.count <= 2000)
        // Three-byte characters read 4 bytes at a time: every piece is whole characters.
        let text = String(repeating: "€uro ", count: 50)
        let multibyte = try await session.run("printf '%s' '\(text)'", maxBytes: 4)
        #expect(multibyte.chunks.count > 10)
        #expect(multibyte.chunks.allSatisfy { !$0.data.contains("\u{FFFD}") })
        #expect(multibyte.chunks.text(.stdout) == text)
    }

    @Test func rawRepliesCarryTheSameBytesAsText() async throws {
        let daemon = try DaemonFixture(sandboxed: false)
        defer { daemon.stop() }
        let connection = try await daemon.connect()
        let session = try await DaemonSession.open(connection)
        let command = "printf 'h\\303\\251llo\\n'; printf 'oops\\n' >&2; seq 1 20000"
        let text = try await session.run(command)
        try await session.start(command)
        var stdout: [UInt8] = []
        var stderr: [UInt8] = []
        var frames = 0
        while true {
            let reply = try await connection.call(
                ShellRequest(
                    requestID: "raw\(frames)",
                    .streamOutput(sessionID: session.id, maxBytes: 4096, waitMilliseconds: 2000, raw: true)))
            guard case .output(_, let chunk) = reply.body else { throw TestSupportError("stream failed: \(reply)") }
            frames += 1
            #expect(chunk.data.isEmpty)
            if chunk.stream == .stdout { stdout += chunk.raw ?? [] } else { stderr += chunk.raw ?? [] }
            if chunk.eof {
                #expect(chunk.exitStatus?.code == 0)
                break
            }
        }
        #expect(frames > 10)
        #expect(String(decoding: stdout, as: UTF8.self) == text.chunks.text(.stdout))
        #expect(String(decoding: stderr, as: UTF8.self) == "oops\n")
        // The connection is still in step: a plain request right after works.
        let after = try await session.run("echo in step")
        #expect(after.chunks.text(.stdout) == "in step\n")
    }

    @Test func badFramesGetErrorsAndTheDaemonKeepsServing() async throws {
        let daemon = try DaemonFixture(sandboxed: false)
        defer { daemon.stop() }
        let fd = try UnixSocket.connect(to: daemon.socket)
        defer { close(fd) }
        func exchange(_ body: [UInt8]) throws -> JSONValue {
            let frame = LengthPrefixedFrame.encode(body)
            _ = frame.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            var header = [UInt8](repeating: 0, count: 4)
            guard recv(fd, &header, 4, Int32(MSG_WAITALL)) == 4 else { throw TestSupportError("no reply") }
            let length = header.reduce(0) { $0 << 8 | Int($1) }
            var reply = [UInt8](repeating: 0, count: length)
            guard recv(fd, &reply, length, Int32(MSG_WAITALL)) == length else { throw TestSupportError("short reply") }
            return try JSONValue(parsing: String(decoding: reply, as: UTF8.self))
        }
        let garbage = try ShellResponse(exchange(Array("{not json".utf8)))
        #expect(garbage.requestID == nil)
        guard case .error(let message) = garbage.body else { throw TestSupportError("expected an error") }
        #expect(message.contains("invalid shell-daemon request frame"))
        let unknown = try ShellResponse(exchange(Array(#"{"op":"format_disk","payload":{"request_id":"x1"}}"#.utf8)))
        #expect(unknown.requestID == "x1")
        guard case .error(let unknownMessage) = unknown.body else { throw TestSupportError("expected an error") }
        #expect(unknownMessage.contains("unknown operation `format_disk`"))
        let empty = try ShellResponse(
            exchange(
                Array(#"{"op":"exec_command","payload":{"request_id":"x2","session_id":"s","command":"  "}}"#.utf8)))
        guard case .error(let emptyMessage) = empty.body else { throw TestSupportError("expected an error") }
        #expect(emptyMessage.contains("command must not be empty"))
        let missing = try ShellResponse(
            exchange(Array(#"{"op":"stream_output","payload":{"request_id":"x3","session_id":"nope"}}"#.utf8)))
        #expect(missing.body == .error("session `nope` not found"))
        // Still serving on the same connection.
        let spawned = try ShellResponse(exchange(Array(#"{"op":"spawn_session","payload":{"request_id":"x4"}}"#.utf8)))
        guard case .sessionSpawned = spawned.body else { throw TestSupportError("expected a session: \(spawned)") }
        // A frame over the size limit ends the connection with an error; others are unaffected.
        var huge: [UInt8] = [0x7f, 0xff, 0xff, 0xff]
        huge += Array("{}".utf8)
        _ = huge.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        let other = try await DaemonSession.open(try await daemon.connect())
        #expect(try await other.run("echo still here").chunks.text(.stdout) == "still here\n")
    }

    @Test func killSessionAndClosingTheConnectionStopCommands() async throws {
        let daemon = try DaemonFixture(sandboxed: false)
        defer { daemon.stop() }
        let connection = try await daemon.connect()
        let session = try await DaemonSession.open(connection, cwd: daemon.tmp)
        try await session.start("echo $$ > shell.pid; sleep 30")
        for _ in 0..<200 where access(daemon.tmp + "/shell.pid", F_OK) != 0 { usleep(10_000) }
        usleep(50_000)
        let first = pid_t(try String(contentsOfFile: daemon.tmp + "/shell.pid", encoding: .utf8).trimmed)!
        let reply = try await connection.call(ShellRequest(requestID: "k", .killSession(sessionID: session.id)))
        #expect(reply.body == .sessionKilled(killed: true))
        for _ in 0..<100 where !processIsGone(first) { usleep(20_000) }
        #expect(processIsGone(first))

        let second = try await DaemonSession.open(try await daemon.connect(), cwd: daemon.tmp)
        try await second.start("echo $$ > shell2.pid; sleep 30")
        for _ in 0..<200 where access(daemon.tmp + "/shell2.pid", F_OK) != 0 { usleep(10_000) }
        usleep(50_000)
        let pid = pid_t(try String(contentsOfFile: daemon.tmp + "/shell2.pid", encoding: .utf8).trimmed)!
        second.connection.close()
        for _ in 0..<100 where !processIsGone(pid) { usleep(20_000) }
        #expect(processIsGone(pid), "closing the connection should kill its commands")
    }
}
