import CSQLite
import CSystemShims
import OxydraCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An SQLite database in WAL mode used from Swift concurrency: one writer connection and a few
/// reader connections (opened on first use), each owned by a ``SQLiteWorker`` with a thread of its
/// own, so a blocking `fsync` or a long query never holds a thread of the small cooperative pool.
/// Writes are serialised on the writer (`BEGIN IMMEDIATE` … `COMMIT`, rolled back when the body
/// throws); reads run concurrently with writes and each other, each in a transaction so it sees
/// one snapshot.
///
/// Why not GRDB: it imports full Foundation (and with it ICU) in most of its files, which costs a
/// guest about 8 MiB of PSS for APIs the store never used; this layer is the part of it we need.
public final class SQLiteDatabasePool: Sendable {
    public let path: String
    /// How long a statement waits for a lock another connection (another process) holds.
    static let busyTimeout: Int32 = 5000
    private let writer: SQLiteWorker
    private let readers: Mutex<[SQLiteWorker]>
    private let nextReader = Atomic<Int>(0)
    private let readerCount: Int
    private let setUp: @Sendable (SQLiteConnection) throws(SQLiteError) -> Void

    /// Opens (creating) the database, switches it to WAL, and hands the writer connection to
    /// `prepare` (migrations) before any other access. `setUp` runs on every new connection
    /// (pragmas such as `foreign_keys` and `synchronous`).
    public init(
        path: String, readers: Int = 2,
        setUp: @escaping @Sendable (SQLiteConnection) throws(SQLiteError) -> Void = { _ in },
        prepare: (SQLiteConnection) throws -> Void = { _ in }
    ) throws {
        self.path = path
        self.readerCount = max(1, readers)
        self.setUp = setUp
        let connection = try SQLiteConnection(path: path)
        connection.setBusyTimeout(milliseconds: Self.busyTimeout)
        try connection.executeScript("PRAGMA journal_mode = WAL")
        try setUp(connection)
        try prepare(connection)
        writer = SQLiteWorker(connection: connection)
        self.readers = Mutex([])
    }

    /// Runs `body` in a write transaction; its changes are committed (and, with
    /// `synchronous = FULL`, on disk) before this returns, or rolled back when it throws.
    ///
    /// `syncNow: false` commits without waiting for the disk (`synchronous = NORMAL` for this one
    /// transaction): the change survives the process being killed at once, and reaches the disk
    /// with the next synced commit (the write-ahead log is one file, synced as a whole). For
    /// bookkeeping that always comes right before a synced write — a new session before its first
    /// message — so that a turn pays one `fdatasync` where it paid two.
    ///
    /// Such a write runs on the calling thread when the writer connection is free: it waits for
    /// nothing (no sync, and no checkpoint: those are left to synced writes), and the two thread
    /// hand-offs and wake-ups of a trip to the writer's thread cost more than the write itself.
    public func write<T: Sendable>(
        syncNow: Bool = true, _ body: @escaping @Sendable (SQLiteConnection) throws -> T
    ) async throws -> T {
        if !syncNow, let done = try writer.unsyncedTransactionIfFree("BEGIN IMMEDIATE", body) { return done }
        return try await writer.transaction("BEGIN IMMEDIATE", syncNow: syncNow, body)
    }

    /// Runs `body` in a read transaction on one of the reader connections.
    public func read<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        try await reader().transaction("BEGIN DEFERRED", body)
    }

    private func reader() -> SQLiteWorker {
        let index = nextReader.wrappingAdd(1, ordering: .relaxed).oldValue % readerCount
        return readers.withLock { readers in
            if index < readers.count { return readers[index] }
            let path = self.path
            let setUp = self.setUp
            let worker = SQLiteWorker { () throws(SQLiteError) in
                let connection = try SQLiteConnection(path: path)
                connection.setBusyTimeout(milliseconds: Self.busyTimeout)
                try connection.executeScript("PRAGMA query_only = 1")
                try setUp(connection)
                return connection
            }
            readers.append(worker)
            return worker
        }
    }
}

