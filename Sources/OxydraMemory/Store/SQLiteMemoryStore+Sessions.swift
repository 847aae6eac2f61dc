import OxydraCore

/// Sessions as the gateway lists and switches them.
extension SQLiteMemoryStore: SessionCatalog {
    public func createSession(
        _ id: SessionID = SessionID(UUID().uuidString.lowercased()), displayName: String? = nil,
        agentName: String = "default",
        channelOrigin: String = "tui"
    ) async throws(MemoryError) -> SessionRecord {
        let user = self.user
        let ticket = summaries.ticket()
        // Not synced on its own: a new session's row reaches the disk with its first message.
        let record = try await write(syncNow: false) { db in
            let now = Clock.now()
            try db.execute(
                """
                INSERT INTO sessions (session_id, user_id, display_name, agent_name, channel_origin, created_at, last_active_at)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """, [id.rawValue, user.rawValue, displayName, agentName, channelOrigin, now, now])
            return try Self.record(db, id)!
        }
        // The row is new (a plain INSERT) and state rows cannot outlive theirs: no summary yet, so
        // the session's first provider call need not ask the database.
        summaries.keep(nil, for: id, ticket: ticket)
        return record
    }

    /// A page of the user's sessions, most recently active first (ties: newest row first). Each
    /// page is one range scan of an index, whatever the number of sessions: the cursor is the last
    /// row's `last_active_at` and rowid (`<ms>.<rowid>`).
    public func listSessions(includeArchived: Bool = false, limit: Int = 200, cursor: String? = nil)
        async throws(MemoryError) -> SessionPage
    {
        let user = self.user
        let after = cursor.flatMap(SessionPage.position(of:))
        if let cursor, after == nil {
            throw .query("bad session list cursor `\(cursor)` (pass back a next_cursor unchanged)")
        }
        let limit = max(min(limit, 1000), 1)
        return try await read { db in
            // Separate statements so that each matches an index exactly (see the v2 migration).
            let scope = includeArchived ? "user_id = ?" : "user_id = ? AND archived = 0"
            var arguments: [any SQLiteBindable] = [user.rawValue]
            var range = ""
            if let after {
                range = " AND (last_active_at, rowid) < (?, ?)"
                arguments += [after.time, after.row]
            }
            let rows = try db.rows(
                "SELECT rowid AS row_id, * FROM sessions WHERE \(scope)\(range) ORDER BY last_active_at DESC, rowid DESC LIMIT ?",
                arguments + [limit + 1])
            var sessions: [SessionRecord] = []
            var next: String?
            for (index, row) in rows.enumerated() {
                guard index < limit else {
                    let last = rows[index - 1]
                    next = "\(try last["last_active_at"] as Int64).\(try last["row_id"] as Int64)"
                    break
                }
                sessions.append(try Self.record(row))
            }
            let total = try db.value(as: Int.self, "SELECT COUNT(*) FROM sessions WHERE \(scope)", [user.rawValue]) ?? 0
            return SessionPage(sessions: sessions, nextCursor: next, total: total)
        }
    }

    /// How many sessions the user has (without reading them).
    public func sessionCount(includeArchived: Bool = false) async throws(MemoryError) -> Int {
        let user = self.user
        return try await read { db in
            try db.value(
                as: Int.self, "SELECT COUNT(*) FROM sessions WHERE user_id = ? AND (? OR archived = 0)",
                [user.rawValue, includeArchived]) ?? 0
        }
    }

    public func session(_ id: SessionID) async throws(MemoryError) -> SessionRecord? {
        try await read { db in try Self.record(db, id) }
    }

