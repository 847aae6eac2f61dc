import OxydraCore
import Synchronization

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

    /// The session's rolling summary; read from the database once, then kept (see ``SummaryCache``).
    public func summary(of session: SessionID) async throws(MemoryError) -> SessionSummary? {
        let ticket = summaries.ticket()
        if let known = summaries[session] { return known }
        let summary = try await read { db -> SessionSummary? in
            guard let summary = try Self.state(db, session)["summary"] else { return nil }
            return try JSONDecoder().decode(SessionSummary.self, from: Data(summary.compactText.utf8))
        }
        summaries.keep(summary, for: session, ticket: ticket)
        return summary
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
        summaries.forget(session)
        defer { summaries.forget(session) }
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

/// The rolling summaries of a store's sessions as last read. A summary changes only through
/// ``SQLiteMemoryStore/replaceSummary(of:expectedEpoch:with:)`` or goes with its session, and each
/// of those forgets the entry before and after it writes; a read keeps what it found only when
/// nothing was forgotten since it began (its ticket), so a read that raced a write never keeps the
/// older text. At most `limit` sessions are kept; past that the cache starts over.
final class SummaryCache: Sendable {
    private struct State {
        var entries: [SessionID: SessionSummary?] = [:]
        var generation = 0
    }

    private let state = Mutex(State())
    let limit: Int

    init(limit: Int = 512) { self.limit = limit }

    struct Ticket { fileprivate let generation: Int }

    func ticket() -> Ticket { Ticket(generation: state.withLock { $0.generation }) }

    /// `.some(nil)` for a session known to have no summary; nil when unknown.
    subscript(session: SessionID) -> SessionSummary?? { state.withLock { $0.entries[session] } }

    func keep(_ summary: SessionSummary?, for session: SessionID, ticket: Ticket) {
        state.withLock { state in
            guard state.generation == ticket.generation else { return }
            if state.entries.count >= limit { state.entries.removeAll() }
            state.entries[session] = .some(summary)
        }
    }

    func forget(_ session: SessionID) {
        state.withLock { state in
            state.generation += 1
            state.entries[session] = nil
        }
    }
}