/// Owns one connection and runs everything on it on its own thread (the actor's executor) — or,
/// for an unsynced write while the connection is free, on the caller's
/// (``unsyncedTransactionIfFree(_:_:)``). A lock keeps the two apart.
actor SQLiteWorker {
    private struct Slot {
        var connection: SQLiteConnection?
        /// The connection's own `synchronous` setting, once a transaction needed it.
        var synchronous: Int?
        /// Its own `wal_autocheckpoint` setting, once a write on another thread needed it.
        var autoCheckpoint: Int?
    }

    private let thread: SQLiteThread
    private let slot: Mutex<Slot>
    private let open: (@Sendable () throws(SQLiteError) -> SQLiteConnection)?

    nonisolated var unownedExecutor: UnownedSerialExecutor { thread.asUnownedSerialExecutor() }

    init(connection: sending SQLiteConnection) {
        thread = SQLiteThread()
        slot = Mutex(Slot(connection: connection))
        open = nil
    }

    init(open: @escaping @Sendable () throws(SQLiteError) -> SQLiteConnection) {
        thread = SQLiteThread()
        slot = Mutex(Slot())
        self.open = open
    }

    deinit { thread.stop() }

    func transaction<T: Sendable>(
        _ begin: String, syncNow: Bool = true, _ body: @Sendable (SQLiteConnection) throws -> T
    ) throws -> T {
        let open = self.open
        return try slot.withLock { slot in
            try Self.run(&slot, begin, syncNow: syncNow, onCallersThread: false, open: open, body)
        }
    }

    /// Runs an unsynced write transaction on the calling thread if no other transaction holds the
    /// connection and no other connection the database's write lock; nil (nothing done) when one
    /// does. It waits for nothing: not for a lock (another process's write goes on the worker's
    /// thread, which waits out the busy timeout), and its commit does not checkpoint (a checkpoint
    /// syncs the database file).
    nonisolated func unsyncedTransactionIfFree<T: Sendable>(
        _ begin: String, _ body: @Sendable (SQLiteConnection) throws -> T
    ) throws -> T? {
        let open = self.open
        do {
            return try slot.withLockIfAvailable { slot in
                try Self.run(&slot, begin, syncNow: false, onCallersThread: true, open: open, body)
            }
        } catch is Locked {
            return nil
        }
    }

    /// The write lock is held by another connection (`SQLITE_BUSY` at once, without waiting).
    private struct Locked: Error {}

    private static func run<T: Sendable>(
        _ slot: inout Slot, _ begin: String, syncNow: Bool, onCallersThread: Bool,
        open: (@Sendable () throws(SQLiteError) -> SQLiteConnection)?, _ body: (SQLiteConnection) throws -> T
    ) throws -> T {
        let connection = try slot.connection ?? opened(&slot, open)
        // `synchronous` cannot change inside a transaction: set it around this one, and put the
        // connection's own setting (FULL = 2, or already NORMAL = 1; read once) back afterwards.
        if !syncNow && slot.synchronous == nil {
            slot.synchronous = try connection.value(as: Int.self, "PRAGMA synchronous")
        }
        let restored = syncNow ? nil : slot.synchronous.flatMap { $0 > 1 ? $0 : nil }
        if restored != nil { try connection.execute("PRAGMA synchronous = NORMAL") }
        defer { if let restored { try? connection.execute("PRAGMA synchronous = \(restored)") } }
        // Likewise the automatic checkpoint, off for a commit on the caller's thread (a C call:
        // no statement).
        if onCallersThread && slot.autoCheckpoint == nil {
            slot.autoCheckpoint = try connection.value(as: Int.self, "PRAGMA wal_autocheckpoint")
        }
        let checkpointPages = onCallersThread ? slot.autoCheckpoint.flatMap { $0 > 0 ? Int32($0) : nil } : nil
        if checkpointPages != nil { connection.setAutoCheckpoint(pages: 0) }
        defer { if let checkpointPages { connection.setAutoCheckpoint(pages: checkpointPages) } }
        // Prepared once per connection (`execute` caches statements), not parsed per transaction.
        if onCallersThread {
            connection.setBusyTimeout(milliseconds: 0)
            let began = Result { () throws(SQLiteError) in try connection.execute(begin) }
            connection.setBusyTimeout(milliseconds: SQLiteDatabasePool.busyTimeout)
            if case .failure(let error) = began {
                if error.code & 0xFF == SQLITE_BUSY { throw Locked() }
                throw error
            }
        } else {
            try connection.execute(begin)
        }
        do {
            let value = try body(connection)
            try connection.execute("COMMIT")
            return value
        } catch {
            try? connection.executeScript("ROLLBACK")
            throw error
        }
    }

    private static func opened(
        _ slot: inout Slot, _ open: (@Sendable () throws(SQLiteError) -> SQLiteConnection)?
    ) throws(SQLiteError) -> SQLiteConnection {
        guard let open else { throw SQLiteError(code: SQLITE_MISUSE, message: "the connection is closed") }
        let connection = try open()
        slot.connection = connection
        return connection
    }
}

