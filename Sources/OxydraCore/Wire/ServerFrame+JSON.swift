extension ServerFrame {
    public var json: JSONValue {
        ["type": .string(type), "payload": payload]
    }

    /// The frame as compact JSON text, as sent on the WebSocket.
    public var text: String { String(decoding: bytes, as: UTF8.self) }

    /// The frame as compact JSON in UTF-8 (``text``'s bytes). The frames of every streamed turn are
    /// written straight out, the rest through ``json``'s payload.
    public var bytes: [UInt8] {
        var out = JSONBytes(capacity: 192)
        out.raw("{\"type\":\"")
        out.raw(type)
        out.raw("\",\"payload\":")
        switch self {
        case .turnStarted(let header), .turnCancelled(let header):
            header.write(into: &out)
            out.raw("}")
        case .assistantDelta(let header, let delta):
            header.write(into: &out)
            out.raw(",\"delta\":")
            out.string(delta)
            out.raw("}")
        case .turnProgress(let header, let progress):
            header.write(into: &out)
            out.raw(",\"progress\":{\"kind\":{\"kind\":")
            out.string(progress.kind)
            if !progress.toolNames.isEmpty {
                out.raw(",\"tool_names\":[")
                for (index, name) in progress.toolNames.enumerated() {
                    if index > 0 { out.raw(",") }
                    out.string(name)
                }
                out.raw("]")
            }
            out.member("elapsed_secs", progress.elapsedSeconds)
            out.raw("},\"message\":")
            out.string(progress.message)
            out.member("turn", progress.turn)
            out.member("max_turns", progress.maxTurns)
            out.raw("}}")
        case .turnCompleted(let header, let completion):
            header.write(into: &out)
            out.raw(",\"response\":{\"message\":")
            out.string(completion.message)
            out.member("finish_reason", completion.finishReason)
            if let usage = completion.usage {
                out.raw(",\"usage\":{")
                var first = true
                for (key, value) in [
                    ("prompt_tokens", usage.promptTokens), ("completion_tokens", usage.completionTokens),
                    ("total_tokens", usage.effectiveTotal),
                ] {
                    guard let value else { continue }
                    if !first { out.raw(",") }
                    first = false
                    out.string(key)
                    out.raw(":")
                    out.raw(String(value))
                }
                out.raw("}")
            }
            if let cost = completion.costUSD {
                out.raw(",\"cost_usd\":")
                out.value(.number(cost))
            }
            out.member("provider_calls", completion.providerCalls)
            out.member("duration_ms", completion.durationMilliseconds)
            out.member("context_tokens", completion.contextTokens)
            out.member("context_window", completion.contextWindow)
            out.member("provider", completion.provider)
            out.member("model", completion.model)
            out.raw("}}")
        default:
            out.value(payload)
        }
        out.raw("}")
        return out.bytes
    }

    private var payload: JSONValue {
        switch self {
        case .helloAck(let id, let version, let session, let active):
            return .compactObject([
                "request_id": .string(id), "protocol_version": .integer(version), "session": session.json,
                "active_turn": active?.json,
            ])
        case .turnStarted(let header), .turnCancelled(let header):
            return header.members([])
        case .assistantDelta(let header, let delta):
            return header.members([("delta", .string(delta))])
        case .turnProgress(let header, let progress):
            let kind = JSONValue.compactObject([
                "kind": .string(progress.kind),
                "tool_names": progress.toolNames.isEmpty ? nil : .array(progress.toolNames.map(JSONValue.string)),
                "elapsed_secs": progress.elapsedSeconds.map(JSONValue.integer),
            ])
            return header.members([
                (
                    "progress",
                    [
                        "kind": kind, "message": .string(progress.message), "turn": .integer(progress.turn),
                        "max_turns": .integer(progress.maxTurns),
                    ]
                )
            ])
        case .toolCall(let header, let call):
            return header.members([
                (
                    "tool",
                    .compactObject([
                        "call_id": .string(call.callID), "name": .string(call.name), "summary": .string(call.summary),
                        "arguments": call.arguments.map(JSONValue.string),
                    ])
                )
            ])
        case .toolResult(let header, let result):
            return header.members([
                (
                    "tool",
                    .compactObject([
                        "call_id": .string(result.callID), "name": .string(result.name),
                        "is_error": .bool(result.isError),
                        "duration_ms": .integer(result.durationMilliseconds), "summary": .string(result.summary),
                        "output": result.output.map(JSONValue.string),
                    ])
                )
            ])
        case .turnCompleted(let header, let completion):
            let usage = completion.usage.map { usage in
                JSONValue.compactObject([
                    "prompt_tokens": usage.promptTokens.map(JSONValue.integer),
                    "completion_tokens": usage.completionTokens.map(JSONValue.integer),
                    "total_tokens": usage.effectiveTotal.map(JSONValue.integer),
                ])
            }
            return header.members([
                (
                    "response",
                    .compactObject([
                        "message": .string(completion.message),
                        "finish_reason": completion.finishReason.map(JSONValue.string), "usage": usage,
                        "cost_usd": completion.costUSD.map(JSONValue.number),
                        "provider_calls": .integer(completion.providerCalls),
                        "duration_ms": .integer(completion.durationMilliseconds),
                        "context_tokens": completion.contextTokens.map(JSONValue.integer),
                        "context_window": completion.contextWindow.map(JSONValue.integer),
                        "provider": completion.provider.map(JSONValue.string),
                        "model": completion.model.map(JSONValue.string),
                    ])
                )
            ])
        case .error(let info):
            return .compactObject([
                "request_id": info.requestID.map(JSONValue.string), "session": info.session?.json,
                "turn": info.turn?.json, "code": .string(info.code.rawValue), "message": .string(info.message),
            ])
        case .healthStatus(let info):
            return .compactObject([
                "request_id": .string(info.requestID), "healthy": .bool(info.healthy), "session": info.session?.json,
                "active_turn": info.activeTurn?.json, "startup_status": info.startupStatus?.json,
                "message": info.message.map(JSONValue.string),
            ])
        case .sessionCreated(let id, let session, let name, let agent):
            return .compactObject([
                "request_id": .string(id), "session": session.json, "display_name": name.map(JSONValue.string),
                "agent_name": .string(agent),
            ])
        case .sessionList(let id, let sessions, let next, let total):
            return .compactObject([
                "request_id": .string(id), "sessions": .array(sessions.map(\.json)),
                "next_cursor": next.map(JSONValue.string), "total": total.map(JSONValue.integer),
            ])
        case .sessionSwitched(let id, let session, let active):
            return .compactObject(["request_id": .string(id), "session": session.json, "active_turn": active?.json])
        case .history(let id, let session, let entries, let truncated, let first):
            return [
                "request_id": .string(id), "session": session.json, "entries": .array(entries.map(\.json)),
                "truncated": .bool(truncated), "first": .integer(first),
            ]
        case .sessionUpdated(let id, let session):
            return ["request_id": .string(id), "session": session.json]
        case .sessionDeleted(let id, let session):
            return ["request_id": .string(id), "session": session.json]
        case .modelChanged(let id, let session, let model):
            return ["request_id": .string(id), "session": session.json, "model": model.json]
        case .modelList(let id, let current, let models):
            return ["request_id": .string(id), "current": current.json, "models": .array(models.map(\.json))]
        case .usageReport(let id, let report):
            return ["request_id": .string(id), "report": report.json]
        case .approvalRequest(let header, let request):
            return header.members(request.members)
        case .approvalResolved(let header, let resolution):
            return header.members(resolution.members)
        case .grantList(let id, let grants):
            return ["request_id": .string(id), "grants": .array(grants.map(\.json))]
        case .grantRevoked(let id, let grant):
            return ["request_id": .string(id), "grant_id": .string(grant)]
        }
    }

    /// Parses a server frame (clients: the TUI, `runner ask`, tests).
    public init(parsing text: String) throws(WireError) {
        let value: JSONValue
        do {
            value = try JSONParser.parse(text)
        } catch {
            throw WireError("server frame is not valid JSON: \(error)")
        }
        let frame = try FieldReader(value, path: "frame")
        let type = try frame.nonBlankString("type")
        self = try Self.decode(type: type, payload: frame.object("payload"))
    }

    private static func decode(type: String, payload p: FieldReader) throws(WireError) -> ServerFrame {
        switch type {
        case "hello_ack":
            return .helloAck(
                requestID: try p.string("request_id"), protocolVersion: try p.int("protocol_version"),
                session: try SessionRef(p.object("session")),
                activeTurn: try p.optionalObject("active_turn").map(TurnRef.init))
        case "turn_started": return .turnStarted(try TurnHeader(p))
        case "turn_cancelled": return .turnCancelled(try TurnHeader(p))
        case "assistant_delta": return .assistantDelta(try TurnHeader(p), delta: try p.string("delta"))
        case "turn_progress":
            let progress = try p.object("progress")
            let kind = try progress.object("kind")
            return .turnProgress(
                try TurnHeader(p),
                ProgressInfo(
                    kind: try kind.string("kind"), toolNames: try kind.stringArray("tool_names"),
                    elapsedSeconds: try kind.optionalInt("elapsed_secs"), message: try progress.string("message"),
                    turn: try progress.optionalInt("turn") ?? 0, maxTurns: try progress.optionalInt("max_turns") ?? 0))
        case "tool_call":
            let tool = try p.object("tool")
            return .toolCall(
                try TurnHeader(p),
                ToolCallInfo(
                    callID: try tool.string("call_id"), name: try tool.string("name"),
                    summary: try tool.optionalString("summary") ?? "", arguments: try tool.optionalString("arguments")))
        case "tool_result":
            let tool = try p.object("tool")
            return .toolResult(
                try TurnHeader(p),
                ToolResultInfo(
                    callID: try tool.string("call_id"), name: try tool.string("name"),
                    isError: try tool.bool("is_error", default: false),
                    durationMilliseconds: try tool.optionalInt("duration_ms") ?? 0,
                    summary: try tool.optionalString("summary") ?? "", output: try tool.optionalString("output")))
        case "turn_completed":
            let response = try p.object("response")
            let usage = try response.optionalObject("usage").map { (u: FieldReader) throws(WireError) in
                Usage(
                    promptTokens: try u.optionalInt("prompt_tokens"),
                    completionTokens: try u.optionalInt("completion_tokens"),
                    totalTokens: try u.optionalInt("total_tokens"))
            }
            return .turnCompleted(
                try TurnHeader(p),
                TurnCompletion(
                    message: try response.optionalString("message") ?? "",
                    finishReason: try response.optionalString("finish_reason"), usage: usage,
                    costUSD: try response.optionalDouble("cost_usd"),
                    providerCalls: try response.optionalInt("provider_calls") ?? 0,
                    durationMilliseconds: try response.optionalInt("duration_ms") ?? 0,
                    contextTokens: try response.optionalInt("context_tokens"),
                    contextWindow: try response.optionalInt("context_window"),
                    provider: try response.optionalString("provider"), model: try response.optionalString("model")))
        case "error":
            let code = try p.optionalString("code") ?? GatewayErrorCode.internalError.rawValue
            return .error(
                GatewayErrorInfo(
                    requestID: try p.optionalString("request_id"),
                    session: try p.optionalObject("session").map(SessionRef.init),
                    turn: try p.optionalObject("turn").map(TurnRef.init),
                    code: GatewayErrorCode(rawValue: code) ?? .internalError, message: try p.string("message")))
        case "health_status":
            return .healthStatus(
                HealthInfo(
                    requestID: try p.string("request_id"), healthy: try p.bool("healthy", default: false),
                    session: try p.optionalObject("session").map(SessionRef.init),
                    activeTurn: try p.optionalObject("active_turn").map(TurnRef.init),
                    startupStatus: try p.optionalObject("startup_status").map(StartupStatus.init),
                    message: try p.optionalString("message")))
        case "session_created":
            return .sessionCreated(
                requestID: try p.string("request_id"), session: try SessionRef(p.object("session")),
                displayName: try p.optionalString("display_name"),
                agentName: try p.optionalString("agent_name") ?? "default")
        case "session_list":
            var sessions: [SessionInfo] = []
            for (index, item) in try p.array("sessions").enumerated() {
                sessions.append(try SessionInfo(FieldReader(item, path: "session_list.payload.sessions[\(index)]")))
            }
            return .sessionList(
                requestID: try p.string("request_id"), sessions: sessions,
                nextCursor: try p.optionalString("next_cursor"),
                total: try p.optionalInt("total"))
        case "session_switched":
            return .sessionSwitched(
                requestID: try p.string("request_id"), session: try SessionRef(p.object("session")),
                activeTurn: try p.optionalObject("active_turn").map(TurnRef.init))
        case "history":
            var entries: [HistoryEntry] = []
            for (index, item) in try p.array("entries").enumerated() {
                entries.append(try HistoryEntry(FieldReader(item, path: "history.payload.entries[\(index)]")))
            }
            return .history(
                requestID: try p.string("request_id"), session: try SessionRef(p.object("session")), entries: entries,
                truncated: try p.bool("truncated", default: false), first: try p.optionalInt("first") ?? 0)
        case "session_updated":
            return .sessionUpdated(
                requestID: try p.string("request_id"),
                session: try SessionInfo(try p.object("session")))
        case "session_deleted":
            return .sessionDeleted(requestID: try p.string("request_id"), session: try SessionRef(p.object("session")))
        case "model_changed":
            return .modelChanged(
                requestID: try p.string("request_id"), session: try SessionRef(p.object("session")),
                model: try ModelInfo(p.object("model")))
        case "model_list":
            var models: [ModelInfo] = []
            for (index, item) in try p.array("models").enumerated() {
                models.append(try ModelInfo(FieldReader(item, path: "model_list.payload.models[\(index)]")))
            }
            return .modelList(
                requestID: try p.string("request_id"), current: try ModelInfo(p.object("current")), models: models)
        case "usage_report":
            return .usageReport(requestID: try p.string("request_id"), report: try UsageReport(p.object("report")))
        case "approval_request":
            return .approvalRequest(try TurnHeader(p), try ApprovalRequest(p))
        case "approval_resolved":
            return .approvalResolved(try TurnHeader(p), try ApprovalResolution(p))
        case "grant_list":
            var grants: [ApprovalGrant] = []
            for (index, item) in try p.array("grants").enumerated() {
                grants.append(try ApprovalGrant(FieldReader(item, path: "grant_list.payload.grants[\(index)]")))
            }
            return .grantList(requestID: try p.string("request_id"), grants: grants)
        case "grant_revoked":
            return .grantRevoked(requestID: try p.string("request_id"), grantID: try p.string("grant_id"))
        default:
            throw WireError("unknown server frame type `\(type)`")
        }
    }
}

