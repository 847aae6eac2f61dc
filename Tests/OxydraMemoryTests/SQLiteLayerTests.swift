import Foundation
import OxydraCore
import OxydraTesting
import Testing

@testable import OxydraMemory

/// The store's SQLite layer (system libsqlite3, one writer and reader connections on threads of
/// their own) on real database files.
@Suite("SQLite layer")
struct SQLiteLayerTests {
    private func pool(_ directory: TemporaryDirectory, readers: Int = 2) throws -> SQLiteDatabasePool {
        try SQLiteDatabasePool(
            path: directory.path + "/test.db", readers: readers,
            setUp: { connection throws(SQLiteError) in try connection.executeScript("PRAGMA foreign_keys = ON") },
            prepare: { connection in
                try connection.executeScript("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT)")
            })
    }

    @Test func aWriteThatThrowsIsRolledBackEntirely() async throws {
        let directory = try TemporaryDirectory(prefix: "oxydra-sqlite")
        defer { directory.remove() }
        let pool = try pool(directory)
        struct Stop: Error {}
        await #expect(throws: Stop.self) {
            try await pool.write { db in
                try db.execute("INSERT INTO items (name) VALUES (?)", ["first"])
                try db.execute("INSERT INTO items (name) VALUES (?)", ["second"])
                throw Stop()
            }
        }
        #expect(try await pool.read { db in try db.value(as: Int.self, "SELECT COUNT(*) FROM items") } == 0)
        // The writer is usable afterwards (the transaction was closed).
        try await pool.write { db in try db.execute("INSERT INTO items (name) VALUES (?)", ["third"]) }
        #expect(try await pool.read { db in try db.strings("SELECT name FROM items") } == ["third"])
    }

    @Test func concurrentWritesAreSerialisedAndReadsSeeOneSnapshot() async throws {
        let directory = try TemporaryDirectory(prefix: "oxydra-sqlite")
        defer { directory.remove() }
        let pool = try pool(directory, readers: 3)
        // Each write reads the count and inserts the next number: any interleaving of two
        // transactions on the writer would produce a duplicate. Synced writes run on the writer's
        // thread, unsynced ones mostly on the caller's: mixed, they are still one at a time.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<200 {
                group.addTask {
                    try await pool.write(syncNow: index % 3 != 0) { db in
                        let count = try db.value(as: Int.self, "SELECT COUNT(*) FROM items") ?? 0
                        try db.execute("INSERT INTO items (name) VALUES (?)", [String(count + 1)])
                    }
                }
                group.addTask {
                    // Two statements in one read transaction agree although writes go on.
                    let (count, names) = try await pool.read { db in
                        (
                            try db.value(as: Int.self, "SELECT COUNT(*) FROM items") ?? 0,
                            try db.strings("SELECT name FROM items")
                        )
                    }
                    #expect(count == names.count)
                }
            }
            try await group.waitForAll()
        }
        let names = try await pool.read { db in try db.strings("SELECT name FROM items ORDER BY id") }
        #expect(names == (1...200).map(String.init))
    }

    /// An unsynced write runs on the caller's thread while the writer connection is free, a synced
    /// one on the writer's own thread (that they still run one at a time:
    /// `concurrentWritesAreSerialisedAndReadsSeeOneSnapshot`).
    @Test func unsyncedWritesRunOnTheCallersThread() async throws {
        let directory = try TemporaryDirectory(prefix: "oxydra-sqlite")
        defer { directory.remove() }
        let pool = try pool(directory)
        #expect(try await pool.write(syncNow: false) { _ in Self.threadName() } != "oxydra-sqlite")
        #expect(try await pool.write { _ in Self.threadName() } == "oxydra-sqlite")
    }

    /// While another connection (another process) holds the write lock, an unsynced write does not
    /// wait on the caller's thread: it goes to the writer's thread, which waits for the lock.
    @Test func anUnsyncedWriteDoesNotWaitForALockOnTheCallersThread() async throws {
        let directory = try TemporaryDirectory(prefix: "oxydra-sqlite")
        defer { directory.remove() }
        let pool = try pool(directory)
        try await pool.write { _ in }
        let other = try SQLiteConnection(path: directory.path + "/test.db")
        try other.execute("BEGIN IMMEDIATE")
        try other.execute("INSERT INTO items (name) VALUES (?)", ["other"])
        let release = Task {
            try await Task.sleep(for: .milliseconds(300))
            try other.execute("COMMIT")
        }
        let thread = try await pool.write(syncNow: false) { db in
            try db.execute("INSERT INTO items (name) VALUES (?)", ["mine"])
            return Self.threadName()
        }
        try await release.value
        #expect(thread == "oxydra-sqlite")
        #expect(
            try await pool.read { db in try db.strings("SELECT name FROM items ORDER BY id") } == ["other", "mine"])
        // The caller's thread is used again once the lock is free.
        #expect(try await pool.write(syncNow: false) { _ in Self.threadName() } != "oxydra-sqlite")
    }

    /// A write on the caller's thread neither syncs nor checkpoints (a checkpoint syncs the
    /// database file): the log grows past the checkpoint threshold and the database file stays as
    /// it was, until the next synced write checkpoints. The connection's own settings are back
    /// after each such write.
    @Test func writesOnTheCallersThreadLeaveCheckpointsToSyncedWrites() async throws {
        let directory = try TemporaryDirectory(prefix: "oxydra-sqlite")
        defer { directory.remove() }
        let path = directory.path + "/test.db"
        let pool = try SQLiteDatabasePool(
            path: path,
            setUp: { connection throws(SQLiteError) in
                try connection.executeScript("PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 4")
            },
            prepare: { connection in
                try connection.executeScript("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
            })
        try await pool.write { _ in }
        func size(_ file: String) throws -> Int {
            try FileManager.default.attributesOfItem(atPath: file)[.size] as! Int
        }
        let before = try size(path)
        let page = String(repeating: "x", count: 3000)
        for _ in 0..<20 {
            let settings = try await pool.write(syncNow: false) { db in
                try db.execute("INSERT INTO items (name) VALUES (?)", [page])
                return (try db.value(as: Int.self, "PRAGMA synchronous"), Self.threadName())
            }
            #expect(settings.0 == 1 && settings.1 != "oxydra-sqlite")
        }
        #expect(try size(path) == before)
        #expect(try size(path + "-wal") > 20 * 3000)
        let settings = try await pool.write { db in
            try db.execute("INSERT INTO items (name) VALUES (?)", [page])
            return (
                try db.value(as: Int.self, "PRAGMA synchronous"),
                try db.value(as: Int.self, "PRAGMA wal_autocheckpoint")
            )
        }
        #expect(settings.0 == 2 && settings.1 == 4)
        #expect(try size(path) > before + 20 * 3000)
        #expect(try await pool.read { db in try db.value(as: Int.self, "SELECT COUNT(*) FROM items") } == 21)
    }

    /// The calling thread's name (the writer's thread is named `oxydra-sqlite`).
    static func threadName() -> String {
        ((try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? "").trimmed
    }

    @Test func misuseIsReportedWithTheStatement() async throws {
        let directory = try TemporaryDirectory(prefix: "oxydra-sqlite")
        defer { directory.remove() }
        let pool = try pool(directory)
        await #expect {
            try await pool.write { db in try db.execute("INSERT INTO items (name) VALUES (?)", []) }
        } throws: { error in
            "\(error)"
                == "SQLite error 25: the statement takes 1 arguments, 0 given (while running `INSERT INTO items (name) VALUES (?)`)"
        }
        await #expect {
            try await pool.read { db in try db.value(as: Int.self, "SELECT 'text'") }
        } throws: { error in
            "\(error)" == "SQLite error 20: column `'text'` holds text(\"text\"), not Int"
        }
        await #expect {
            try await pool.read { db in try db.execute("INSERT INTO items (name) VALUES ('x')") }
        } throws: { error in
            // Reader connections are query-only.
            "\(error)".contains("attempt to write a readonly database")
        }
        await #expect {
            try await pool.read { db in try db.execute("SELECT missing FROM nowhere") }
        } throws: { error in
            "\(error)" == "SQLite error 1: no such table: nowhere (while running `SELECT missing FROM nowhere`)"
        }
    }

    @Test func valuesRoundTripExactly() async throws {
        let directory = try TemporaryDirectory(prefix: "oxydra-sqlite")
        defer { directory.remove() }
        let pool = try pool(directory)
        let text = "naïve — \u{1F600} \0 end"
        let blob = Data([0, 1, 2, 255, 0])
        let row = try await pool.write { db in
            try db.executeScript("CREATE TABLE mixed (i INTEGER, r REAL, t TEXT, b BLOB, e BLOB, n TEXT)")
            try db.execute(
                "INSERT INTO mixed VALUES (?, ?, ?, ?, ?, ?)",
                [Int64.min, 0.1, text, blob, Data(), String?.none])
            return try db.row("SELECT * FROM mixed")!
        }
        #expect(try row[0] as Int64 == Int64.min)
        #expect(try row[1] as Double == 0.1)
        #expect(try row[2] as String == text)
        #expect(try row[3] as Data == blob)
        #expect(try row["e"] as Data == Data())
        #expect(try row["n"] as String? == nil)
    }

    @Test func aDatabaseFromANewerVersionIsRefused() throws {
        let directory = try TemporaryDirectory(prefix: "oxydra-sqlite")
        defer { directory.remove() }
        let path = directory.path + "/memory.db"
        let store = try SQLiteMemoryStore(path: path, user: "alice")
        _ = store
        let connection = try SQLiteConnection(path: path)
        try connection.execute("INSERT INTO grdb_migrations (identifier) VALUES ('v9_from_the_future')")
        #expect {
            try SQLiteMemoryStore(path: path, user: "alice")
        } throws: { error in
            "\(error)".contains("the database was migrated by a newer version (unknown migration `v9_from_the_future`)")
        }
    }
}