    /// A session by exact id, or by a prefix that matches exactly one of the user's sessions.
    public func resolveSession(_ idOrPrefix: String) async throws(MemoryError) -> SessionRecord {
        let user = self.user
        let matches: [SessionRecord] = try await read { db in
            if let exact = try Self.record(db, SessionID(idOrPrefix)), exact.userID == user { return [exact] }
            let pattern =
                idOrPrefix.replacing("\\", with: "\\\\").replacing("%", with: "\\%").replacing("_", with: "\\_") + "%"
            return try db.rows(
                "SELECT * FROM sessions WHERE user_id = ? AND session_id LIKE ? ESCAPE '\\' ORDER BY last_active_at DESC LIMIT 6",
                [user.rawValue, pattern]
            ).map { row throws(SQLiteError) in try Self.record(row) }
        }
        guard !idOrPrefix.isEmpty, !matches.isEmpty else {
            throw .notFound("session `\(idOrPrefix)` not found for user `\(user)`")
        }
        guard matches.count == 1 else {
            throw .conflict(
                "ambiguous session prefix `\(idOrPrefix)`: matches \(matches.count == 6 ? "6 or more" : String(matches.count)) sessions ("
                    + matches.prefix(5).map(\.id.rawValue).joined(separator: ", ") + ")")
        }
        return matches[0]
    }

    public func renameSession(_ id: SessionID, to name: String?) async throws(MemoryError) {
        try await update(id, sql: "UPDATE sessions SET display_name = ? WHERE session_id = ? AND user_id = ?", name)
    }

    public func titleSession(_ id: SessionID, _ title: String) async throws(MemoryError) -> Bool {
        let user = self.user
        return try await write(syncNow: false) { db in
            try db.execute(
                "UPDATE sessions SET display_name = ? WHERE session_id = ? AND user_id = ? AND display_name IS NULL",
                [title, id.rawValue, user.rawValue])
            return db.changes > 0
        }
    }

    public func archiveSession(_ id: SessionID, archived: Bool = true) async throws(MemoryError) {
        try await update(id, sql: "UPDATE sessions SET archived = ? WHERE session_id = ? AND user_id = ?", archived)
    }

    /// One transaction: the session's chunks (their vectors and search entries follow by cascade and
    /// trigger), then the session (its events and state follow by cascade).
    public func deleteSession(_ id: SessionID) async throws(MemoryError) {
        let user = self.user
        summaries.forget(id)
        defer { summaries.forget(id) }
        let removed = try await write { db in
            guard try Self.record(db, id)?.userID == user else { return false }
            try db.execute("DELETE FROM chunks WHERE scope = ?", [id.rawValue])
            try db.execute("DELETE FROM sessions WHERE session_id = ? AND user_id = ?", [id.rawValue, user.rawValue])
            return true
        }
        guard removed else { throw .notFound("session `\(id)` not found for user `\(user)`") }
        vectors.invalidate(id.rawValue)
    }

    private func update(_ id: SessionID, sql: String, _ value: any SQLiteBindable)
        async throws(MemoryError)
    {
        let user = self.user
        let changed = try await write { db in
            try db.execute(sql, [value, id.rawValue, user.rawValue])
            return db.changes
        }
        if changed == 0 { throw .notFound("session `\(id)` not found for user `\(user)`") }
    }

    static func record(_ db: SQLiteConnection, _ id: SessionID) throws -> SessionRecord? {
        try db.row("SELECT * FROM sessions WHERE session_id = ?", [id.rawValue]).map { row throws(SQLiteError) in
            try record(row)
        }
    }

    static func record(_ row: SQLiteRow) throws(SQLiteError) -> SessionRecord {
        SessionRecord(
            id: SessionID(try row["session_id"] as String), userID: UserID(try row["user_id"] as String),
            displayName: try row["display_name"],
            agentName: try row["agent_name"], channelOrigin: try row["channel_origin"], archived: try row["archived"],
            createdAt: Clock.date(try row["created_at"]), lastActiveAt: Clock.date(try row["last_active_at"]))
    }
}

/// Notes: things the agent saved for the user, shared by all sessions, indexed for retrieval.
extension SQLiteMemoryStore {
    public static let maxTags = 16
    public static let maxTagLength = 64

