/// Gateway protocol constants.
public enum GatewayProtocol {
    /// The version a client states in `hello`; a different one is refused.
    public static let version = 1
    /// The WebSocket path.
    public static let path = "/ws"
    /// Largest accepted client frame, in bytes (room for `maxAttachmentBytes` in base64).
    public static let maxClientFrameBytes = 12 << 20
    /// The most a turn's attachments may hold together (decoded), and how many there may be.
    public static let maxAttachmentBytes = 8 << 20
    public static let maxAttachments = 8
    /// In the workspace's `ipc/` directory: the endpoint marker (the URL, no secret) and the
    /// bearer token every client must send (created anew at each guest start, mode 0600).
    public static let endpointMarkerFile = "gateway-endpoint"
    public static let tokenFile = "gateway-token"
    /// Random bytes in a token (hex-encoded, so the token has twice as many characters).
    public static let tokenBytes = 32

    /// A new token: `tokenBytes` bytes from the system's cryptographic random source, hex-encoded.
    public static func newToken() -> String {
        var generator = SystemRandomNumberGenerator()
        var text = ""
        text.reserveCapacity(tokenBytes * 2)
        for _ in 0..<(tokenBytes / 8) {
            let word = generator.next()
            for shift in stride(from: 60, through: 0, by: -4) {
                let nibble = Int((word >> UInt64(shift)) & 0xF)
                text.append(Self.hexDigits[nibble])
            }
        }
        return text
    }

    private static let hexDigits = Array("0123456789abcdef")

    /// Compares a presented token with a known one in time that depends only on their lengths, so a
    /// caller cannot learn how much of a guess was right.
    public static func tokensEqual(_ presented: String, _ known: String) -> Bool {
        let a = Array(presented.utf8)
        let b = Array(known.utf8)
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0
    }
}

/// A frame a client sends to the gateway: `{"type": "...", "payload": {...}}` (docs/protocol.md).
public enum ClientFrame: Sendable, Hashable {
    case hello(Hello)
    case sendTurn(SendTurn)
    /// `session_id` and `turn_id` are optional; when given they must match.
    case cancelActiveTurn(requestID: String, sessionID: SessionID?, turnID: TurnID?)
    case cancelAllActiveTurns(requestID: String)
    case healthCheck(requestID: String)
    case createSession(requestID: String, displayName: String?, agentName: String?)
    /// A page of sessions: at most `limit` (default 50, at most 1,000), after `cursor` (a previous
    /// page's `next_cursor`).
    case listSessions(requestID: String, includeArchived: Bool, limit: Int? = nil, cursor: String? = nil)
    /// An exact session id or a prefix matching exactly one session.
    case switchSession(requestID: String, session: String)
    /// The last `limit` messages of the connection's session (for a client that reconnects or
    /// switches sessions and wants to show the conversation so far).
    /// `before`: only entries older than this position (the `first` of an earlier `history`).
    case getHistory(requestID: String, limit: Int, before: Int? = nil)
    /// Sets (or with nil clears) a session's title.
    case renameSession(requestID: String, session: String, displayName: String?)
    /// Archives (hides from lists) or unarchives a session.
    case archiveSession(requestID: String, session: String, archived: Bool)
    /// Deletes a session: its history, its memory chunks and its state, at once.
    case deleteSession(requestID: String, session: String)
    /// The model of the connection's session from its next turn: `model`, on `provider` (default:
    /// the session's provider, then any configured provider whose catalog has the model).
    case setModel(requestID: String, provider: String?, model: String)
    /// The session's model and the ones it can switch to.
    case listModels(requestID: String)
    /// The user's spending over the last `days` UTC days (today included).
    case getUsage(requestID: String, days: Int)
    /// Answers an `approval_request`; the first answer wins.
    case approve(requestID: String, approvalID: String, decision: ApprovalDecision, scope: ApprovalScope)
    /// The user's standing grants (`session` and `always`).
    case listGrants(requestID: String)
    case revokeGrant(requestID: String, grantID: String)

    public struct Hello: Sendable, Hashable {
        public var requestID: String
        public var protocolVersion: Int
        public var userID: String?
        /// Resume this session (exact id or unique prefix).
        public var sessionID: String?
        /// Start a new session instead of resuming the default one.
        public var createNewSession: Bool
        /// What the client is (`tui`, `ask`, `web`): named with the connection in approvals and the audit log.
        public var client: String?

        public init(
            requestID: String, protocolVersion: Int = GatewayProtocol.version, userID: String? = nil,
            sessionID: String? = nil, createNewSession: Bool = false, client: String? = nil
        ) {
            self.client = client
            self.requestID = requestID
            self.protocolVersion = protocolVersion
            self.userID = userID
            self.sessionID = sessionID
            self.createNewSession = createNewSession
        }
    }

