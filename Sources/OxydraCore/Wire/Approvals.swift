/// How far an "allow" reaches.
public enum ApprovalScope: String, Sendable, Hashable, CaseIterable {
    /// This call only.
    case once
    /// Calls of the same kind until the turn ends.
    case turn
    /// Calls of the same kind in this session (kept across restarts).
    case session
    /// Calls of the same kind in every session of the user, until revoked (`runner approvals revoke`).
    case always
}

public enum ApprovalDecision: String, Sendable, Hashable, CaseIterable {
    case allow, deny
}

/// A tool call waiting for a person (`approval_request`), sent to every client on the session and
/// again to each client that joins the session while it waits — also after a guest restart.
public struct ApprovalRequest: Sendable, Hashable {
    public var approvalID: String
    public var callID: String
    public var tool: String
    /// `shell_exec(command=rm -rf /shared/build)`, at most 100 characters.
    public var summary: String
    /// `medium` or `high` (`none` when `tools.approval.mode = "all"` asks about a harmless call).
    public var risk: ToolRisk.Level
    /// Why it asks: "runs `rm`".
    public var reason: String
    /// The call's arguments (scrubbed, at most 8 KiB).
    public var details: String
    /// RFC 3339; no answer by then is a denial.
    public var expiresAt: String
    /// What `session`/`always` would cover: "`rm` commands".
    public var kindLabel: String

    public init(
        approvalID: String, callID: String, tool: String, summary: String, risk: ToolRisk.Level, reason: String,
        details: String, expiresAt: String, kindLabel: String
    ) {
        self.approvalID = approvalID
        self.callID = callID
        self.tool = tool
        self.summary = summary
        self.risk = risk
        self.reason = reason
        self.details = details
        self.expiresAt = expiresAt
        self.kindLabel = kindLabel
    }

    public var members: [(String, JSONValue)] {
        [
            ("approval_id", .string(approvalID)), ("call_id", .string(callID)), ("tool", .string(tool)),
            ("summary", .string(summary)), ("risk", .string(risk.rawValue)), ("reason", .string(reason)),
            ("details", .string(details)), ("expires_at", .string(expiresAt)), ("kind_label", .string(kindLabel)),
            ("scopes", .array(ApprovalScope.allCases.map { .string($0.rawValue) })),
        ]
    }

    public init(_ p: FieldReader) throws(WireError) {
        let risk = try p.string("risk")
        guard let level = ToolRisk.Level(rawValue: risk) else {
            throw WireError("\(p.path).risk: unknown risk `\(risk)`")
        }
        self.init(
            approvalID: try p.nonBlankString("approval_id"), callID: try p.string("call_id"),
            tool: try p.string("tool"), summary: try p.optionalString("summary") ?? "", risk: level,
            reason: try p.optionalString("reason") ?? "", details: try p.optionalString("details") ?? "",
            expiresAt: try p.string("expires_at"), kindLabel: try p.optionalString("kind_label") ?? "")
    }
}

/// How an approval ended (`approval_resolved`), sent to every client on the session.
public struct ApprovalResolution: Sendable, Hashable {
    public enum Reason: String, Sendable, Hashable, CaseIterable {
        /// A client answered.
        case answered
        /// Nobody answered in `tools.approval.timeout_secs`.
        case timedOut = "timed_out"
        /// The turn was cancelled while it waited.
        case cancelled
    }

    public var approvalID: String
    public var decision: ApprovalDecision
    /// The scope of an "allow" (`once` for denials).
    public var scope: ApprovalScope
    public var reason: Reason
    /// The client that answered (`tui#3`), for `answered`.
    public var answeredBy: String?

    public init(
        approvalID: String, decision: ApprovalDecision, scope: ApprovalScope, reason: Reason, answeredBy: String?
    ) {
        self.approvalID = approvalID
        self.decision = decision
        self.scope = scope
        self.reason = reason
        self.answeredBy = answeredBy
    }

    public var members: [(String, JSONValue)] {
        var members: [(String, JSONValue)] = [
            ("approval_id", .string(approvalID)), ("decision", .string(decision.rawValue)),
            ("scope", .string(scope.rawValue)), ("reason", .string(reason.rawValue)),
        ]
        if let answeredBy { members.append(("answered_by", .string(answeredBy))) }
        return members
    }

