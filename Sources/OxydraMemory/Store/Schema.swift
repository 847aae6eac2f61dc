import OxydraCore

/// The database schema, created and evolved by versioned migrations.
enum DatabaseSchema {
    static let requiredTables = [
        "sessions", "conversation_events", "session_state", "chunks", "chunks_fts", "chunk_vectors", "notes",
        "usage_records", "approval_grants", "pending_approvals", "channel_updates", "channel_values",
    ]

    static var migrator: SQLiteMigrator {
        var migrator = SQLiteMigrator()
        migrator.registerMigration("v1_sessions_events_state") { db in
            try db.executeScript(
                """
                CREATE TABLE sessions (
                    session_id TEXT PRIMARY KEY NOT NULL,
                    user_id TEXT NOT NULL,
                    display_name TEXT,
                    agent_name TEXT NOT NULL DEFAULT 'default',
                    channel_origin TEXT NOT NULL DEFAULT 'tui',
                    archived INTEGER NOT NULL DEFAULT 0,
                    created_at INTEGER NOT NULL,
                    last_active_at INTEGER NOT NULL
                );
                CREATE INDEX idx_sessions_user_activity ON sessions(user_id, archived, last_active_at DESC);
                CREATE TABLE conversation_events (
                    session_id TEXT NOT NULL REFERENCES sessions(session_id) ON DELETE CASCADE,
                    sequence INTEGER NOT NULL CHECK (sequence > 0),
                    payload_json TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    PRIMARY KEY (session_id, sequence)
                ) WITHOUT ROWID;
                CREATE TABLE session_state (
                    session_id TEXT PRIMARY KEY NOT NULL REFERENCES sessions(session_id) ON DELETE CASCADE,
                    state_json TEXT NOT NULL CHECK (json_valid(state_json)),
                    updated_at INTEGER NOT NULL
                );
                """)
        }
        migrator.registerMigration("v1_chunks_fts_vectors_notes") { db in
            try db.executeScript(
                """
                CREATE TABLE chunks (
                    id INTEGER PRIMARY KEY,
                    chunk_id TEXT NOT NULL UNIQUE,
                    scope TEXT NOT NULL,
                    source TEXT NOT NULL,
                    sequence INTEGER,
                    note_id TEXT,
                    text TEXT NOT NULL,
                    created_at INTEGER NOT NULL
                );
                CREATE INDEX idx_chunks_scope ON chunks(scope, id);
                CREATE INDEX idx_chunks_note ON chunks(note_id) WHERE note_id IS NOT NULL;
                CREATE VIRTUAL TABLE chunks_fts USING fts5(
                    text, content='chunks', content_rowid='id', tokenize='unicode61 remove_diacritics 2');
                CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
                    INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text);
                END;
                CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
                    INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
                END;
                CREATE TRIGGER chunks_fts_update AFTER UPDATE OF text ON chunks BEGIN
                    INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
                    INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text);
                END;
                CREATE TABLE chunk_vectors (
                    chunk_rowid INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
                    embedder TEXT NOT NULL,
                    dimension INTEGER NOT NULL,
                    vector BLOB NOT NULL
                );
                CREATE TABLE notes (
                    note_id TEXT PRIMARY KEY NOT NULL,
                    user_id TEXT NOT NULL,
                    content TEXT NOT NULL,
                    tags_json TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(tags_json)),
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL
                );
                CREATE INDEX idx_notes_user ON notes(user_id, updated_at DESC);
                """)
        }
        // Listing pages walk an index in order: one for the live sessions, one for all of them.
        // (Ascending, read backwards: the order is last_active_at DESC, rowid DESC without a sort.)
        migrator.registerMigration("v2_session_listing_indexes") { db in
            try db.executeScript(
                """
                DROP INDEX IF EXISTS idx_sessions_user_activity;
                CREATE INDEX idx_sessions_live ON sessions(user_id, archived, last_active_at);
                CREATE INDEX idx_sessions_all ON sessions(user_id, last_active_at);
                """)
        }
        // The user's spending: one row per provider call, kept when a session is deleted.
        migrator.registerMigration("v3_usage_records") { db in
            try db.executeScript(
                """
                CREATE TABLE usage_records (
                    id INTEGER PRIMARY KEY,
                    user_id TEXT NOT NULL,
                    session_id TEXT NOT NULL,
                    at INTEGER NOT NULL,
                    provider TEXT NOT NULL,
                    model TEXT NOT NULL,
                    prompt_tokens INTEGER,
                    completion_tokens INTEGER,
                    -- billionths of a dollar (exact sums); NULL for an unpriced model
                    cost_nanousd INTEGER
                );
                CREATE INDEX idx_usage_user_at ON usage_records(user_id, at);
                """)
        }
        // Approvals: standing grants (`session` and `always`) and the requests a turn waits on, kept
        // so a restart offers them again.
        migrator.registerMigration("v4_approvals") { db in
            try db.executeScript(
                """
                CREATE TABLE approval_grants (
                    grant_id TEXT PRIMARY KEY NOT NULL,
                    user_id TEXT NOT NULL,
                    scope TEXT NOT NULL CHECK (scope IN ('session', 'always')),
                    session_id TEXT,
                    tool TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    label TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    created_by TEXT
                );
                CREATE INDEX idx_grants_user ON approval_grants(user_id, created_at);
                CREATE TABLE pending_approvals (
                    approval_id TEXT PRIMARY KEY NOT NULL,
                    user_id TEXT NOT NULL,
                    session_id TEXT NOT NULL,
                    turn_id TEXT NOT NULL,
                    request_json TEXT NOT NULL CHECK (json_valid(request_json)),
                    created_at INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL
                );
                """)
        }
        migrator.registerMigration("v5_channels") { db in
            try db.executeScript(
                """
                CREATE TABLE channel_updates (
                    channel TEXT NOT NULL,
                    update_id INTEGER NOT NULL,
                    payload TEXT NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('received', 'turn_started', 'done')),
                    turn_id TEXT,
                    received_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL,
                    PRIMARY KEY (channel, update_id)
                );
                CREATE INDEX idx_channel_updates_pending ON channel_updates(channel, state, update_id);
                CREATE TABLE channel_values (
                    channel TEXT NOT NULL,
                    key TEXT NOT NULL,
                    value TEXT NOT NULL,
                    PRIMARY KEY (channel, key)
                );
                """)
        }
        return migrator
    }

    /// Fails when a required table is missing (a damaged or foreign database file).
    static func verify(_ db: SQLiteConnection) throws {
        let present = try Set(
            db.strings("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"))
        let missing = requiredTables.filter { !present.contains($0) }
        if !missing.isEmpty {
            throw MemoryError.migration("the memory database is missing tables: \(missing.joined(separator: ", "))")
        }
    }
}

/// Milliseconds since 1970, the stored time unit.
enum Clock {
    static func now() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }
    static func date(_ milliseconds: Int64) -> Date { Date(timeIntervalSince1970: Double(milliseconds) / 1000) }
}