extension TurnHeader {
    /// ``members(_:)`` without extra members, written straight out and left open (no closing
    /// brace) for the frame's own members.
    fileprivate func write(into out: inout JSONBytes) {
        out.raw("{\"request_id\":")
        out.string(requestID)
        out.raw(",\"session\":{\"user_id\":")
        out.string(session.userID.rawValue)
        out.raw(",\"session_id\":")
        out.string(session.sessionID.rawValue)
        out.raw("},\"turn\":{\"turn_id\":")
        out.string(turn.turnID.rawValue)
        out.raw(",\"state\":\"")
        out.raw(turn.state.rawValue)
        out.raw("\"}")
    }

    fileprivate func members(_ extra: [(String, JSONValue)]) -> JSONValue {
        var object: [String: JSONValue] = [
            "request_id": .string(requestID), "session": session.json, "turn": turn.json,
        ]
        for (key, value) in extra { object[key] = value }
        return .object(object)
    }

    fileprivate init(_ reader: FieldReader) throws(WireError) {
        requestID = try reader.optionalString("request_id") ?? ""
        session = try SessionRef(reader.object("session"))
        turn = try TurnRef(reader.object("turn"))
    }
}

extension SessionInfo {
    public var json: JSONValue {
        .compactObject([
            "session_id": .string(sessionID.rawValue), "agent_name": .string(agentName),
            "display_name": displayName.map(JSONValue.string), "channel_origin": .string(channelOrigin),
            "created_at": .string(createdAt), "last_active_at": .string(lastActiveAt), "archived": .bool(archived),
            "active_turn": activeTurn?.json,
        ])
    }

    fileprivate init(_ reader: FieldReader) throws(WireError) {
        sessionID = SessionID(try reader.nonBlankString("session_id"))
        agentName = try reader.optionalString("agent_name") ?? "default"
        displayName = try reader.optionalString("display_name")
        channelOrigin = try reader.optionalString("channel_origin") ?? ""
        createdAt = try reader.optionalString("created_at") ?? ""
        lastActiveAt = try reader.optionalString("last_active_at") ?? ""
        archived = try reader.bool("archived", default: false)
        activeTurn = try reader.optionalObject("active_turn").map(TurnRef.init)
    }
}
