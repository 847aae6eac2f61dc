/// The session a frame is about.
public struct SessionRef: Sendable, Hashable {
    public var userID: UserID
    public var sessionID: SessionID

    public init(userID: UserID, sessionID: SessionID) {
        self.userID = userID
        self.sessionID = sessionID
    }

    public var json: JSONValue { ["user_id": .string(userID.rawValue), "session_id": .string(sessionID.rawValue)] }

    init(_ reader: FieldReader) throws(WireError) {
        userID = UserID(try reader.string("user_id"))
        sessionID = SessionID(try reader.nonBlankString("session_id"))
    }
}

/// Where a turn is in its life.
public enum TurnState: String, Sendable, Hashable, CaseIterable {
    /// Waiting for a free slot (`gateway.max_concurrent_turns_per_user`).
    case queued
    case running, completed, cancelled, failed
}

public struct TurnRef: Sendable, Hashable {
    public var turnID: TurnID
    public var state: TurnState

    public init(turnID: TurnID, state: TurnState) {
        self.turnID = turnID
        self.state = state
    }

    public var json: JSONValue { ["turn_id": .string(turnID.rawValue), "state": .string(state.rawValue)] }

    init(_ reader: FieldReader) throws(WireError) {
        turnID = TurnID(try reader.nonBlankString("turn_id"))
        let state = try reader.string("state")
        guard let parsed = TurnState(rawValue: state) else {
            throw WireError("\(reader.path).state: unknown turn state `\(state)`")
        }
        self.state = parsed
    }
}

/// The fields every turn frame carries.
public struct TurnHeader: Sendable, Hashable {
    /// The `request_id` of the `send_turn` that started the turn.
    public var requestID: String
    public var session: SessionRef
    public var turn: TurnRef

    public init(requestID: String, session: SessionRef, turn: TurnRef) {
        self.requestID = requestID
        self.session = session
        self.turn = turn
    }
}

/// A progress line for UIs, e.g. `[2/8] Executing tools: file_read`.
public struct ProgressInfo: Sendable, Hashable {
    /// `queued`, `provider_call`, `provider_retry`, `tool_execution`, `tool_heartbeat` or
    /// `rolling_summary`.
    public var kind: String
    public var toolNames: [String]
    public var elapsedSeconds: Int?
    public var message: String
    public var turn: Int
    public var maxTurns: Int

    public init(
        kind: String, toolNames: [String] = [], elapsedSeconds: Int? = nil, message: String, turn: Int, maxTurns: Int
    ) {
        self.kind = kind
        self.toolNames = toolNames
        self.elapsedSeconds = elapsedSeconds
        self.message = message
        self.turn = turn
        self.maxTurns = maxTurns
    }
}

/// A tool the agent is about to run.
public struct ToolCallInfo: Sendable, Hashable {
    public var callID: String
    public var name: String
    /// Short, scrubbed: `file_read(path=/shared/a.txt)`.
    public var summary: String
    /// The arguments as compact JSON (the model's own output, at most `argumentsLimit` bytes), for
    /// clients that expand the call.
    public var arguments: String?

    /// The most of a call's arguments a frame carries.
    public static let argumentsLimit = 8192

    public init(callID: String, name: String, summary: String, arguments: String? = nil) {
        self.callID = callID
        self.name = name
        self.summary = summary
        self.arguments = arguments
    }
}

/// A tool that finished.
public struct ToolResultInfo: Sendable, Hashable {
    public var callID: String
    public var name: String
    public var isError: Bool
    public var durationMilliseconds: Int
    /// The first line of the result, shortened.
    public var summary: String
    /// The whole result as the model received it: scrubbed of secrets and cut at the tool output
    /// limit (16 KiB).
    public var output: String?

    public init(
        callID: String, name: String, isError: Bool, durationMilliseconds: Int, summary: String, output: String? = nil
    ) {
        self.callID = callID
        self.name = name
        self.isError = isError
        self.durationMilliseconds = durationMilliseconds
        self.summary = summary
        self.output = output
    }
}

/// The answer of a completed turn.
public struct TurnCompletion: Sendable, Hashable {
    public var message: String
    public var finishReason: String?
    public var usage: Usage?
    /// US dollars; nil when the model has no price in the catalog.
    public var costUSD: Double?
    public var providerCalls: Int
    public var durationMilliseconds: Int
    /// Tokens the session's context holds after this turn (the last provider call's prompt and
    /// answer), and the model's context window: a client's context meter.
    public var contextTokens: Int?
    public var contextWindow: Int?
    /// Who answered (registry name and model id): a fallback's when the primary failed.
    public var provider: String?
    public var model: String?

    public init(
        message: String, finishReason: String? = nil, usage: Usage? = nil, costUSD: Double? = nil,
        providerCalls: Int = 1, durationMilliseconds: Int = 0, contextTokens: Int? = nil, contextWindow: Int? = nil,
        provider: String? = nil, model: String? = nil
    ) {
        self.provider = provider
        self.model = model
        self.contextTokens = contextTokens
        self.contextWindow = contextWindow
        self.message = message
        self.finishReason = finishReason
        self.usage = usage
        self.costUSD = costUSD
        self.providerCalls = providerCalls
        self.durationMilliseconds = durationMilliseconds
    }
}

