/// A request to the shell daemon (`<ws>/ipc/shell-daemon.sock`), framed like the bootstrap envelope:
/// `{"op": "...", "payload": {"request_id": "...", ...}}`. Every request gets exactly one response
/// carrying the same `request_id`.
public struct ShellRequest: Sendable, Hashable {
    public enum Operation: Sendable, Hashable {
        /// Creates a shell session: the shell, working directory and environment later commands use.
        case spawnSession(shell: String?, cwd: String?, env: [String: String])
        /// Starts `command` in the session (one at a time); its output is read with `streamOutput`.
        case execCommand(sessionID: String, command: String, timeoutSeconds: Int?, maxOutputBytes: Int?)
        /// The next piece of the running command's output; waits up to `waitMilliseconds` for some.
        /// With `raw`, the bytes follow the reply as a frame of their own instead of a JSON string.
        case streamOutput(sessionID: String, maxBytes: Int?, waitMilliseconds: Int?, raw: Bool = false)
        /// Kills the session's running command (its whole process group) and forgets the session.
        case killSession(sessionID: String)
    }

    public var requestID: String
    public var operation: Operation

    public init(requestID: String, _ operation: Operation) {
        self.requestID = requestID
        self.operation = operation
    }

    public var op: String {
        switch operation {
        case .spawnSession: "spawn_session"
        case .execCommand: "exec_command"
        case .streamOutput: "stream_output"
        case .killSession: "kill_session"
        }
    }

    public var json: JSONValue {
        var payload: [String: JSONValue] = ["request_id": .string(requestID)]
        switch operation {
        case .spawnSession(let shell, let cwd, let env):
            if let shell { payload["shell"] = .string(shell) }
            if let cwd { payload["cwd"] = .string(cwd) }
            if !env.isEmpty { payload["env"] = .object(env.mapValues(JSONValue.string)) }
        case .execCommand(let session, let command, let timeout, let maxOutput):
            payload["session_id"] = .string(session)
            payload["command"] = .string(command)
            if let timeout { payload["timeout_secs"] = .integer(timeout) }
            if let maxOutput { payload["max_output_bytes"] = .integer(maxOutput) }
        case .streamOutput(let session, let maxBytes, let wait, let raw):
            payload["session_id"] = .string(session)
            if let maxBytes { payload["max_bytes"] = .integer(maxBytes) }
            if let wait { payload["wait_ms"] = .integer(wait) }
            if raw { payload["raw"] = true }
        case .killSession(let session):
            payload["session_id"] = .string(session)
        }
        return ["op": .string(op), "payload": .object(payload)]
    }

    /// The request id of a frame that may not parse as a whole, so an error can still name it.
    public static func requestID(in value: JSONValue) -> String? {
        guard case .object(let frame) = value, case .object(let payload)? = frame["payload"],
            case .string(let id)? = payload["request_id"]
        else { return nil }
        return id
    }

    public init(_ value: JSONValue) throws(WireError) {
        let frame = try FieldReader(value, path: "request")
        let op = try frame.nonBlankString("op")
        let payload = try frame.object("payload")
        requestID = try payload.nonBlankString("request_id")
        switch op {
        case "spawn_session":
            var env: [String: String] = [:]
            if let object = try payload.optionalObject("env") {
                for (key, value) in object.members {
                    guard case .string(let text) = value else {
                        throw WireError("request.payload.env.\(key): expected a string, got \(value.typeName)")
                    }
                    env[key] = text
                }
            }
            operation = .spawnSession(
                shell: try payload.optionalString("shell"), cwd: try payload.optionalString("cwd"), env: env)
        case "exec_command":
            let command = try payload.string("command")
            guard !command.allSatisfy(\.isWhitespace) else {
                throw WireError("request.payload.command: command must not be empty")
            }
            let timeout = try payload.optionalInt("timeout_secs")
            if let timeout, timeout <= 0 { throw WireError("request.payload.timeout_secs: must be positive") }
            let maxOutput = try payload.optionalInt("max_output_bytes")
            if let maxOutput, maxOutput <= 0 { throw WireError("request.payload.max_output_bytes: must be positive") }
            operation = .execCommand(
                sessionID: try payload.nonBlankString("session_id"), command: command, timeoutSeconds: timeout,
                maxOutputBytes: maxOutput)
        case "stream_output":
            let maxBytes = try payload.optionalInt("max_bytes")
            if let maxBytes, maxBytes <= 0 { throw WireError("request.payload.max_bytes: must be positive") }
            let wait = try payload.optionalInt("wait_ms")
            if let wait, wait < 0 { throw WireError("request.payload.wait_ms: must not be negative") }
            operation = .streamOutput(
                sessionID: try payload.nonBlankString("session_id"), maxBytes: maxBytes, waitMilliseconds: wait,
                raw: try payload.bool("raw", default: false))
        case "kill_session":
            operation = .killSession(sessionID: try payload.nonBlankString("session_id"))
        default:
            throw WireError(
                "request.op: unknown operation `\(op)` (spawn_session, exec_command, stream_output or kill_session)")
        }
    }
}

/// How a command ended.
public struct ShellExitStatus: Sendable, Hashable {
    /// The exit code, when the command exited normally.
    public var code: Int?
    /// The signal that killed it, when it was killed.
    public var signal: Int?
    /// True when the daemon killed it at its timeout.
    public var timedOut: Bool

    public init(code: Int? = nil, signal: Int? = nil, timedOut: Bool = false) {
        self.code = code
        self.signal = signal
        self.timedOut = timedOut
    }

    public var succeeded: Bool { code == 0 && !timedOut }

    public var json: JSONValue {
        .compactObject([
            "code": code.map(JSONValue.integer), "signal": signal.map(JSONValue.integer),
            "timed_out": .bool(timedOut),
        ])
    }

