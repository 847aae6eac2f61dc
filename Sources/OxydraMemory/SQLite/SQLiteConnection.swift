import CSQLite
import OxydraCore

/// A value as SQLite stores it.
public enum SQLiteValue: Sendable, Hashable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
}

/// A Swift value that can be bound to a statement parameter.
public protocol SQLiteBindable: Sendable {
    var sqliteValue: SQLiteValue { get }
}

/// A Swift value that can be read from a result column; nil when the column holds another type.
public protocol SQLiteColumnValue {
    init?(sqliteValue: SQLiteValue)
}

extension String: SQLiteBindable, SQLiteColumnValue {
    public var sqliteValue: SQLiteValue { .text(self) }
    public init?(sqliteValue: SQLiteValue) {
        guard case .text(let text) = sqliteValue else { return nil }
        self = text
    }
}

extension Int64: SQLiteBindable, SQLiteColumnValue {
    public var sqliteValue: SQLiteValue { .integer(self) }
    public init?(sqliteValue: SQLiteValue) {
        guard case .integer(let value) = sqliteValue else { return nil }
        self = value
    }
}

extension Int: SQLiteBindable, SQLiteColumnValue {
    public var sqliteValue: SQLiteValue { .integer(Int64(self)) }
    public init?(sqliteValue: SQLiteValue) {
        guard case .integer(let value) = sqliteValue, let exact = Int(exactly: value) else { return nil }
        self = exact
    }
}

extension Bool: SQLiteBindable, SQLiteColumnValue {
    public var sqliteValue: SQLiteValue { .integer(self ? 1 : 0) }
    public init?(sqliteValue: SQLiteValue) {
        guard case .integer(let value) = sqliteValue else { return nil }
        self = value != 0
    }
}

extension Double: SQLiteBindable, SQLiteColumnValue {
    public var sqliteValue: SQLiteValue { .real(self) }
    public init?(sqliteValue: SQLiteValue) {
        switch sqliteValue {
        case .real(let value): self = value
        case .integer(let value): self = Double(value)
        default: return nil
        }
    }
}

extension Data: SQLiteBindable, SQLiteColumnValue {
    public var sqliteValue: SQLiteValue { .blob(Array(self)) }
    public init?(sqliteValue: SQLiteValue) {
        guard case .blob(let bytes) = sqliteValue else { return nil }
        self = Data(bytes)
    }
}

extension Optional: SQLiteBindable where Wrapped: SQLiteBindable {
    public var sqliteValue: SQLiteValue { self?.sqliteValue ?? .null }
}

extension Optional: SQLiteColumnValue where Wrapped: SQLiteColumnValue {
    public init?(sqliteValue: SQLiteValue) {
        if case .null = sqliteValue {
            self = .none
        } else if let value = Wrapped(sqliteValue: sqliteValue) {
            self = .some(value)
        } else {
            return nil
        }
    }
}

/// An SQLite failure: the result code, SQLite's message and the statement.
public struct SQLiteError: Error, CustomStringConvertible, Sendable {
    public var code: Int32
    public var message: String
    public var sql: String?

    public var description: String {
        "SQLite error \(code): \(message)" + (sql.map { " (while running `\($0.prefix(200))`)" } ?? "")
    }
}

/// One result row: its values by position, and by column name.
public struct SQLiteRow: Sendable {
    public let columns: [String]
    public let values: [SQLiteValue]

    /// The value at `index`, converted to the type the caller asks for.
    public subscript<T: SQLiteColumnValue>(_ index: Int) -> T {
        get throws(SQLiteError) {
            guard values.indices.contains(index) else {
                throw SQLiteError(code: SQLITE_RANGE, message: "no column \(index) in a row of \(values.count)")
            }
            guard let value = T(sqliteValue: values[index]) else {
                throw SQLiteError(
                    code: SQLITE_MISMATCH, message: "column `\(columns[index])` holds \(values[index]), not \(T.self)")
            }
            return value
        }
    }

    /// The value of the column named `name`.
    public subscript<T: SQLiteColumnValue>(_ name: String) -> T {
        get throws(SQLiteError) {
            guard let index = columns.firstIndex(of: name) else {
                throw SQLiteError(
                    code: SQLITE_RANGE, message: "no column `\(name)` in (\(columns.joined(separator: ", ")))")
            }
            return try self[index]
        }
    }
}

