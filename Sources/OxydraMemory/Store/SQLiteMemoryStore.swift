import OxydraCore

/// A note the agent saved for the user (shared by all of the user's sessions).
public struct Note: Sendable, Hashable, Codable {
    public var id: String
    public var content: String
    public var tags: [String]
    public var createdAt: Date
    public var updatedAt: Date
}

/// A retrieval result with where it came from.
public struct RetrievedChunk: Sendable, Hashable {
    public var chunkID: String
    public var text: String
    public var score: Double
    public var vectorScore: Double
    public var keywordScore: Double
    /// `note`, `user_message`, `assistant_message`, `tool_output`, …
    public var source: String
    public var noteID: String?
    public var sequence: Int?
}

/// Retrieval settings (`[memory.retrieval]`).
public struct RetrievalSettings: Sendable, Hashable {
    public var topK: Int
    public var vectorWeight: Double
    public var keywordWeight: Double

    public init(topK: Int = 8, vectorWeight: Double = 0.7, keywordWeight: Double = 0.3) {
        self.topK = topK
        self.vectorWeight = vectorWeight
        self.keywordWeight = keywordWeight
    }

    public init(_ config: RetrievalConfig) {
        self.init(topK: config.topK, vectorWeight: config.vectorWeight, keywordWeight: config.ftsWeight)
    }
}

/// One user's durable memory: an SQLite database (WAL, foreign keys, busy timeout) holding the
/// sessions, their event logs, per-session state (rolling summary, scratchpad), notes, and the
/// retrieval index (chunks, FTS5, vectors).
///
/// Every append is one committed transaction before the call returns. With `indexing` on
/// (`memory.enabled`), messages and notes are also chunked, embedded and indexed in the same
/// transaction; with it off, conversations are still persisted but nothing is indexed.
public final class SQLiteMemoryStore: MemoryStore, Sendable {
    public let path: String
    public let user: UserID
    public let embedder: any Embedder
    public let indexing: Bool
    public let retrieval: RetrievalSettings
    public let pool: SQLiteDatabasePool
    let vectors = VectorIndex()
    /// Rolling summaries as last read or written: every provider call asks for one.
    let summaries = SummaryCache()

    public var notesScope: String { "notes:" + user.rawValue }