    public struct SendTurn: Sendable, Hashable {
        public var requestID: String
        /// When given, must be the connection's current session.
        public var sessionID: SessionID?
        public var turnID: TurnID
        public var prompt: String
        /// Files and images sent with the prompt.
        public var attachments: [FileAttachment]

        public init(
            requestID: String, sessionID: SessionID? = nil, turnID: TurnID, prompt: String,
            attachments: [FileAttachment] = []
        ) {
            self.requestID = requestID
            self.sessionID = sessionID
            self.turnID = turnID
            self.prompt = prompt
            self.attachments = attachments
        }
    }

    /// A file sent with a turn: its name (a base name; the guest makes it safe), MIME type and bytes.
    public struct FileAttachment: Sendable, Hashable {
        public var name: String
        public var mimeType: String
        public var data: Data

        public init(name: String, mimeType: String, data: Data) {
            self.name = name
            self.mimeType = mimeType
            self.data = data
        }

        var json: JSONValue {
            ["name": .string(name), "mime_type": .string(mimeType), "data": .string(data.base64EncodedString())]
        }
    }

    public var type: String {
        switch self {
        case .hello: "hello"
        case .sendTurn: "send_turn"
        case .cancelActiveTurn: "cancel_active_turn"
        case .cancelAllActiveTurns: "cancel_all_active_turns"
        case .healthCheck: "health_check"
        case .createSession: "create_session"
        case .listSessions: "list_sessions"
        case .switchSession: "switch_session"
        case .getHistory: "get_history"
        case .renameSession: "rename_session"
        case .archiveSession: "archive_session"
        case .deleteSession: "delete_session"
        case .setModel: "set_model"
        case .listModels: "list_models"
        case .getUsage: "get_usage"
        case .approve: "approve"
        case .listGrants: "list_grants"
        case .revokeGrant: "revoke_grant"
        }
    }

    public var requestID: String {
        switch self {
        case .hello(let hello): hello.requestID
        case .sendTurn(let turn): turn.requestID
        case .cancelActiveTurn(let id, _, _), .cancelAllActiveTurns(let id), .healthCheck(let id),
            .createSession(let id, _, _), .listSessions(let id, _, _, _), .switchSession(let id, _),
            .getHistory(let id, _, _),
            .renameSession(let id, _, _), .archiveSession(let id, _, _), .deleteSession(let id, _),
            .setModel(let id, _, _), .listModels(let id), .getUsage(let id, _), .approve(let id, _, _, _),
            .listGrants(let id), .revokeGrant(let id, _):
            id
        }
    }

    public var json: JSONValue {
        let payload: JSONValue
        switch self {
        case .hello(let hello):
            payload = .compactObject([
                "request_id": .string(hello.requestID), "protocol_version": .integer(hello.protocolVersion),
                "user_id": hello.userID.map(JSONValue.string), "session_id": hello.sessionID.map(JSONValue.string),
                "create_new_session": hello.createNewSession ? .bool(true) : nil,
                "client": hello.client.map(JSONValue.string),
            ])
        case .sendTurn(let turn):
            payload = .compactObject([
                "request_id": .string(turn.requestID), "session_id": turn.sessionID.map { .string($0.rawValue) },
                "turn_id": .string(turn.turnID.rawValue), "prompt": .string(turn.prompt),
                "attachments": turn.attachments.isEmpty ? nil : .array(turn.attachments.map(\.json)),
            ])
        case .cancelActiveTurn(let id, let session, let turn):
            payload = .compactObject([
                "request_id": .string(id), "session_id": session.map { .string($0.rawValue) },
                "turn_id": turn.map { .string($0.rawValue) },
            ])
        case .cancelAllActiveTurns(let id), .healthCheck(let id):
            payload = ["request_id": .string(id)]
        case .createSession(let id, let name, let agent):
            payload = .compactObject([
                "request_id": .string(id), "display_name": name.map(JSONValue.string),
                "agent_name": agent.map(JSONValue.string),
            ])
        case .listSessions(let id, let archived, let limit, let cursor):
            payload = .compactObject([
                "request_id": .string(id), "include_archived": .bool(archived), "limit": limit.map(JSONValue.integer),
                "cursor": cursor.map(JSONValue.string),
            ])
        case .switchSession(let id, let session):
            payload = ["request_id": .string(id), "session_id": .string(session)]
        case .getHistory(let id, let limit, let before):
            payload = .compactObject([
                "request_id": .string(id), "limit": .integer(limit), "before": before.map(JSONValue.integer),
            ])
        case .renameSession(let id, let session, let name):
            payload = [
                "request_id": .string(id), "session_id": .string(session),
                "display_name": name.map(JSONValue.string) ?? .null,
            ]
        case .archiveSession(let id, let session, let archived):
            payload = ["request_id": .string(id), "session_id": .string(session), "archived": .bool(archived)]
        case .deleteSession(let id, let session):
            payload = ["request_id": .string(id), "session_id": .string(session)]
        case .setModel(let id, let provider, let model):
            payload = .compactObject([
                "request_id": .string(id), "provider": provider.map(JSONValue.string), "model": .string(model),
            ])
        case .listModels(let id):
            payload = ["request_id": .string(id)]
        case .getUsage(let id, let days):
            payload = ["request_id": .string(id), "days": .integer(days)]
        case .approve(let id, let approval, let decision, let scope):
            payload = [
                "request_id": .string(id), "approval_id": .string(approval), "decision": .string(decision.rawValue),
                "scope": .string(scope.rawValue),
            ]
        case .listGrants(let id):
            payload = ["request_id": .string(id)]
        case .revokeGrant(let id, let grant):
            payload = ["request_id": .string(id), "grant_id": .string(grant)]
        }
        return ["type": .string(type), "payload": payload]
    }

