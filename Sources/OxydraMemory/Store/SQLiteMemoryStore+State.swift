import OxydraCore

/// Per-session state (`session_state.state_json`): the rolling summary and the scratchpad.
extension SQLiteMemoryStore {
    static func state(_ db: SQLiteConnection, _ session: SessionID) throws -> [String: JSONValue] {
        guard
            let text = try db.value(
                as: String.self, "SELECT state_json FROM session_state WHERE session_id = ?", [session.rawValue])
        else {
            return [:]
        }
        return (try? JSONValue(parsing: text))?.objectValue ?? [:]
    }

    static func saveState(_ db: SQLiteConnection, _ session: SessionID, _ state: [String: JSONValue], user: UserID)
        throws
    {
        let now = Clock.now()
        try db.execute(
            "INSERT INTO sessions (session_id, user_id, created_at, last_active_at) VALUES (?, ?, ?, ?) ON CONFLICT(session_id) DO NOTHING",
            [session.rawValue, user.rawValue, now, now])
        try db.execute(
            """
            INSERT INTO session_state (session_id, state_json, updated_at) VALUES (?, ?, ?)
            ON CONFLICT(session_id) DO UPDATE SET state_json = excluded.state_json, updated_at = excluded.updated_at
            """, [session.rawValue, JSONValue.object(state).compactText, now])
    }

    public func summary(of session: SessionID) async throws(MemoryError) -> SessionSummary? {
        try await read { db in
            guard let summary = try Self.state(db, session)["summary"] else { return nil }
            return try JSONDecoder().decode(SessionSummary.self, from: Data(summary.compactText.utf8))
        }
    }

    public func replaceSummary(of session: SessionID, expectedEpoch: Int, with summary: SessionSummary)
        async throws(MemoryError) -> Bool
    {
        guard summary.epoch > expectedEpoch else {
            throw .conflict("summary epoch \(summary.epoch) must be greater than the expected epoch \(expectedEpoch)")
        }
        let user = self.user
        let encoded: JSONValue = [
            "epoch": .integer(summary.epoch), "upper_sequence": .integer(summary.upperSequence),
            "text": .string(summary.text),
        ]
        return try await write { db in
            var state = try Self.state(db, session)
            let current = state["summary"]
            let currentEpoch = current?["epoch"]?.intValue ?? 0
            guard currentEpoch == expectedEpoch else { return false }
            if let upper = current?["upper_sequence"]?.intValue, summary.upperSequence < upper {
                throw MemoryError.conflict(
                    "summary upper_sequence may not decrease (\(upper) → \(summary.upperSequence))")
            }
            state["summary"] = encoded
            try Self.saveState(db, session, state, user: user)
            return true
        }
    }

    // MARK: Model

    public func sessionModel(of session: SessionID) async throws(MemoryError) -> (provider: String, model: String)? {
        try await read { db in
            let model = try Self.state(db, session)["model"]
            guard let provider = model?["provider"]?.stringValue, let id = model?["model"]?.stringValue else {
                return nil
            }
            return (provider, id)
        }
    }

    public func setSessionModel(_ model: (provider: String, model: String)?, of session: SessionID)
        async throws(MemoryError)
    {
        let user = self.user
        let value: JSONValue? = model.map { ["provider": .string($0.provider), "model": .string($0.model)] }
        try await write { db in
            var state = try Self.state(db, session)
            state["model"] = value
            try Self.saveState(db, session, state, user: user)
        }
    }

    // MARK: Scratchpad

    public static let scratchpadItems = 32
    public static let scratchpadItemLength = 240

    /// The session's scratchpad items and when they were written.
    public func scratchpad(of session: SessionID) async throws(MemoryError) -> (items: [String], updatedAt: Date?) {
        try await read { db in
            let pad = try Self.state(db, session)["scratchpad"]
            let items = pad?["items"]?.arrayValue?.compactMap(\.stringValue) ?? []
            return (items, pad?["updated_at"]?.intValue.map { Clock.date(Int64($0)) })
        }
    }

    /// Replaces the scratchpad; nil or empty clears it. Returns whether it changed.
    @discardableResult
    public func writeScratchpad(_ items: [String]?, of session: SessionID) async throws(MemoryError) -> Bool {
        let user = self.user
        return try await write { db in
            var state = try Self.state(db, session)
            let previous = state["scratchpad"]?["items"]?.arrayValue?.compactMap(\.stringValue) ?? []
            let next = items ?? []
            if next.isEmpty {
                state["scratchpad"] = nil
            } else {
                state["scratchpad"] = [
                    "items": .array(next.map(JSONValue.string)), "updated_at": .integer(Int(Clock.now())),
                    "schema_version": 1,
                ]
            }
            try Self.saveState(db, session, state, user: user)
            return previous != next
        }
    }
}