    /// Opens (creating) the database at `path` and runs the migrations.
    public init(
        path: String, user: UserID, embedder: any Embedder = HashingEmbedder(), indexing: Bool = true,
        retrieval: RetrievalSettings = RetrievalSettings(), durability: MemoryDurability = .full
    ) throws(MemoryError) {
        self.path = path
        self.user = user
        self.embedder = embedder
        self.indexing = indexing
        self.retrieval = retrieval
        let directory = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        if !directory.isEmpty {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw .connection("cannot create \(directory): \(error)")
            }
        }
        do {
            pool = try SQLiteDatabasePool(
                path: path,
                setUp: { connection throws(SQLiteError) in
                    // `full`: committed means on disk — an acknowledged message survives a crash or a
                    // power loss. `normal` (WAL): it survives the process dying; the log is synced
                    // at checkpoints.
                    let synchronous = durability == .full ? "FULL" : "NORMAL"
                    try connection.executeScript("PRAGMA foreign_keys = ON; PRAGMA synchronous = \(synchronous)")
                },
                prepare: { connection in
                    try DatabaseSchema.migrator.migrate(connection)
                    try DatabaseSchema.verify(connection)
                })
        } catch let error as MemoryError {
            throw error
        } catch {
            throw .connection("cannot open the memory database at \(path): \(error)")
        }
    }

    // MARK: Conversation events

    public func append(_ messages: [Message], to session: SessionID) async throws(MemoryError) -> [StoredMessage] {
        try await append(messages, to: session, recording: nil)
    }

    public func append(_ messages: [Message], to session: SessionID, usage: UsageRecord) async throws(MemoryError)
        -> [StoredMessage]
    {
        try await append(messages, to: session, recording: usage)
    }

    public func appendWithoutSync(_ messages: [Message], to session: SessionID, usage: UsageRecord)
        async throws(MemoryError) -> [StoredMessage]
    {
        try await append(messages, to: session, recording: usage, syncNow: false)
    }

    public func appendWithoutSync(_ messages: [Message], to session: SessionID) async throws(MemoryError)
        -> [StoredMessage]
    {
        try await append(messages, to: session, recording: nil, syncNow: false)
    }

    /// A synced write that changes a page (SQLite leaves a page that would not change unwritten, and
    /// a commit that writes nothing syncs nothing): the session's `last_active_at` moves on by at
    /// least a millisecond. The write-ahead log is synced as a whole, so everything committed before
    /// it reaches the disk with it.
    public func sync(_ session: SessionID) async throws(MemoryError) {
        try await write { db in
            try db.execute(
                "UPDATE sessions SET last_active_at = MAX(last_active_at + 1, ?) WHERE session_id = ?",
                [Clock.now(), session.rawValue])
        }
    }

    private func append(
        _ messages: [Message], to session: SessionID, recording usage: UsageRecord?, syncNow: Bool = true
    ) async throws(MemoryError) -> [StoredMessage] {
        let payloads = messages.map { ($0, Self.encode($0)) }
        let prepared =
            indexing
            ? messages.map { Self.indexText($0) }.map { text in text.map { ($0.source, Chunker.chunks($0.text)) } } : []
        let embeddings = prepared.map { entry in entry.map { ($0.0, $0.1.map { ($0, embedder.embed($0)) }) } }
        let user = self.user
        let embedderID = embedder.id
        let dimension = embedder.dimension
        let result: ([StoredMessage], [(Int64, [Float])]) = try await write(syncNow: syncNow) { db in
            let now = Clock.now()
            // `last_active_at` moves with synced writes only: a write without a sync (the user's
            // message, tool results) is followed by one (the answer, or `sync`), and leaving the
            // session's row and both listing indexes alone halves the pages it writes.
            try db.execute(
                syncNow
                    ? """
                    INSERT INTO sessions (session_id, user_id, created_at, last_active_at) VALUES (?, ?, ?, ?)
                    ON CONFLICT(session_id) DO UPDATE SET last_active_at = excluded.last_active_at
                    """
                    : """
                    INSERT INTO sessions (session_id, user_id, created_at, last_active_at) VALUES (?, ?, ?, ?)
                    ON CONFLICT(session_id) DO NOTHING
                    """, [session.rawValue, user.rawValue, now, now])
            var sequence =
                try db.value(
                    as: Int.self, "SELECT MAX(sequence) FROM conversation_events WHERE session_id = ?",
                    [session.rawValue]) ?? 0
            if let usage { try Self.insert(usage, user: user, into: db) }
            var stored: [StoredMessage] = []
            var added: [(Int64, [Float])] = []
            for (index, (message, payload)) in payloads.enumerated() {
                sequence += 1
                try db.execute(
                    "INSERT INTO conversation_events (session_id, sequence, payload_json, created_at) VALUES (?, ?, ?, ?)",
                    [session.rawValue, sequence, payload, now])
                stored.append(StoredMessage(sequence: sequence, message: message))
                guard index < embeddings.count, let (source, chunks) = embeddings[index] else { continue }
                for (chunkIndex, (text, vector)) in chunks.enumerated() {
                    let rowid = try Self.insertChunk(
                        db, chunkID: "chunk:\(session.rawValue):\(sequence):\(chunkIndex)", scope: session.rawValue,
                        source: source,
                        sequence: sequence, noteID: nil, text: text, vector: vector, embedder: embedderID,
                        dimension: dimension, now: now)
                    added.append((rowid, vector))
                }
            }
            return (stored, added)
        }
        for (rowid, vector) in result.1 { vectors.appendIfLoaded(session.rawValue, rowid: rowid, vector: vector) }
        return result.0
    }

    public func restore(_ session: SessionID) async throws(MemoryError) -> [StoredMessage] {
        let rows: [(Int, String)] = try await read { db in
            try db.rows(
                "SELECT sequence, payload_json FROM conversation_events WHERE session_id = ? ORDER BY sequence",
                [session.rawValue]
            )
            .map { row throws in (try row[0], try row[1]) }
        }
        return try rows.map { sequence, payload throws(MemoryError) in
            StoredMessage(sequence: sequence, message: try Self.decode(payload, session: session, sequence: sequence))
        }
    }

    /// Appends at an explicit sequence, which must be the next one (detects two writers).
    public func append(_ message: Message, to session: SessionID, expectedSequence: Int) async throws(MemoryError)
        -> StoredMessage
    {
        let current = try await read { db in
            try db.value(
                as: Int.self, "SELECT MAX(sequence) FROM conversation_events WHERE session_id = ?", [session.rawValue])
                ?? 0
        }
        guard expectedSequence == current + 1 else {
            throw .conflict(
                "sequence \(expectedSequence) must follow the last stored sequence \(current) of session `\(session)`")
        }
        let stored = try await append([message], to: session)
        guard stored.first?.sequence == expectedSequence else {
            throw .conflict(
                "session `\(session)` was written concurrently (got sequence \(stored.first?.sequence ?? 0))")
        }
        return stored[0]
    }

    static func encode(_ message: Message) -> String {
        var stored = message
        // Attachment bytes are not kept in the log (their type is).
        stored.attachments = message.attachments.map { Attachment(mimeType: $0.mimeType, data: Data()) }
        return stored.storedJSON
    }

    static func decode(_ payload: String, session: SessionID, sequence: Int) throws(MemoryError) -> Message {
        do {
            return try JSONDecoder().decode(Message.self, from: Data(payload.utf8))
        } catch {
            throw .serialization("event \(sequence) of session `\(session)` is not a valid message: \(error)")
        }
    }

    /// What of a message is indexed, and under which source label.
    static func indexText(_ message: Message) -> (source: String, text: String)? {
        var parts: [String] = []
        if let content = message.content?.trimmed, !content.isEmpty { parts.append(content) }
        for call in message.toolCalls { parts.append("tool \(call.name) arguments \(call.arguments.text)") }
        guard !parts.isEmpty else { return nil }
        let source: String =
            switch message.role {
            case .tool: "tool_output"
            case .assistant: message.toolCalls.isEmpty ? "assistant_message" : "assistant_tool_call"
            case .user: "user_message"
            case .system: "system_message"
            }
        return (source, parts.joined(separator: "\n"))
    }

    public static func insertChunk(
        _ db: SQLiteConnection, chunkID: String, scope: String, source: String, sequence: Int?, noteID: String?,
        text: String,
        vector: [Float],
        embedder: String, dimension: Int, now: Int64
    ) throws -> Int64 {
        try db.execute(
            "INSERT INTO chunks (chunk_id, scope, source, sequence, note_id, text, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [chunkID, scope, source, sequence, noteID, text, now])
        let rowid = db.lastInsertedRowID
        try db.execute(
            "INSERT INTO chunk_vectors (chunk_rowid, embedder, dimension, vector) VALUES (?, ?, ?, ?)",
            [rowid, embedder, dimension, VectorBlob.encode(vector)])
        return rowid
    }

    // MARK: Database access with typed errors

    func write<T: Sendable>(
        syncNow: Bool = true, _ updates: @escaping @Sendable (SQLiteConnection) throws -> T
    ) async throws(MemoryError) -> T {
        do {
            return try await pool.write(syncNow: syncNow, updates)
        } catch let error as MemoryError {
            throw error
        } catch {
            throw .query("\(error)")
        }
    }

    func read<T: Sendable>(_ value: @escaping @Sendable (SQLiteConnection) throws -> T) async throws(MemoryError) -> T {
        do {
            return try await pool.read(value)
        } catch let error as MemoryError {
            throw error
        } catch {
            throw .query("\(error)")
        }
    }
}

/// Little-endian Float32 BLOBs.
enum VectorBlob {
    static func encode(_ vector: [Float]) -> Data {
        var data = Data(capacity: vector.count * 4)
        for value in vector { withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        return data
    }

    /// The vector, or nil unless the blob holds exactly `dimension` finite values.
    static func decode(_ data: Data, dimension: Int) -> [Float]? {
        guard dimension > 0, data.count == dimension * 4 else { return nil }
        let vector = data.withUnsafeBytes { raw in
            (0..<dimension).map {
                Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)))
            }
        }
        return vector.allSatisfy(\.isFinite) ? vector : nil
    }
}
