/// A request on the guest's control socket (`<ws>/ipc/runner-control.sock`), framed like the
/// bootstrap envelope. Only the runner (same user, socket mode 0600) can connect.
public enum ControlRequest: Sendable, Hashable {
    case healthCheck
    case shutdownUser
    /// Log lines of `role` (`runtime`, `sidecar` or `all`): the last `tail` lines, or everything after
    /// byte `offset` of the log (for `--follow`).
    case logs(role: String, tail: Int, offset: Int?)

    public var json: JSONValue {
        switch self {
        case .healthCheck: ["op": "health_check"]
        case .shutdownUser: ["op": "shutdown_user"]
        case .logs(let role, let tail, let offset):
            .compactObject([
                "op": "logs", "role": .string(role), "tail": .integer(tail), "offset": offset.map(JSONValue.integer),
            ])
        }
    }

    public init(_ value: JSONValue) throws(WireError) {
        let reader = try FieldReader(value, path: "control")
        switch try reader.nonBlankString("op") {
        case "health_check": self = .healthCheck
        case "shutdown_user": self = .shutdownUser
        case "logs":
            let tail = try reader.optionalInt("tail") ?? 200
            guard (1...10_000).contains(tail) else { throw WireError("control.tail: must be between 1 and 10000") }
            let offset = try reader.optionalInt("offset")
            if let offset, offset < 0 { throw WireError("control.offset: must not be negative") }
            self = .logs(role: try reader.optionalString("role") ?? "runtime", tail: tail, offset: offset)
        case let other:
            throw WireError("control.op: unknown operation `\(other)` (health_check, shutdown_user or logs)")
        }
    }
}

/// What the guest reports to `runner status`.
public struct GuestHealth: Sendable, Hashable {
    public var userID: UserID
    public var healthy: Bool
    public var startupStatus: StartupStatus
    public var gatewayEndpoint: String
    public var pid: Int
    public var uptimeSeconds: Int
    public var openSessions: Int
    public var activeTurns: Int
    public var logDirectory: String
    public var shuttingDown: Bool
    /// Chat channels running in the guest, by id (`telegram`).
    public var channels: [String: ChannelHealth] = [:]

    public init(
        userID: UserID, healthy: Bool, startupStatus: StartupStatus, gatewayEndpoint: String, pid: Int,
        uptimeSeconds: Int, openSessions: Int, activeTurns: Int, logDirectory: String, shuttingDown: Bool = false
    ) {
        self.userID = userID
        self.healthy = healthy
        self.startupStatus = startupStatus
        self.gatewayEndpoint = gatewayEndpoint
        self.pid = pid
        self.uptimeSeconds = uptimeSeconds
        self.openSessions = openSessions
        self.activeTurns = activeTurns
        self.logDirectory = logDirectory
        self.shuttingDown = shuttingDown
    }

    public var json: JSONValue {
        [
            "user_id": .string(userID.rawValue), "healthy": .bool(healthy), "startup_status": startupStatus.json,
            "gateway_endpoint": .string(gatewayEndpoint), "pid": .integer(pid), "uptime_secs": .integer(uptimeSeconds),
            "open_sessions": .integer(openSessions), "active_turns": .integer(activeTurns),
            "log_dir": .string(logDirectory), "shutting_down": .bool(shuttingDown),
            "channels": .object(channels.mapValues(\.json)),
        ]
    }

    public init(_ reader: FieldReader) throws(WireError) {
        userID = UserID(try reader.string("user_id"))
        healthy = try reader.bool("healthy", default: false)
        startupStatus = try StartupStatus(reader.object("startup_status"))
        gatewayEndpoint = try reader.optionalString("gateway_endpoint") ?? ""
        pid = try reader.optionalInt("pid") ?? 0
        uptimeSeconds = try reader.optionalInt("uptime_secs") ?? 0
        openSessions = try reader.optionalInt("open_sessions") ?? 0
        activeTurns = try reader.optionalInt("active_turns") ?? 0
        logDirectory = try reader.optionalString("log_dir") ?? ""
        shuttingDown = try reader.bool("shutting_down", default: false)
        if let object = try reader.optionalObject("channels") {
            for key in object.members.keys { channels[key] = try ChannelHealth(object.object(key)) }
        }
    }
}

/// The reply to a control request: `{"ok": true, ...}` or `{"ok": false, "error": "..."}`.
public enum ControlResponse: Sendable, Hashable {
    case health(GuestHealth)
    case shutdownAccepted(activeTurnsCancelled: Int)
    case logs(lines: [String], nextOffset: Int, files: [String])
    case failure(String)

    public var json: JSONValue {
        switch self {
        case .health(let health): ["ok": true, "health": health.json]
        case .shutdownAccepted(let count): ["ok": true, "shutdown": true, "active_turns_cancelled": .integer(count)]
        case .logs(let lines, let offset, let files):
            [
                "ok": true, "lines": .array(lines.map(JSONValue.string)), "next_offset": .integer(offset),
                "files": .array(files.map(JSONValue.string)),
            ]
        case .failure(let message): ["ok": false, "error": .string(message)]
        }
    }

    /// Parses a reply to `request`.
    public init(_ value: JSONValue, replyingTo request: ControlRequest) throws(WireError) {
        let reader = try FieldReader(value, path: "control_response")
        guard try reader.bool("ok", default: false) else {
            self = .failure(try reader.optionalString("error") ?? "the guest reported an unspecified error")
            return
        }
        switch request {
        case .healthCheck: self = .health(try GuestHealth(reader.object("health")))
        case .shutdownUser:
            self = .shutdownAccepted(activeTurnsCancelled: try reader.optionalInt("active_turns_cancelled") ?? 0)
        case .logs:
            self = .logs(
                lines: try reader.stringArray("lines"), nextOffset: try reader.optionalInt("next_offset") ?? 0,
                files: try reader.stringArray("files"))
        }
    }
}
