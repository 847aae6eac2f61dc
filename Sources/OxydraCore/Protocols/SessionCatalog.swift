/// A session as listed to users.
public struct SessionRecord: Sendable, Hashable, Codable {
    public var id: SessionID
    public var userID: UserID
    public var displayName: String?
    public var agentName: String
    public var channelOrigin: String
    public var archived: Bool
    public var createdAt: Date
    public var lastActiveAt: Date

    public init(
        id: SessionID, userID: UserID, displayName: String?, agentName: String, channelOrigin: String,
        archived: Bool, createdAt: Date, lastActiveAt: Date
    ) {
        self.id = id
        self.userID = userID
        self.displayName = displayName
        self.agentName = agentName
        self.channelOrigin = channelOrigin
        self.archived = archived
        self.createdAt = createdAt
        self.lastActiveAt = lastActiveAt
    }
}

/// One page of a session listing.
public struct SessionPage: Sendable, Hashable {
    public var sessions: [SessionRecord]
    /// Where the next page starts (nil on the last page); opaque to clients.
    public var nextCursor: String?
    /// How many sessions the whole listing has.
    public var total: Int

    /// The position a cursor names: the last listed row's activity time (ms) and row number.
    public static func position(of cursor: String) -> (time: Int64, row: Int64)? {
        let parts = cursor.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let time = Int64(parts[0]), let row = Int64(parts[1]) else { return nil }
        return (time, row)
    }

    public init(sessions: [SessionRecord], nextCursor: String?, total: Int) {
        self.sessions = sessions
        self.nextCursor = nextCursor
        self.total = total
    }
}

/// A user's sessions and their histories: what the gateway (and the coming web app and channels)
/// need from a store. The SQLite store implements it; a PostgreSQL store will too.
public protocol SessionCatalog: MemoryStore {
    func createSession(_ id: SessionID, displayName: String?, agentName: String, channelOrigin: String)
        async throws(MemoryError) -> SessionRecord
    /// A page of the user's sessions, most recently active first: at most `limit`, after the page
    /// whose `nextCursor` is `cursor` (nil: the first page).
    func listSessions(includeArchived: Bool, limit: Int, cursor: String?) async throws(MemoryError) -> SessionPage
    /// How many sessions the user has (without reading them).
    func sessionCount(includeArchived: Bool) async throws(MemoryError) -> Int
    func session(_ id: SessionID) async throws(MemoryError) -> SessionRecord?
    /// A session by exact id, or by a prefix that matches exactly one of the user's sessions
    /// (`.notFound` / `.conflict` otherwise).
    func resolveSession(_ idOrPrefix: String) async throws(MemoryError) -> SessionRecord
    func renameSession(_ id: SessionID, to name: String?) async throws(MemoryError)
    /// Gives an untitled session its automatic title: sets `title` only when the session has no
    /// name (someone may have named it meanwhile); true when it did. The store may make this
    /// durable with its next synced write instead of syncing it on its own.
    func titleSession(_ id: SessionID, _ title: String) async throws(MemoryError) -> Bool
    func archiveSession(_ id: SessionID, archived: Bool) async throws(MemoryError)
    /// Removes the session, its history, its memory chunks and its state in one transaction.
    func deleteSession(_ id: SessionID) async throws(MemoryError)
    /// The model the session was switched to (`set_model`), if any.
    func sessionModel(of session: SessionID) async throws(MemoryError) -> (provider: String, model: String)?
    /// Records (nil: forgets) the session's model.
    func setSessionModel(_ model: (provider: String, model: String)?, of session: SessionID) async throws(MemoryError)
}