/// One SQLite connection (the system library). Not thread-safe by itself: a ``SQLiteWorker``
/// owns each connection and runs everything on it on one thread of its own. Prepared statements
/// are cached per SQL text, so the hot statements (appending a message, restoring a session) are
/// compiled once per connection.
public final class SQLiteConnection {
    private var handle: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]
    public let path: String

    /// Opens (creating, unless `readOnly`) the database at `path`.
    public init(path: String, readOnly: Bool = false) throws(SQLiteError) {
        self.path = path
        let flags =
            (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX
            | SQLITE_OPEN_EXRESCODE
        let result = sqlite3_open_v2(path, &handle, flags, nil)
        guard result == SQLITE_OK else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(handle)
            handle = nil
            throw SQLiteError(code: result, message: "cannot open \(path): \(message)")
        }
    }

    deinit {
        for statement in statements.values { sqlite3_finalize(statement) }
        sqlite3_close_v2(handle)
    }

    /// Rows changed by the last INSERT, UPDATE or DELETE.
    public var changes: Int { Int(sqlite3_changes(handle)) }

    /// The rowid of the last INSERT on this connection.
    public var lastInsertedRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    /// Waits up to `milliseconds` for a lock held by another connection before failing with BUSY.
    public func setBusyTimeout(milliseconds: Int32) { sqlite3_busy_timeout(handle, milliseconds) }

    /// Sets the write-ahead log size (in pages) past which a commit checkpoints; 0: never.
    func setAutoCheckpoint(pages: Int32) { sqlite3_wal_autocheckpoint(handle, pages) }

    /// Runs one or more statements without parameters (schema, pragmas, transaction control).
    public func executeScript(_ sql: String) throws(SQLiteError) {
        var message: UnsafeMutablePointer<CChar>?
        let result = sqlite3_exec(handle, sql, nil, nil, &message)
        defer { sqlite3_free(message) }
        guard result == SQLITE_OK else {
            throw SQLiteError(
                code: result, message: message.map { String(cString: $0) } ?? String(cString: sqlite3_errstr(result)),
                sql: sql)
        }
    }

    /// Runs one statement with `arguments` bound to its `?` parameters.
    public func execute(_ sql: String, _ arguments: [any SQLiteBindable] = []) throws(SQLiteError) {
        try run(sql, arguments) { _ throws(SQLiteError) in }
    }

    /// The rows of one statement.
    public func rows(_ sql: String, _ arguments: [any SQLiteBindable] = []) throws(SQLiteError) -> [SQLiteRow] {
        var rows: [SQLiteRow] = []
        try run(sql, arguments) { row throws(SQLiteError) in rows.append(row) }
        return rows
    }

    /// The first row of one statement, if any.
    public func row(_ sql: String, _ arguments: [any SQLiteBindable] = []) throws(SQLiteError) -> SQLiteRow? {
        try rows(sql, arguments).first
    }

    /// The first column of the first row (nil when there is no row or it holds NULL).
    public func value<T: SQLiteColumnValue>(
        as type: T.Type, _ sql: String, _ arguments: [any SQLiteBindable] = []
    ) throws(SQLiteError) -> T? {
        guard let row = try row(sql, arguments), row.values.first != .null else { return nil }
        return try row[0] as T
    }

    /// The first column of every row, as text.
    public func strings(_ sql: String, _ arguments: [any SQLiteBindable] = []) throws(SQLiteError) -> [String] {
        var strings: [String] = []
        try run(sql, arguments) { row throws(SQLiteError) in strings.append(try row[0]) }
        return strings
    }

    /// Runs one statement, handing each result row to `body` as it is stepped.
    public func run(
        _ sql: String, _ arguments: [any SQLiteBindable], _ body: (SQLiteRow) throws(SQLiteError) -> Void
    ) throws(SQLiteError) {
        let statement = try prepared(sql)
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        let count = Int(sqlite3_bind_parameter_count(statement))
        guard count == arguments.count else {
            throw SQLiteError(
                code: SQLITE_RANGE, message: "the statement takes \(count) arguments, \(arguments.count) given",
                sql: sql)
        }
        for (offset, argument) in arguments.enumerated() {
            let result = Self.bind(argument.sqliteValue, to: statement, at: Int32(offset + 1))
            guard result == SQLITE_OK else { throw failure(result, sql) }
        }
        let columnCount = sqlite3_column_count(statement)
        let columns = (0..<columnCount).map { String(cString: sqlite3_column_name(statement, $0)) }
        while true {
            let result = sqlite3_step(statement)
            if result == SQLITE_DONE { return }
            guard result == SQLITE_ROW else { throw failure(result, sql) }
            let values = (0..<columnCount).map { Self.column(statement, $0) }
            try body(SQLiteRow(columns: columns, values: values))
        }
    }

    private func prepared(_ sql: String) throws(SQLiteError) -> OpaquePointer {
        if let cached = statements[sql] { return cached }
        var statement: OpaquePointer?
        let result = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard result == SQLITE_OK, let statement else { throw failure(result, sql) }
        statements[sql] = statement
        return statement
    }

    private func failure(_ code: Int32, _ sql: String) -> SQLiteError {
        SQLiteError(code: code, message: String(cString: sqlite3_errmsg(handle)), sql: sql)
    }

    /// SQLITE_TRANSIENT: SQLite copies the bound bytes before the call returns.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    private static func bind(_ value: SQLiteValue, to statement: OpaquePointer, at index: Int32) -> Int32 {
        switch value {
        case .null: sqlite3_bind_null(statement, index)
        case .integer(let integer): sqlite3_bind_int64(statement, index, integer)
        case .real(let real): sqlite3_bind_double(statement, index, real)
        case .text(let text):
            // The byte count, not -1: text may hold NUL characters.
            sqlite3_bind_text(statement, index, text, Int32(text.utf8.count), transient)
        case .blob(let bytes):
            bytes.withUnsafeBytes { raw in
                // A zero-length blob still needs a non-null pointer to be a blob, not NULL.
                raw.baseAddress.map { sqlite3_bind_blob(statement, index, $0, Int32(raw.count), transient) }
                    ?? sqlite3_bind_zeroblob(statement, index, 0)
            }
        }
    }

    private static func column(_ statement: OpaquePointer, _ index: Int32) -> SQLiteValue {
        switch sqlite3_column_type(statement, index) {
        case SQLITE_INTEGER: return .integer(sqlite3_column_int64(statement, index))
        case SQLITE_FLOAT: return .real(sqlite3_column_double(statement, index))
        case SQLITE_TEXT:
            let count = Int(sqlite3_column_bytes(statement, index))
            guard let text = sqlite3_column_text(statement, index) else { return .text("") }
            return .text(String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self))
        case SQLITE_BLOB:
            let count = Int(sqlite3_column_bytes(statement, index))
            guard let bytes = sqlite3_column_blob(statement, index), count > 0 else { return .blob([]) }
            return .blob(Array(UnsafeRawBufferPointer(start: bytes, count: count)))
        default: return .null
        }
    }
}