/// A serial executor with one thread of its own (pthread mutex and condition; no Foundation).
final class SQLiteThread: SerialExecutor, @unchecked Sendable {
    // Guarded by `mutex`.
    private var jobs: [UnownedJob] = []
    private var stopped = false
    /// The thread is waiting on `condition` (so a new job has to wake it).
    private var waiting = false
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
        let box = Unmanaged.passRetained(ThreadStart(executor: self))
        var thread = pthread_t()
        let result = pthread_create(
            &thread, nil,
            { raw in
                #if canImport(Darwin)
                    let start = Unmanaged<ThreadStart>.fromOpaque(raw).takeRetainedValue()
                #else
                    let start = Unmanaged<ThreadStart>.fromOpaque(raw!).takeRetainedValue()
                #endif
                // Named (it would inherit its creator's name, often a pool thread's) so that
                // `ps -L` and profiles tell the database thread apart.
                _ = oxydra_set_thread_name("oxydra-sqlite")
                start.executor.loop()
                return nil
            }, box.toOpaque())
        guard result == 0 else { fatalError("cannot start an SQLite thread: error \(result)") }
        pthread_detach(thread)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// The condition is signalled after the mutex is released, and only when the thread waits on
    /// it: a thread woken while the mutex is still held only blocks again, on the mutex (a second
    /// context switch per job), and a busy thread finds the job when it looks.
    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        pthread_mutex_lock(mutex)
        jobs.append(job)
        let wake = waiting
        pthread_mutex_unlock(mutex)
        if wake { pthread_cond_signal(condition) }
    }

    /// Lets the thread end once the queued jobs have run.
    func stop() {
        pthread_mutex_lock(mutex)
        stopped = true
        let wake = waiting
        pthread_mutex_unlock(mutex)
        if wake { pthread_cond_signal(condition) }
    }

    private func loop() {
        while true {
            pthread_mutex_lock(mutex)
            while jobs.isEmpty && !stopped {
                waiting = true
                pthread_cond_wait(condition, mutex)
                waiting = false
            }
            if jobs.isEmpty {
                pthread_mutex_unlock(mutex)
                return
            }
            let batch = jobs
            jobs.removeAll(keepingCapacity: true)
            pthread_mutex_unlock(mutex)
            for job in batch { job.runSynchronously(on: asUnownedSerialExecutor()) }
        }
    }

    private final class ThreadStart {
        let executor: SQLiteThread
        init(executor: SQLiteThread) { self.executor = executor }
    }
}

/// Versioned schema changes, each applied once in its own transaction and recorded by identifier.
/// The record table keeps GRDB's name and shape (`grdb_migrations`), so databases created by
/// earlier versions of Oxydra, which used GRDB's migrator, open unchanged.
public struct SQLiteMigrator {
    private var migrations: [(identifier: String, apply: (SQLiteConnection) throws -> Void)] = []

    public init() {}

    public mutating func registerMigration(_ identifier: String, _ apply: @escaping (SQLiteConnection) throws -> Void) {
        migrations.append((identifier, apply))
    }

    public var identifiers: [String] { migrations.map(\.identifier) }

    /// Applies the migrations not yet recorded. A database that records a migration this version
    /// does not know was written by a newer version: refused, never guessed at.
    public func migrate(_ connection: SQLiteConnection) throws {
        try connection.executeScript(
            "CREATE TABLE IF NOT EXISTS grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY)")
        let applied = try connection.rows("SELECT identifier FROM grdb_migrations").map { row throws in
            try row[0] as String
        }
        let known = Set(identifiers)
        if let unknown = applied.first(where: { !known.contains($0) }) {
            throw SQLiteError(
                code: SQLITE_ERROR,
                message: "the database was migrated by a newer version (unknown migration `\(unknown)`)")
        }
        for migration in migrations where !applied.contains(migration.identifier) {
            try connection.executeScript("BEGIN IMMEDIATE")
            do {
                try migration.apply(connection)
                try connection.execute("INSERT INTO grdb_migrations (identifier) VALUES (?)", [migration.identifier])
                try connection.executeScript("COMMIT")
            } catch {
                try? connection.executeScript("ROLLBACK")
                throw error
            }
        }
    }
}
