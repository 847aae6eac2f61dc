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
        // transactions on the writer would produce a duplicate.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<200 {
                group.addTask {
                    try await pool.write { db in
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