/// A model a session can use: the provider (its registry name), the model id, its context window
/// and whether it takes images.
public struct ModelInfo: Sendable, Hashable {
    public var provider: String
    public var model: String
    public var contextWindow: Int?
    public var images: Bool

    public init(provider: String, model: String, contextWindow: Int? = nil, images: Bool = false) {
        self.provider = provider
        self.model = model
        self.contextWindow = contextWindow
        self.images = images
    }

    public var json: JSONValue {
        .compactObject([
            "provider": .string(provider), "model": .string(model),
            "context_window": contextWindow.map(JSONValue.integer), "images": .bool(images),
        ])
    }

    public init(_ p: FieldReader) throws(WireError) {
        self.init(
            provider: try p.string("provider"), model: try p.string("model"),
            contextWindow: try p.optionalInt("context_window"), images: try p.bool("images", default: false))
    }
}

/// Stable error codes of `error` frames.
public enum GatewayErrorCode: String, Sendable, Hashable, CaseIterable {
    /// The frame is not JSON, has an unknown type or a field of the wrong shape.
    case badFrame = "bad_frame"
    /// Frames out of order (no `hello` first, a second `hello`) or a wrong protocol version.
    case protocolError = "protocol"
    /// The session already has a running turn.
    case busy
    /// The per-user queue of waiting turns is full.
    case queueFull = "queue_full"
    case noActiveTurn = "no_active_turn"
    case notFound = "not_found"
    case ambiguous
    /// `gateway.max_sessions_per_user` reached.
    case limitReached = "limit_reached"
    /// The turn ran and failed (provider error, budget, timeout); the message says why.
    case turnFailed = "turn_failed"
    /// The client reads too slowly; the connection is closed, reconnect to resume.
    case lagging
    case shuttingDown = "shutting_down"
    case internalError = "internal"
}

public struct GatewayErrorInfo: Sendable, Hashable {
    public var requestID: String?
    public var session: SessionRef?
    public var turn: TurnRef?
    public var code: GatewayErrorCode
    public var message: String

    public init(
        requestID: String? = nil, session: SessionRef? = nil, turn: TurnRef? = nil, code: GatewayErrorCode,
        message: String
    ) {
        self.requestID = requestID
        self.session = session
        self.turn = turn
        self.code = code
        self.message = message
    }
}

public struct HealthInfo: Sendable, Hashable {
    public var requestID: String
    public var healthy: Bool
    public var session: SessionRef?
    public var activeTurn: TurnRef?
    public var startupStatus: StartupStatus?
    public var message: String?

    public init(
        requestID: String, healthy: Bool = true, session: SessionRef? = nil, activeTurn: TurnRef? = nil,
        startupStatus: StartupStatus? = nil, message: String? = nil
    ) {
        self.requestID = requestID
        self.healthy = healthy
        self.session = session
        self.activeTurn = activeTurn
        self.startupStatus = startupStatus
        self.message = message
    }
}

/// One entry of `session_list`.
/// One message of a session's history as clients show it.
public struct HistoryEntry: Sendable, Hashable {
    /// `user`, `assistant` or `tool`.
    public var role: String
    /// The text; for a tool result, a short summary.
    public var text: String
    /// Tools the assistant called in this message, or the tool a result belongs to.
    public var toolNames: [String]

    public init(role: String, text: String, toolNames: [String] = []) {
        self.role = role
        self.text = text
        self.toolNames = toolNames
    }

    public var json: JSONValue {
        .compactObject([
            "role": .string(role), "text": .string(text),
            "tool_names": toolNames.isEmpty ? nil : .array(toolNames.map(JSONValue.string)),
        ])
    }

    public init(_ reader: FieldReader) throws(WireError) {
        role = try reader.nonBlankString("role")
        text = try reader.optionalString("text") ?? ""
        toolNames = try reader.stringArray("tool_names")
    }
}

public struct SessionInfo: Sendable, Hashable {
    public var sessionID: SessionID
    public var agentName: String
    public var displayName: String?
    public var channelOrigin: String
    /// RFC 3339.
    public var createdAt: String
    public var lastActiveAt: String
    public var archived: Bool
    /// The session's running or queued turn, if any.
    public var activeTurn: TurnRef?

    public init(
        sessionID: SessionID, agentName: String = "default", displayName: String? = nil, channelOrigin: String = "tui",
        createdAt: String, lastActiveAt: String, archived: Bool = false, activeTurn: TurnRef? = nil
    ) {
        self.sessionID = sessionID
        self.agentName = agentName
        self.displayName = displayName
        self.channelOrigin = channelOrigin
        self.createdAt = createdAt
        self.lastActiveAt = lastActiveAt
        self.archived = archived
        self.activeTurn = activeTurn
    }
}

