import OxydraCore
import OxydraTesting
import Synchronization
import Testing

@testable import OxydraMemory

#if canImport(Glibc)
    import Glibc
#endif

struct StoreFixture {
    let directory: TemporaryDirectory
    var path: String { directory.path + "/ws/alice/.oxydra/memory.db" }

    init() throws { directory = try TemporaryDirectory(prefix: "oxydra-memory") }

    func open(indexing: Bool = true, embedder: any Embedder = HashingEmbedder()) throws -> SQLiteMemoryStore {
        try SQLiteMemoryStore(path: path, user: "alice", embedder: embedder, indexing: indexing)
    }

    func remove() { directory.remove() }
}

@Suite("Memory store")
struct MemoryStoreTests {
    @Test func migrationsCreateTheSchemaAndReRunCleanly() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        _ = try fixture.open()
        let reopened = try fixture.open()
        let (tables, journal, foreignKeys) = try await reopened.pool.read { db in
            (
                try db.strings("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"),
                try db.value(as: String.self, "PRAGMA journal_mode"), try db.value(as: Int.self, "PRAGMA foreign_keys")
            )
        }
        for table in DatabaseSchema.requiredTables { #expect(tables.contains(table)) }
        #expect(journal == "wal")
        #expect(foreignKeys == 1)
        let migrations = try await reopened.pool.read { db in
            try db.strings("SELECT identifier FROM grdb_migrations")
        }
        #expect(
            migrations == [
                "v1_sessions_events_state", "v1_chunks_fts_vectors_notes", "v2_session_listing_indexes",
                "v3_usage_records", "v4_approvals", "v5_channels",
            ])
    }

    @Test func aDamagedDatabaseIsReported() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let store = try fixture.open()
        try await store.pool.write { db in try db.execute("DROP TABLE notes") }
        #expect {
            try fixture.open()
        } throws: { error in
            "\(error)".contains("the memory database is missing tables: notes")
        }
    }

    @Test func appendAndRestoreRoundTripWithToolCalls() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let store = try fixture.open()
        let messages: [Message] = [
            .system("sys"),
            .user("look at this", attachments: [Attachment(mimeType: "image/png", data: Data([1, 2, 3]))]),
            .assistant(
                "ok",
                toolCalls: [
                    ToolCall(
                        id: "c1", name: "file_read", arguments: ["path": "/shared/a"],
                        metadata: ["thought_signature": "s"])
                ]),
            .assistant(
                nil,
                toolCalls: [
                    ToolCall(id: "c2", name: "file_list", arguments: .malformed(raw: "{bad", error: "not JSON"))
                ]),
            .toolResult(callID: "c1", content: "file text"),
        ]
        let stored = try await store.append(messages, to: "s1")
        #expect(stored.map(\.sequence) == [1, 2, 3, 4, 5])
        let restored = try await fixture.open().restore("s1")
        #expect(restored.map(\.sequence) == [1, 2, 3, 4, 5])
        var expected = messages
        expected[1].attachments = [Attachment(mimeType: "image/png", data: Data())]
        #expect(restored.map(\.message) == expected)
        #expect(try await store.restore("unknown").isEmpty)
    }

    @Test func concurrentAppendsToDifferentSessions() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let store = try fixture.open()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for session in ["a", "b", "c"] {
                group.addTask {
                    for index in 1...40 {
                        _ = try await store.append([.user("\(session) \(index)")], to: SessionID(session))
                    }
                }
            }
            try await group.waitForAll()
        }
        for session in ["a", "b", "c"] {
            let restored = try await store.restore(SessionID(session))
            #expect(restored.map(\.sequence) == Array(1...40))
            #expect(restored.map(\.message.content) == (1...40).map { "\(session) \($0)" })
        }
    }

    @Test func sequenceConflictsAreRejected() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let store = try fixture.open()
        _ = try await store.append(.user("one"), to: "s", expectedSequence: 1)
        await #expect {
            try await store.append(.user("again one"), to: "s", expectedSequence: 1)
        } throws: { error in
            "\(error)" == "memory write conflict: sequence 1 must follow the last stored sequence 1 of session `s`"
        }
        await #expect(throws: MemoryError.self) { try await store.append(.user("three"), to: "s", expectedSequence: 3) }
        // The database itself refuses duplicate sequences too.
        await #expect {
            try await store.pool.write { db in
                try db.execute(
                    "INSERT INTO conversation_events (session_id, sequence, payload_json, created_at) VALUES ('s', 1, '{}', 0)"
                )
            }
        } throws: { error in
            "\(error)".contains(
                "UNIQUE constraint failed: conversation_events.session_id, conversation_events.sequence")
        }
    }

    @Test func memoryOffStillPersistsButIndexesNothing() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let store = try fixture.open(indexing: false)
        _ = try await store.append([.user("remember the blue door")], to: "s")
        #expect(try await store.restore("s").count == 1)
        #expect(try await store.search("blue door", in: "s", limit: 5).isEmpty)
        #expect(try await store.pool.read { db in try db.value(as: Int.self, "SELECT COUNT(*) FROM chunks") } == 0)
    }

    @Test func sessionsAPI() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let store = try fixture.open()
        let first = try await store.createSession("0a1b2c3d-first", displayName: "Taxes")
        _ = try await store.createSession("0a1b9999-second")
        _ = try await store.createSession("ffff-third", channelOrigin: "telegram")
        try await Task.sleep(for: .milliseconds(5))
        _ = try await store.append([.user("hi")], to: "0a1b2c3d-first")
        #expect(
            try await store.listSessions().sessions.map(\.id.rawValue) == [
                "0a1b2c3d-first", "ffff-third", "0a1b9999-second",
            ])
        #expect(first.displayName == "Taxes" && first.agentName == "default" && first.channelOrigin == "tui")
        #expect(try await store.resolveSession("0a1b2").id == "0a1b2c3d-first")
        #expect(try await store.resolveSession("ffff-third").id == "ffff-third")
        await #expect {
            try await store.resolveSession("0a1b")
        } throws: { error in
            "\(error)".hasPrefix("memory write conflict: ambiguous session prefix `0a1b`: matches 2 sessions (")
        }
        await #expect {
            try await store.resolveSession("zzz")
        } throws: { error in
            "\(error)" == "not found in memory: session `zzz` not found for user `alice`"
        }
        await #expect(throws: MemoryError.self) { try await store.resolveSession("%") }
        // The automatic title goes only to a session nobody has named.
        #expect(try await store.titleSession("0a1b9999-second", "Automatic") == true)
        #expect(try await store.titleSession("0a1b2c3d-first", "Automatic") == false)
        #expect(try await store.session("0a1b2c3d-first")?.displayName == "Taxes")
        #expect(try await store.session("0a1b9999-second")?.displayName == "Automatic")
        try await store.renameSession("ffff-third", to: "Groceries")
        try await store.archiveSession("0a1b9999-second")
        let listed = try await store.listSessions().sessions
        #expect(listed.map(\.id.rawValue) == ["0a1b2c3d-first", "ffff-third"])
        #expect(listed[1].displayName == "Groceries")
        #expect(try await store.listSessions(includeArchived: true).sessions.count == 3)
        await #expect(throws: MemoryError.self) { try await store.renameSession("nope", to: "x") }
    }

    /// Pages follow each other without gaps or repeats, also across sessions active in the same
    /// millisecond; each page is an index range scan (no sort of all sessions).
    @Test func sessionListingPages() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let store = try fixture.open()
        try await store.pool.write { db in
            for index in 0..<25 {
                // Five sessions share each activity time; every fourth is archived.
                try db.execute(
                    """
                    INSERT INTO sessions (session_id, user_id, archived, created_at, last_active_at)
                    VALUES (?, 'alice', ?, 0, ?)
                    """, ["s\(index)", index % 4 == 0 ? 1 : 0, Int64(1000 + index / 5)])
            }
        }
        for includeArchived in [false, true] {
            let whole = try await store.listSessions(includeArchived: includeArchived, limit: 1000)
            #expect(whole.nextCursor == nil)
            #expect(whole.total == (includeArchived ? 25 : 18) && whole.sessions.count == whole.total)
            var paged: [SessionID] = []
            var cursor: String?
            var pages = 0
            repeat {
                let page = try await store.listSessions(includeArchived: includeArchived, limit: 4, cursor: cursor)
                #expect(page.sessions.count <= 4 && page.total == whole.total)
                paged += page.sessions.map(\.id)
                cursor = page.nextCursor
                pages += 1
            } while cursor != nil && pages < 20
            #expect(paged == whole.sessions.map(\.id))
            #expect(pages == (whole.total + 3) / 4)
        }
        await #expect {
            try await store.listSessions(cursor: "not-a-cursor")
        } throws: { error in
            "\(error)".contains("bad session list cursor `not-a-cursor`")
        }
        for sql in [
            "SELECT * FROM sessions WHERE user_id = 'alice' AND archived = 0 AND (last_active_at, rowid) < (1, 2) ORDER BY last_active_at DESC, rowid DESC LIMIT 5",
            "SELECT * FROM sessions WHERE user_id = 'alice' ORDER BY last_active_at DESC, rowid DESC LIMIT 5",
        ] {
            let plan = try await store.pool.read { db in
                try db.rows("EXPLAIN QUERY PLAN " + sql).map { row in (try? row["detail"] as String) ?? "" }
            }
            #expect(!plan.joined().contains("TEMP B-TREE"), "\(plan)")
            #expect(plan.joined().contains("USING INDEX idx_sessions_"), "\(plan)")
        }
    }

    /// A new store whose session `s` has the summary "one" at epoch 1, written by the store.
    private func storeWithSummary(upperSequence: Int) async throws -> (StoreFixture, SQLiteMemoryStore) {
        let fixture = try StoreFixture()
        let store = try fixture.open()
        #expect(try await store.summary(of: "s") == nil)
        #expect(
            try await store.replaceSummary(
                of: "s", expectedEpoch: 0, with: SessionSummary(epoch: 1, upperSequence: upperSequence, text: "one")))
        return (fixture, store)
    }

    @Test func summaryCompareAndSwap() async throws {
        let (fixture, store) = try await storeWithSummary(upperSequence: 10)
        defer { fixture.remove() }
        #expect(
            try await store.replaceSummary(
                of: "s", expectedEpoch: 0, with: SessionSummary(epoch: 1, upperSequence: 12, text: "stale")) == false)
        await #expect(throws: MemoryError.self) {
            try await store.replaceSummary(
                of: "s", expectedEpoch: 1, with: SessionSummary(epoch: 2, upperSequence: 5, text: "backwards"))
        }
        #expect(try await fixture.open().summary(of: "s") == SessionSummary(epoch: 1, upperSequence: 10, text: "one"))
    }

    /// A summary is read from the database once per session, then follows the store's own writes:
    /// a replacement (kept or refused) and a deleted session are read again.
    @Test func summariesAreReadOnceAndFollowTheStoresWrites() async throws {
        let (fixture, store) = try await storeWithSummary(upperSequence: 2)
        defer { fixture.remove() }
        #expect(try await store.summary(of: "s")?.text == "one")
        // Served from memory: the guest is the database's only writer, so a row changed behind the
        // store's back (only a test does that) is not read again…
        try await store.pool.write { db in
            try db.execute(
                "UPDATE session_state SET state_json = ? WHERE session_id = 's'",
                [#"{"summary":{"epoch":3,"upper_sequence":4,"text":"three"}}"#])
        }
        #expect(try await store.summary(of: "s")?.text == "one")
        // …until the store writes the summary itself, even when its compare-and-swap is refused.
        #expect(
            try await store.replaceSummary(
                of: "s", expectedEpoch: 1, with: SessionSummary(epoch: 2, upperSequence: 3, text: "two")) == false)
        #expect(try await store.summary(of: "s")?.text == "three")
        try await store.deleteSession("s")
        #expect(try await store.summary(of: "s") == nil)

        // A session this store created is known to have none, without a read.
        let created = try await store.createSession()
        try await store.pool.write { db in
            try db.execute(
                "INSERT INTO session_state (session_id, state_json, updated_at) VALUES (?, ?, 0)",
                [created.id.rawValue, #"{"summary":{"epoch":1,"upper_sequence":1,"text":"behind"}}"#])
        }
        #expect(try await store.summary(of: created.id) == nil)
        #expect(try await fixture.open().summary(of: created.id)?.text == "behind")
    }

    /// A read that began before a write forgot the entry does not keep what it read.
    @Test func aSummaryReadThatRacedAWriteIsNotKept() {
        let cache = SummaryCache(limit: 2)
        let old = SessionSummary(epoch: 1, upperSequence: 1, text: "old")
        let ticket = cache.ticket()
        cache.forget("a")
        cache.keep(old, for: "a", ticket: ticket)
        #expect(cache["a"] == nil)
        cache.keep(old, for: "a", ticket: cache.ticket())
        #expect(cache["a"] == .some(old))
        cache.keep(nil, for: "b", ticket: cache.ticket())
        #expect(cache["b"] == .some(nil))
        cache.keep(nil, for: "c", ticket: cache.ticket())  // past the limit: starts over
        #expect(cache["a"] == nil && cache["b"] == nil && cache["c"] == .some(nil))
    }

    @Test func notesKeepTheirCreationTime() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let store = try fixture.open()
        let saved = try await store.saveNote("Alice's dentist is Dr. Rao", tags: [" Health ", "health", "People"])
        #expect(saved.id.hasPrefix("note-") && saved.tags == ["health", "people"])
        try await Task.sleep(for: .milliseconds(10))
        let updated = try await store.updateNote(saved.id, content: "Alice's dentist is Dr. Mehta", tags: ["health"])
        #expect(updated.createdAt == saved.createdAt && updated.updatedAt > saved.updatedAt)
        let hits = try await store.retrieve("dentist Mehta", scopes: [store.notesScope], limit: 5)
        #expect(hits.count == 1 && hits[0].noteID == saved.id && hits[0].text.contains("Mehta"))
        try await store.deleteNote(saved.id)
        #expect(try await store.retrieve("dentist", scopes: [store.notesScope], limit: 5).isEmpty)
        await #expect(throws: MemoryError.self) { try await store.deleteNote(saved.id) }
    }
}

@Suite("Durability")
struct DurabilityTests {
    /// `memory.durability` is SQLite's `synchronous` on every connection of the pool.
    @Test(arguments: [(MemoryDurability.full, 2), (.normal, 1)])
    func durabilitySetsSynchronous(_ durability: MemoryDurability, _ expected: Int) async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        var config = MemoryConfig()
        config.dbPath = fixture.path
        config.durability = durability
        let store = try MemoryFactory.open(config, workspaceRoot: fixture.directory.path, user: "probe")
        let read = try await store.pool.read { db in try db.value(as: Int.self, "PRAGMA synchronous") }
        let written = try await store.pool.write { db in try db.value(as: Int.self, "PRAGMA synchronous") }
        #expect(read == expected && written == expected)
        // A write that does not sync on its own runs with NORMAL, and the setting comes back after it.
        let deferred = try await store.pool.write(syncNow: false) { db in
            try db.value(as: Int.self, "PRAGMA synchronous")
        }
        let after = try await store.pool.write { db in try db.value(as: Int.self, "PRAGMA synchronous") }
        #expect(deferred == 1 && after == expected)
    }

    /// A write without a sync leaves the session's row alone (its `last_active_at` moves with the
    /// synced write that follows). `sync` must write a page (a commit that changes nothing syncs
    /// nothing): `last_active_at` moves on each time, even twice within one millisecond.
    @Test func syncWritesAPageEveryTime() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let store = try fixture.open()
        func lastActive() async throws -> Int64 {
            try await store.pool.read { db in
                try db.value(as: Int64.self, "SELECT last_active_at FROM sessions WHERE session_id = 's'") ?? 0
            }
        }
        _ = try await store.append([.user("first")], to: "s")
        let created = try await lastActive()
        try await Task.sleep(for: .milliseconds(5))
        _ = try await store.appendWithoutSync([.user("hi")], to: "s")
        let before = try await lastActive()
        #expect(before == created)
        try await store.sync("s")
        let once = try await lastActive()
        try await store.sync("s")
        let twice = try await lastActive()
        #expect(before < once && once < twice)
        #expect(try await store.restore("s").map(\.message.content) == ["first", "hi"])
    }

    /// A real child process appends and is SIGKILLed mid-stream; everything it reported as
    /// committed must be there, the history must restore, and the store must keep working.
    /// `memory.durability = "normal"` syncs the write-ahead log only at checkpoints: still nothing
    /// committed is lost when the process is killed (the kernel holds the log's pages).
    @Test(arguments: [
        (5, MemoryDurability.full), (37, .full), (120, .full), (37, .normal), (120, .normal),
    ])
    func sigkillLosesNothingCommitted(_ killAfter: Int, _ durability: MemoryDurability) async throws {
        let sessions = Mutex<[String]>([])
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        _ = try fixture.open()
        let (committed, exitCode) = try await ChildProcess.launch(
            "oxydra-memory-probe", [fixture.path, "crash-session", durability.rawValue],
            environment: ["HOME": fixture.directory.path],
            workingDirectory: fixture.directory.path
        ) { process, lines in
            var last = 0
            for try await line in lines {
                if line.hasPrefix("session ") { sessions.withLock { $0.append(String(line.dropFirst(8))) } }
                guard line.hasPrefix("committed "), let sequence = Int(line.dropFirst(10)) else { continue }
                last = sequence
                if sequence >= killAfter {
                    process.send(SIGKILL)
                    break
                }
            }
            return last
        }
        #expect(exitCode == 128 + SIGKILL)
        let store = try fixture.open()
        // Sessions created and titled without a sync of their own are there, titled.
        let created = sessions.withLock { $0 }
        #expect(!created.isEmpty)
        for id in created {
            let record = try await store.session(SessionID(id))
            #expect(
                record?.displayName == "title \(id.dropFirst(2))",
                "session \(id) after the crash: \(String(describing: record))")
        }
        let restored = try await store.restore("crash-session")
        #expect(restored.count >= committed)
        #expect(restored.map(\.sequence) == Array(1...restored.count))
        // Tool calls and results came back paired.
        for (index, entry) in restored.enumerated() where entry.message.role == .tool {
            #expect(index > 0 && restored[index - 1].message.toolCalls.first?.id == entry.message.toolCallID)
        }
        let next = try await store.append([.user("after the crash")], to: "crash-session")
        #expect(next.first?.sequence == restored.count + 1)
        #expect(try await store.search("message number", in: "crash-session", limit: 3).count == 3)
    }
}