    public init(_ p: FieldReader) throws(WireError) {
        let decision = try p.string("decision")
        let scope = try p.optionalString("scope") ?? "once"
        let reason = try p.optionalString("reason") ?? "answered"
        guard let parsedDecision = ApprovalDecision(rawValue: decision),
            let parsedScope = ApprovalScope(rawValue: scope), let parsedReason = Reason(rawValue: reason)
        else {
            throw WireError("\(p.path): unknown decision, scope or reason (`\(decision)`, `\(scope)`, `\(reason)`)")
        }
        self.init(
            approvalID: try p.nonBlankString("approval_id"), decision: parsedDecision, scope: parsedScope,
            reason: parsedReason, answeredBy: try p.optionalString("answered_by"))
    }

    /// The audit log's decision: `allowed_once`, `allowed_session`, `denied`, `timed_out`, `cancelled`.
    public var auditDecision: String {
        switch (reason, decision) {
        case (.answered, .allow): "allowed_" + scope.rawValue
        case (.answered, .deny): "denied"
        case (.timedOut, _): "timed_out"
        case (.cancelled, _): "cancelled"
        }
    }
}

/// A standing "allow" (`session` or `always` scope), as `list_grants` shows it.
public struct ApprovalGrant: Sendable, Hashable {
    public var grantID: String
    public var scope: ApprovalScope
    /// The session a `session` grant belongs to.
    public var session: SessionID?
    public var tool: String
    public var kind: ToolRisk.Kind
    /// RFC 3339.
    public var createdAt: String
    /// The client that answered.
    public var createdBy: String?

    public init(
        grantID: String, scope: ApprovalScope, session: SessionID?, tool: String, kind: ToolRisk.Kind,
        createdAt: String, createdBy: String?
    ) {
        self.grantID = grantID
        self.scope = scope
        self.session = session
        self.tool = tool
        self.kind = kind
        self.createdAt = createdAt
        self.createdBy = createdBy
    }

    public var json: JSONValue {
        .compactObject([
            "grant_id": .string(grantID), "scope": .string(scope.rawValue),
            "session_id": session.map { .string($0.rawValue) }, "tool": .string(tool), "kind": .string(kind.key),
            "label": .string(kind.label), "created_at": .string(createdAt),
            "created_by": createdBy.map(JSONValue.string),
        ])
    }

    public init(_ p: FieldReader) throws(WireError) {
        let scope = try p.string("scope")
        guard let parsed = ApprovalScope(rawValue: scope) else {
            throw WireError("\(p.path).scope: unknown scope `\(scope)`")
        }
        self.init(
            grantID: try p.nonBlankString("grant_id"), scope: parsed,
            session: try p.optionalString("session_id").map(SessionID.init), tool: try p.string("tool"),
            kind: ToolRisk.Kind(key: try p.string("kind"), label: try p.optionalString("label") ?? ""),
            createdAt: try p.optionalString("created_at") ?? "", createdBy: try p.optionalString("created_by"))
    }
}

/// A pending approval as stored with its turn, so it is offered again after a restart.
public struct StoredApproval: Sendable, Hashable {
    public var request: ApprovalRequest
    public var session: SessionID
    public var turn: TurnID
    /// The `request_id` of the turn's `send_turn`.
    public var turnRequestID: String
    /// The kinds an allow for the session would cover.
    public var kinds: [ToolRisk.Kind]
    public var rememberedForSession: Bool
    public var expiresAt: Date

    public init(
        request: ApprovalRequest, session: SessionID, turn: TurnID, turnRequestID: String, kinds: [ToolRisk.Kind],
        rememberedForSession: Bool, expiresAt: Date
    ) {
        self.request = request
        self.session = session
        self.turn = turn
        self.turnRequestID = turnRequestID
        self.kinds = kinds
        self.rememberedForSession = rememberedForSession
        self.expiresAt = expiresAt
    }
}

/// Where grants and pending approvals are kept (the user's memory database).
public protocol ApprovalStore: Sendable {
    /// Every grant of the user (`always` ones and those of every session).
    func grants() async throws(MemoryError) -> [ApprovalGrant]
    func addGrants(_ grants: [ApprovalGrant]) async throws(MemoryError)
    /// Removes a grant; false when there was none with that id.
    func revokeGrant(_ id: String) async throws(MemoryError) -> Bool
    func savePending(_ approval: StoredApproval) async throws(MemoryError)
    func removePending(_ approvalID: String) async throws(MemoryError)
    /// Pending approvals, oldest first.
    func pendingApprovals() async throws(MemoryError) -> [StoredApproval]
}