/// A frame the gateway sends: `{"type": "...", "payload": {...}}` (docs/protocol.md).
public enum ServerFrame: Sendable, Hashable {
    case helloAck(requestID: String, protocolVersion: Int, session: SessionRef, activeTurn: TurnRef?)
    case turnStarted(TurnHeader)
    case assistantDelta(TurnHeader, delta: String)
    case turnProgress(TurnHeader, ProgressInfo)
    case toolCall(TurnHeader, ToolCallInfo)
    case toolResult(TurnHeader, ToolResultInfo)
    case turnCompleted(TurnHeader, TurnCompletion)
    case turnCancelled(TurnHeader)
    case error(GatewayErrorInfo)
    case healthStatus(HealthInfo)
    case sessionCreated(requestID: String, session: SessionRef, displayName: String?, agentName: String)
    /// A page of sessions; `nextCursor` asks for the next one, `total` counts the whole listing.
    case sessionList(requestID: String, sessions: [SessionInfo], nextCursor: String? = nil, total: Int? = nil)
    case sessionSwitched(requestID: String, session: SessionRef, activeTurn: TurnRef?)
    /// The answer to `get_history`: the session's last messages, oldest first.
    /// `first`: the position of `entries[0]` in the whole history (a cursor for older entries).
    case history(requestID: String, session: SessionRef, entries: [HistoryEntry], truncated: Bool, first: Int = 0)
    /// The session after `rename_session` or `archive_session`.
    case sessionUpdated(requestID: String, session: SessionInfo)
    case sessionDeleted(requestID: String, session: SessionRef)
    /// The session's model changed (to every client on the session).
    case modelChanged(requestID: String, session: SessionRef, model: ModelInfo)
    /// The answer to `list_models`.
    case modelList(requestID: String, current: ModelInfo, models: [ModelInfo])
    /// The answer to `get_usage`.
    case usageReport(requestID: String, report: UsageReport)
    /// A tool call waits for a person (to every client on the session).
    case approvalRequest(TurnHeader, ApprovalRequest)
    /// An approval ended: answered, timed out or cancelled (to every client on the session).
    case approvalResolved(TurnHeader, ApprovalResolution)
    /// The answer to `list_grants`.
    case grantList(requestID: String, grants: [ApprovalGrant])
    /// The answer to `revoke_grant`.
    case grantRevoked(requestID: String, grantID: String)

    /// The turn the frame is about, when it is about one.
    public var turnID: TurnID? {
        if case .error(let info) = self { return info.turn?.turnID }
        return turnHeader?.turn.turnID
    }

    public var type: String {
        switch self {
        case .helloAck: "hello_ack"
        case .turnStarted: "turn_started"
        case .assistantDelta: "assistant_delta"
        case .turnProgress: "turn_progress"
        case .toolCall: "tool_call"
        case .toolResult: "tool_result"
        case .turnCompleted: "turn_completed"
        case .turnCancelled: "turn_cancelled"
        case .error: "error"
        case .healthStatus: "health_status"
        case .sessionCreated: "session_created"
        case .sessionList: "session_list"
        case .sessionSwitched: "session_switched"
        case .history: "history"
        case .sessionUpdated: "session_updated"
        case .sessionDeleted: "session_deleted"
        case .modelChanged: "model_changed"
        case .modelList: "model_list"
        case .usageReport: "usage_report"
        case .approvalRequest: "approval_request"
        case .approvalResolved: "approval_resolved"
        case .grantList: "grant_list"
        case .grantRevoked: "grant_revoked"
        }
    }

    /// The turn this frame belongs to, for turn frames and turn errors.
    public var turnHeader: TurnHeader? {
        switch self {
        case .turnStarted(let header), .assistantDelta(let header, _), .turnProgress(let header, _),
            .toolCall(let header, _), .toolResult(let header, _), .turnCompleted(let header, _),
            .turnCancelled(let header), .approvalRequest(let header, _), .approvalResolved(let header, _):
            header
        case .error(let info):
            info.session.flatMap { session in
                info.turn.map { TurnHeader(requestID: info.requestID ?? "", session: session, turn: $0) }
            }
        default: nil
        }
    }

    /// Whether this frame ends a turn (completed, cancelled or failed).
    public var isTurnTerminal: Bool {
        switch self {
        case .turnCompleted, .turnCancelled: true
        case .error(let info): info.turn != nil && info.code == .turnFailed
        default: false
        }
    }

    public var requestID: String? {
        switch self {
        case .helloAck(let id, _, _, _), .sessionCreated(let id, _, _, _), .sessionList(let id, _, _, _),
            .sessionSwitched(let id, _, _), .history(let id, _, _, _, _), .modelChanged(let id, _, _),
            .modelList(let id, _, _), .usageReport(let id, _), .grantList(let id, _), .grantRevoked(let id, _),
            .sessionUpdated(let id, _), .sessionDeleted(let id, _):
            id
        case .healthStatus(let info): info.requestID
        case .error(let info): info.requestID
        default: turnHeader?.requestID
        }
    }
}