    /// Tags trimmed, lowercased, de-duplicated, at most 16 of at most 64 characters.
    public static func normalizeTags(_ tags: [String]) -> [String] {
        var result: [String] = []
        for tag in tags {
            let clean = String(tag.trimmed.lowercased().prefix(maxTagLength))
            if !clean.isEmpty && !result.contains(clean) { result.append(clean) }
        }
        return Array(result.prefix(maxTags))
    }

    public func saveNote(_ content: String, tags: [String] = [], id: String? = nil) async throws(MemoryError) -> Note {
        let noteID = id ?? "note-\(UUID().uuidString.lowercased())"
        let clean = Self.normalizeTags(tags)
        let chunks = indexing ? Chunker.chunks(content).map { ($0, embedder.embed($0)) } : []
        let user = self.user
        let scope = notesScope
        let embedderID = embedder.id
        let dimension = embedder.dimension
        let (note, added): (Note, [(Int64, [Float])]) = try await write { db in
            let now = Clock.now()
            let created =
                try db.value(as: Int64.self, "SELECT created_at FROM notes WHERE note_id = ?", [noteID])
                ?? now
            try db.execute(
                """
                INSERT INTO notes (note_id, user_id, content, tags_json, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT(note_id) DO UPDATE SET content = excluded.content, tags_json = excluded.tags_json, updated_at = excluded.updated_at
                """,
                [
                    noteID, user.rawValue, content, JSONValue.array(clean.map(JSONValue.string)).compactText, created,
                    now,
                ])
            try db.execute("DELETE FROM chunks WHERE note_id = ?", [noteID])
            var added: [(Int64, [Float])] = []
            for (index, (text, vector)) in chunks.enumerated() {
                let tagged = clean.isEmpty ? text : text + " [tags: " + clean.joined(separator: ", ") + "]"
                added.append(
                    (
                        try Self.insertChunk(
                            db, chunkID: "chunk:\(noteID):\(index)", scope: scope, source: "note", sequence: nil,
                            noteID: noteID, text: tagged,
                            vector: vector, embedder: embedderID, dimension: dimension, now: now), vector
                    ))
            }
            return (
                Note(
                    id: noteID, content: content, tags: clean, createdAt: Clock.date(created),
                    updatedAt: Clock.date(now)), added
            )
        }
        if id != nil {
            vectors.invalidate(scope)
        } else {
            for (rowid, vector) in added { vectors.appendIfLoaded(scope, rowid: rowid, vector: vector) }
        }
        return note
    }

    public func note(_ id: String) async throws(MemoryError) -> Note? {
        let user = self.user
        return try await read { db in
            try db.row(
                "SELECT * FROM notes WHERE note_id = ? AND user_id = ?", [id, user.rawValue]
            ).map { row throws(SQLiteError) in
                Note(
                    id: try row["note_id"], content: try row["content"],
                    tags: (try? JSONValue(parsing: try row["tags_json"] as String))?.arrayValue?.compactMap(
                        \.stringValue) ?? [],
                    createdAt: Clock.date(try row["created_at"]), updatedAt: Clock.date(try row["updated_at"]))
            }
        }
    }

    /// Replaces a note's content and tags, keeping its id and `created_at`.
    public func updateNote(_ id: String, content: String, tags: [String]) async throws(MemoryError) -> Note {
        guard try await note(id) != nil else { throw .notFound("note `\(id)` not found") }
        return try await saveNote(content, tags: tags, id: id)
    }

    public func deleteNote(_ id: String) async throws(MemoryError) {
        let user = self.user
        let deleted = try await write { db in
            try db.execute("DELETE FROM chunks WHERE note_id = ?", [id])
            try db.execute("DELETE FROM notes WHERE note_id = ? AND user_id = ?", [id, user.rawValue])
            return db.changes
        }
        vectors.invalidate(notesScope)
        if deleted == 0 { throw .notFound("note `\(id)` not found") }
    }
}