    public var text: String { JSONWriter.text(json) }

    /// Parses a client frame. The error names the field at fault; when the frame got far enough to
    /// carry a `request_id`, it is in ``ClientFrameError/requestID`` so the reply can reference it.
    public init(parsing text: String) throws(ClientFrameError) {
        let value: JSONValue
        do {
            value = try JSONParser.parse(text)
        } catch {
            throw ClientFrameError(requestID: nil, message: "frame is not valid JSON: \(error)")
        }
        var requestID: String?
        do throws(WireError) {
            let frame = try FieldReader(value, path: "frame")
            let type = try frame.nonBlankString("type")
            var payloadValue = frame.members["payload"] ?? .object([:])
            if payloadValue == .null { payloadValue = .object([:]) }
            requestID = payloadValue["request_id"]?.stringValue
            self = try Self.decode(type: type, payload: FieldReader(payloadValue, path: "\(type).payload"))
        } catch {
            throw ClientFrameError(requestID: requestID, message: error.message)
        }
    }

    private static func decode(type: String, payload: FieldReader) throws(WireError) -> ClientFrame {
        let requestID = try payload.nonBlankString("request_id")
        switch type {
        case "hello":
            return .hello(
                Hello(
                    requestID: requestID, protocolVersion: try payload.int("protocol_version"),
                    userID: try payload.optionalString("user_id"), sessionID: try payload.optionalString("session_id"),
                    createNewSession: try payload.bool("create_new_session", default: false),
                    client: try payload.optionalString("client").map { String($0.prefix(32)) }))
        case "send_turn":
            let prompt = try payload.string("prompt")
            if prompt.trimmed.isEmpty { throw WireError("send_turn.payload.prompt: must not be empty") }
            var attachments: [FileAttachment] = []
            do {
                let items = try payload.array("attachments")
                guard items.count <= GatewayProtocol.maxAttachments else {
                    throw WireError(
                        "send_turn.payload.attachments: at most \(GatewayProtocol.maxAttachments) files per turn, "
                            + "got \(items.count)")
                }
                var total = 0
                for (index, item) in items.enumerated() {
                    let path = "send_turn.payload.attachments[\(index)]"
                    let field = try FieldReader(item, path: path)
                    let name = try field.nonBlankString("name")
                    let mimeType = try field.nonBlankString("mime_type")
                    guard name.utf8.count <= 255 else { throw WireError("\(path).name: longer than 255 bytes") }
                    guard mimeType.utf8.count <= 127, mimeType.contains("/"),
                        mimeType.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0 != ";" })
                    else { throw WireError("\(path).mime_type: `\(mimeType)` is not a MIME type like image/png") }
                    guard let data = Data(base64Encoded: try field.string("data")) else {
                        throw WireError("\(path).data: not valid base64")
                    }
                    total += data.count
                    guard total <= GatewayProtocol.maxAttachmentBytes else {
                        throw WireError(
                            "send_turn.payload.attachments: more than \(GatewayProtocol.maxAttachmentBytes >> 20) MiB "
                                + "in all")
                    }
                    attachments.append(FileAttachment(name: name, mimeType: mimeType.lowercased(), data: data))
                }
            }
            return .sendTurn(
                SendTurn(
                    requestID: requestID, sessionID: try payload.optionalString("session_id").map(SessionID.init),
                    turnID: TurnID(try payload.nonBlankString("turn_id")), prompt: prompt, attachments: attachments))
        case "cancel_active_turn":
            return .cancelActiveTurn(
                requestID: requestID, sessionID: try payload.optionalString("session_id").map(SessionID.init),
                turnID: try payload.optionalString("turn_id").map(TurnID.init))
        case "cancel_all_active_turns":
            return .cancelAllActiveTurns(requestID: requestID)
        case "health_check":
            return .healthCheck(requestID: requestID)
        case "create_session":
            return .createSession(
                requestID: requestID, displayName: try payload.optionalString("display_name"),
                agentName: try payload.optionalString("agent_name"))
        case "list_sessions":
            let limit = try payload.optionalInt("limit")
            if let limit, !(1...1000).contains(limit) {
                throw WireError("list_sessions.payload.limit: must be 1…1000, got \(limit)")
            }
            return .listSessions(
                requestID: requestID, includeArchived: try payload.bool("include_archived", default: false),
                limit: limit, cursor: try payload.optionalString("cursor"))
        case "switch_session":
            return .switchSession(requestID: requestID, session: try payload.nonBlankString("session_id"))
        case "get_history":
            let limit = try payload.optionalInt("limit") ?? 50
            guard (1...500).contains(limit) else {
                throw WireError("get_history.payload.limit: must be between 1 and 500")
            }
            let before = try payload.optionalInt("before")
            if let before, before < 0 { throw WireError("get_history.payload.before: must be 0 or more") }
            return .getHistory(requestID: requestID, limit: limit, before: before)
        case "rename_session":
            let name = try payload.optionalString("display_name")?.trimmed
            if let name, name.count > 200 { throw WireError("rename_session.payload.display_name: longer than 200") }
            return .renameSession(
                requestID: requestID, session: try payload.nonBlankString("session_id"),
                displayName: name?.isEmpty == false ? name : nil)
        case "archive_session":
            return .archiveSession(
                requestID: requestID, session: try payload.nonBlankString("session_id"),
                archived: try payload.bool("archived", default: true))
        case "delete_session":
            return .deleteSession(requestID: requestID, session: try payload.nonBlankString("session_id"))
        case "set_model":
            let provider = try payload.optionalString("provider")
            if let provider, provider.trimmed.isEmpty {
                throw WireError("set_model.payload.provider: must not be blank")
            }
            return .setModel(requestID: requestID, provider: provider, model: try payload.nonBlankString("model"))
        case "list_models":
            return .listModels(requestID: requestID)
        case "get_usage":
            let days = try payload.optionalInt("days") ?? 7
            guard (1...366).contains(days) else {
                throw WireError("get_usage.payload.days: must be 1…366, got \(days)")
            }
            return .getUsage(requestID: requestID, days: days)
        case "approve":
            let decision = try payload.string("decision")
            guard let parsed = ApprovalDecision(rawValue: decision) else {
                throw WireError("approve.payload.decision: must be \"allow\" or \"deny\", got `\(decision)`")
            }
            let scope = try payload.optionalString("scope") ?? "once"
            guard let parsedScope = ApprovalScope(rawValue: scope) else {
                throw WireError(
                    "approve.payload.scope: must be one of "
                        + ApprovalScope.allCases.map(\.rawValue).joined(separator: ", ") + ", got `\(scope)`")
            }
            return .approve(
                requestID: requestID, approvalID: try payload.nonBlankString("approval_id"), decision: parsed,
                scope: parsedScope)
        case "list_grants":
            return .listGrants(requestID: requestID)
        case "revoke_grant":
            return .revokeGrant(requestID: requestID, grantID: try payload.nonBlankString("grant_id"))
        default:
            let known = [
                "hello", "send_turn", "cancel_active_turn", "cancel_all_active_turns", "health_check", "create_session",
                "list_sessions", "switch_session", "get_history", "rename_session", "archive_session",
                "delete_session", "set_model", "list_models", "get_usage", "approve", "list_grants", "revoke_grant",
            ]
            throw WireError(
                "unknown frame type `\(type)`" + Suggestions.phrase(Suggestions.closest(to: type, in: known))
                    + "; expected one of " + known.joined(separator: ", "))
        }
    }
}

/// A client frame that could not be parsed.
public struct ClientFrameError: Error, Sendable, Hashable, CustomStringConvertible {
    public var requestID: String?
    public var message: String

    public init(requestID: String?, message: String) {
        self.requestID = requestID
        self.message = message
    }
    public var description: String { message }
}
