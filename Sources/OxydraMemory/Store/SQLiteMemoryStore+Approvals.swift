import OxydraCore

/// Grants and pending approvals (`approval_grants`, `pending_approvals`).
extension SQLiteMemoryStore: ApprovalStore {
    public func grants() async throws(MemoryError) -> [ApprovalGrant] {
        let user = self.user
        return try await read { db in
            try db.rows(
                "SELECT * FROM approval_grants WHERE user_id = ? ORDER BY created_at, grant_id", [user.rawValue]
            )
            .map { row throws(SQLiteError) in
                ApprovalGrant(
                    grantID: try row["grant_id"], scope: ApprovalScope(rawValue: try row["scope"]) ?? .session,
                    session: (try row["session_id"] as String?).map(SessionID.init), tool: try row["tool"],
                    kind: ToolRisk.Kind(key: try row["kind"], label: try row["label"]),
                    createdAt: Timestamp.rfc3339(Clock.date(try row["created_at"])), createdBy: try row["created_by"])
            }
        }
    }

    public func addGrants(_ grants: [ApprovalGrant]) async throws(MemoryError) {
        let user = self.user
        try await write { db in
            for grant in grants {
                try db.execute(
                    """
                    INSERT INTO approval_grants (grant_id, user_id, scope, session_id, tool, kind, label, created_at, created_by)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(grant_id) DO NOTHING
                    """,
                    [
                        grant.grantID, user.rawValue, grant.scope.rawValue, grant.session?.rawValue, grant.tool,
                        grant.kind.key, grant.kind.label, Clock.now(), grant.createdBy,
                    ])
            }
        }
    }

    public func revokeGrant(_ id: String) async throws(MemoryError) -> Bool {
        let user = self.user
        return try await write { db in
            try db.execute("DELETE FROM approval_grants WHERE user_id = ? AND grant_id = ?", [user.rawValue, id])
            return db.changes > 0
        }
    }

    public func savePending(_ approval: StoredApproval) async throws(MemoryError) {
        let user = self.user
        var members = approval.request.members
        members.append(("turn_request_id", .string(approval.turnRequestID)))
        members.append(("remembered_for_session", .bool(approval.rememberedForSession)))
        members.append(
            ("kinds", .array(approval.kinds.map { ["key": .string($0.key), "label": .string($0.label)] })))
        let json = JSONValue.object(Dictionary(members, uniquingKeysWith: { first, _ in first })).compactText
        try await write { db in
            try db.execute(
                """
                INSERT INTO pending_approvals (approval_id, user_id, session_id, turn_id, request_json, created_at, expires_at)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """,
                [
                    approval.request.approvalID, user.rawValue, approval.session.rawValue, approval.turn.rawValue,
                    json, Clock.now(), Int64((approval.expiresAt.timeIntervalSince1970 * 1000).rounded()),
                ])
        }
    }

    public func removePending(_ approvalID: String) async throws(MemoryError) {
        let user = self.user
        try await write { db in
            try db.execute(
                "DELETE FROM pending_approvals WHERE user_id = ? AND approval_id = ?", [user.rawValue, approvalID])
        }
    }

    public func pendingApprovals() async throws(MemoryError) -> [StoredApproval] {
        let user = self.user
        return try await read { db in
            try db.rows(
                "SELECT * FROM pending_approvals WHERE user_id = ? ORDER BY created_at, approval_id", [user.rawValue]
            ).map { row in
                let text: String = try row["request_json"]
                let reader = try FieldReader(try JSONValue(parsing: text), path: "pending_approvals.request_json")
                var kinds: [ToolRisk.Kind] = []
                for item in try reader.array("kinds") {
                    let kind = try FieldReader(item, path: "kinds")
                    kinds.append(ToolRisk.Kind(key: try kind.string("key"), label: try kind.string("label")))
                }
                return StoredApproval(
                    request: try ApprovalRequest(reader), session: SessionID(try row["session_id"] as String),
                    turn: TurnID(try row["turn_id"] as String), turnRequestID: try reader.string("turn_request_id"),
                    kinds: kinds, rememberedForSession: try reader.bool("remembered_for_session", default: false),
                    expiresAt: Clock.date(try row["expires_at"]))
            }
        }
    }
}