    public init(_ reader: FieldReader) throws(WireError) {
        code = try reader.optionalInt("code")
        signal = try reader.optionalInt("signal")
        timedOut = try reader.bool("timed_out", default: false)
    }
}

/// Which output stream a chunk came from.
public enum ShellStream: String, Sendable, Hashable {
    case stdout, stderr
}

/// One piece of a command's output. The last piece (`eof`) carries the exit status.
public struct ShellOutputChunk: Sendable, Hashable {
    public var stream: ShellStream
    /// UTF-8 text (invalid sequences replaced); chunks never split a character.
    public var data: String
    /// True when the command has ended and all its output has been delivered.
    public var eof: Bool
    /// Present with `eof`.
    public var exitStatus: ShellExitStatus?
    /// True when output beyond the command's `max_output_bytes` was discarded (the middle of it:
    /// the first and last halves are kept).
    public var truncated: Bool
    /// Bytes the command wrote in total (stdout and stderr), including discarded ones.
    public var totalBytes: Int
    /// Bytes dropped right before this piece (the gap between the kept head and tail of a long
    /// output); 0 normally.
    public var skippedBefore: Int
    /// A raw reply: the bytes (sent as the next frame, not in `data`).
    public var raw: [UInt8]?
    /// On the wire: how long the raw frame that follows this reply is.
    public var rawLength: Int { raw?.count ?? announcedRawLength }
    var announcedRawLength = 0

    public init(
        stream: ShellStream, data: String, eof: Bool, exitStatus: ShellExitStatus? = nil, truncated: Bool = false,
        totalBytes: Int = 0, skippedBefore: Int = 0, raw: [UInt8]? = nil, announcedRawLength: Int = 0
    ) {
        self.skippedBefore = skippedBefore
        self.raw = raw
        self.announcedRawLength = announcedRawLength
        self.stream = stream
        self.data = data
        self.eof = eof
        self.exitStatus = exitStatus
        self.truncated = truncated
        self.totalBytes = totalBytes
    }
}

/// The daemon's answer to a ``ShellRequest``.
public struct ShellResponse: Sendable, Hashable {
    public enum Body: Sendable, Hashable {
        case sessionSpawned(sessionID: String)
        case commandAccepted(sessionID: String)
        case output(sessionID: String, ShellOutputChunk)
        case sessionKilled(killed: Bool)
        case error(String)
    }

    /// Nil only for an error about a frame whose request id could not be read.
    public var requestID: String?
    public var body: Body

    public init(requestID: String?, _ body: Body) {
        self.requestID = requestID
        self.body = body
    }

    public var op: String {
        switch body {
        case .sessionSpawned: "spawn_session"
        case .commandAccepted: "exec_command"
        case .output: "stream_output"
        case .sessionKilled: "kill_session"
        case .error: "error"
        }
    }

    public var json: JSONValue {
        var payload: [String: JSONValue] = ["request_id": requestID.map(JSONValue.string) ?? .null]
        switch body {
        case .sessionSpawned(let session):
            payload["session_id"] = .string(session)
        case .commandAccepted(let session):
            payload["session_id"] = .string(session)
            payload["accepted"] = true
        case .output(let session, let chunk):
            payload["session_id"] = .string(session)
            payload["stream"] = .string(chunk.stream.rawValue)
            payload["data"] = .string(chunk.data)
            if let raw = chunk.raw, !raw.isEmpty { payload["raw_length"] = .integer(raw.count) }
            payload["eof"] = .bool(chunk.eof)
            if let status = chunk.exitStatus { payload["exit_status"] = status.json }
            payload["truncated"] = .bool(chunk.truncated)
            payload["total_bytes"] = .integer(chunk.totalBytes)
            if chunk.skippedBefore > 0 { payload["skipped_bytes_before"] = .integer(chunk.skippedBefore) }
        case .sessionKilled(let killed):
            payload["killed"] = .bool(killed)
        case .error(let message):
            payload["message"] = .string(message)
        }
        return ["op": .string(op), "payload": .object(payload)]
    }

    public init(_ value: JSONValue) throws(WireError) {
        let frame = try FieldReader(value, path: "response")
        let op = try frame.nonBlankString("op")
        let payload = try frame.object("payload")
        requestID = try payload.optionalString("request_id")
        switch op {
        case "spawn_session": body = .sessionSpawned(sessionID: try payload.nonBlankString("session_id"))
        case "exec_command": body = .commandAccepted(sessionID: try payload.nonBlankString("session_id"))
        case "stream_output":
            let streamName = try payload.string("stream")
            guard let stream = ShellStream(rawValue: streamName) else {
                throw WireError("response.payload.stream: unknown stream `\(streamName)` (stdout or stderr)")
            }
            body = .output(
                sessionID: try payload.nonBlankString("session_id"),
                ShellOutputChunk(
                    stream: stream, data: try payload.string("data"), eof: try payload.bool("eof", default: false),
                    exitStatus: try payload.optionalObject("exit_status").map { reader throws(WireError) in
                        try ShellExitStatus(reader)
                    },
                    truncated: try payload.bool("truncated", default: false),
                    totalBytes: try payload.optionalInt("total_bytes") ?? 0,
                    skippedBefore: try payload.optionalInt("skipped_bytes_before") ?? 0,
                    announcedRawLength: try payload.optionalInt("raw_length") ?? 0))
        case "kill_session": body = .sessionKilled(killed: try payload.bool("killed", default: false))
        case "error": body = .error(try payload.optionalString("message") ?? "the shell daemon reported an error")
        default: throw WireError("response.op: unknown operation `\(op)`")
        }
    }
}
