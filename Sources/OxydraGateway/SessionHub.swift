import Logging
import OxydraAudit
import OxydraCore
import OxydraRuntime
import Synchronization

/// One user's sessions, their subscribers and their turns. Every channel (WebSocket clients today,
/// chat adapters later) goes through it.
///
/// - One active turn per session; a second `send_turn` is refused with `busy`, never dropped.
/// - At most `max_concurrent_turns_per_user` turns run at once; more wait in FIFO order, up to
///   `max_queued_turns_per_user`, then `queue_full`.
/// - Every message is committed by the runtime before the turn moves on; a cancelled or failed turn
///   reloads the session's history from the store, so memory and disk never disagree.
/// - The last terminal frame of each session is kept and replayed to a client that reconnects
///   after the turn ended.
public actor SessionHub {
    public let user: UserID
    /// What the guest reported at start (in `hello_ack` and the guest's health replies), updated
    /// when a sidecar it did not wait for fails.
    public private(set) var startupStatus: StartupStatus
    let runtime: AgentRuntime
    let store: any SessionCatalog
    let limits: GatewayConfig
    let logger: Logger
    /// Where files sent with turns are saved (nil: turns with attachments are refused).
    let inbox: Inbox?
    /// The other models sessions may switch to (nil: only the guest's own).
    let switching: ModelSwitching?
    /// `[sessions] title_model`.
    let titleModel: String?
    /// Where every tool call is recorded (nil: not recorded).
    let audit: AuditLog?
    /// Runtimes of switched sessions, by provider and model.
    var runtimes: [String: AgentRuntime] = [:]
    /// `[tools.approval]`, and where grants and pending requests are kept (nil: in memory only).
    let approvalConfig: ApprovalConfig
    let approvalStore: (any ApprovalStore)?
    var pendingApprovals: [String: PendingApproval] = [:]
    /// Answers that arrived before their turn asked again (after a restart), by call id.
    var parkedResolutions: [String: ApprovalResolution] = [:]
    /// The last answers, so a late second answer learns who was first.
    var recentResolutions: [ApprovalResolution] = []
    /// `session` and `always` grants (loaded on first use), and `turn` grants by turn.
    var grantCache: [ApprovalGrant]?
    var turnGrants: [TurnKey: Set<String>] = [:]
    /// Calls that wait for an approval stored before a restart: history repair leaves them open.
    var keptOpen: [SessionID: Set<String>] = [:]

    var sessions: [SessionID: LiveSession] = [:]
    var connections: [ConnectionID: Subscriber] = [:]
    var running = 0
    var waiting: [(key: TurnKey, continuation: CheckedContinuation<Bool, Never>)] = []
    var shuttingDown = false
    var turnTasks: [TurnKey: Task<Void, Never>] = [:]

    public init(
        user: UserID, runtime: AgentRuntime, store: any SessionCatalog, limits: GatewayConfig,
        startupStatus: StartupStatus, logger: Logger, inbox: Inbox? = nil, switching: ModelSwitching? = nil,
        titleModel: String? = nil, audit: AuditLog? = nil, approvals: ApprovalConfig = ApprovalConfig(),
        approvalStore: (any ApprovalStore)? = nil
    ) {
        self.approvalConfig = approvals
        self.approvalStore = approvalStore
        self.audit = audit
        self.titleModel = titleModel
        self.inbox = inbox
        self.switching = switching
        self.user = user
        self.runtime = runtime
        self.store = store
        self.limits = limits
        self.startupStatus = startupStatus
        self.logger = logger
    }

    /// The session a connection starts on when it names none: `runtime-<user>`.
    public nonisolated var defaultSessionID: SessionID {
        let safe = String(
            user.rawValue.unicodeScalars.map { scalar in
                scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || scalar == "-" || scalar == "_"
                    ? Character(scalar) : "-"
            })
        return SessionID("runtime-" + safe)
    }

    // MARK: - Connections

    /// Registers a connection; frames for its session go to `sink`.
    func attach(_ connection: ConnectionID, sink: @escaping @Sendable (ServerFrame) -> Bool) {
        connections[connection] = Subscriber(sink: sink, label: "client#\(connection.value)")
    }

    /// Drops a connection and its subscription.
    func detach(_ connection: ConnectionID) {
        guard let subscriber = connections.removeValue(forKey: connection) else { return }
        if let session = subscriber.session {
            sessions[session]?.fanout.remove(connection)
            sessions[session]?.lastActivity = .now
        }
    }

    /// Answers `hello`: resolves or creates the session, subscribes the connection, and returns the
    /// frames to send (the ack, then the last terminal frame when no turn is active).
    func hello(_ hello: ClientFrame.Hello, connection: ConnectionID) async -> [ServerFrame] {
        if let claimed = hello.userID, !claimed.isEmpty, claimed != user.rawValue {
            return [
                error(
                    hello.requestID, .protocolError,
                    "this gateway serves user `\(user)`, not `\(claimed)`; connect to that user's own guest")
            ]
        }
        let target: LiveSession
        do {
            if hello.createNewSession {
                target = try await createSession(displayName: nil, agentName: nil, origin: Self.origin(of: hello))
            } else if let requested = hello.sessionID {
                target = try await resolve(requested)
            } else {
                target = try await openOrCreate(defaultSessionID)
            }
        } catch {
            return [.error(error.info(requestID: hello.requestID))]
        }
        if let client = hello.client?.filter({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }),
            !client.isEmpty
        {
            connections[connection]?.label = "\(client)#\(connection.value)"
        }
        subscribe(connection, to: target)
        var frames: [ServerFrame] = [
            .helloAck(
                requestID: hello.requestID, protocolVersion: GatewayProtocol.version, session: ref(target.id),
                activeTurn: target.activeTurn?.ref)
        ]
        if target.activeTurn == nil, let terminal = target.lastTerminal { frames.append(terminal) }
        return frames + pendingRequests(in: target.id)
    }

    /// What a new session records as its origin: the client's name (`tui`, `web`, `telegram`).
    static func origin(of hello: ClientFrame.Hello) -> String {
        let client = (hello.client ?? "").filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }
        return client.isEmpty ? "tui" : String(client.prefix(32))
    }

    func subscribe(_ connection: ConnectionID, to session: LiveSession) {
        guard var subscriber = connections[connection] else { return }
        if let previous = subscriber.session, previous != session.id {
            sessions[previous]?.fanout.remove(connection)
        }
        subscriber.session = session.id
        connections[connection] = subscriber
        session.fanout.add(connection, subscriber.sink)
        session.lastActivity = .now
    }

    /// The session a connection is on.
    func currentSession(of connection: ConnectionID) -> SessionID? { connections[connection]?.session }

    // MARK: - Sessions

    func openOrCreate(_ id: SessionID) async throws(HubError) -> LiveSession {
        if let live = sessions[id] { return live }
        try makeRoom()
        if let record = try await storeCall({ () throws(MemoryError) in try await store.session(id) }) {
            return load(record)
        }
        let record = try await storeCall { () throws(MemoryError) in
            try await store.createSession(id, displayName: nil, agentName: "default", channelOrigin: "tui")
        }
        logger.info("session created", metadata: ["session": "\(id)"])
        return load(record, new: true)
    }

    func resolve(_ idOrPrefix: String) async throws(HubError) -> LiveSession {
        if let live = sessions[SessionID(idOrPrefix)] { return live }
        let record = try await storeCall { () throws(MemoryError) in try await store.resolveSession(idOrPrefix) }
        if let live = sessions[record.id] { return live }
        try makeRoom()
        return load(record)
    }

    func createSession(displayName: String?, agentName: String?, origin: String) async throws(HubError) -> LiveSession {
        try makeRoom()
        let id = SessionID(UUID().uuidString.lowercased())
        let name = displayName?.trimmed
        let record = try await storeCall { () throws(MemoryError) in
            try await store.createSession(
                id, displayName: name?.isEmpty == false ? name : nil, agentName: agentName ?? "default",
                channelOrigin: origin)
        }
        logger.info("session created", metadata: ["session": "\(id)"])
        return load(record, new: true)
    }

    /// `gateway.max_sessions_per_user` bounds the sessions held in memory, not the sessions ever
    /// created (the store keeps any number). Before one more is loaded, the least recently used
    /// sessions that no client is on and no turn runs in are unloaded (their history stays stored
    /// and comes back on the next visit); only when every live session is in use is it refused.
    private func makeRoom() throws(HubError) {
        let limit = limits.maxSessionsPerUser
        guard sessions.count >= limit else { return }
        let idle = sessions.values.filter { $0.fanout.isEmpty && $0.activeTurn == nil }
            .sorted { $0.lastActivity < $1.lastActivity }
        for session in idle.prefix(sessions.count - limit + 1) { sessions[session.id] = nil }
        if sessions.count >= limit {
            throw HubError(
                .limitReached,
                "maximum live sessions reached (limit: \(limit)): every one has a client on it or a turn running; "
                    + "leave one, or raise gateway.max_sessions_per_user")
        }
    }

    /// A session into memory; a `new` one has no history to read back.
    private func load(_ record: SessionRecord, new: Bool = false) -> LiveSession {
        if let live = sessions[record.id] { return live }
        let live = LiveSession(record)
        if new {
            // Nothing stored yet: no history and no model of its own to read back.
            live.history = []
            live.modelLoaded = true
        }
        sessions[record.id] = live
        return live
    }

    func listSessions(includeArchived: Bool, limit: Int, cursor: String?) async throws(HubError) -> SessionPage {
        try await storeCall { () throws(MemoryError) in
            try await store.listSessions(includeArchived: includeArchived, limit: limit, cursor: cursor)
        }
    }

    func info(_ record: SessionRecord) -> SessionInfo {
        SessionInfo(
            sessionID: record.id, agentName: record.agentName, displayName: record.displayName,
            channelOrigin: record.channelOrigin, createdAt: Timestamp.rfc3339(record.createdAt),
            lastActiveAt: Timestamp.rfc3339(record.lastActiveAt), archived: record.archived,
            activeTurn: sessions[record.id]?.activeTurn?.ref)
    }

    func ref(_ session: SessionID) -> SessionRef { SessionRef(userID: user, sessionID: session) }

    func storeCall<T>(_ body: () async throws(MemoryError) -> T) async throws(HubError) -> T {
        do {
            return try await body()
        } catch {
            switch error {
            case .notFound(let message): throw HubError(.notFound, message)
            case .conflict(let message): throw HubError(.ambiguous, message)
            default:
                logger.error("memory store failed", metadata: ["error": "\(error)"])
                throw HubError(.internalError, "memory store error: \(error)")
            }
        }
    }

    // MARK: - Statistics

    public var openSessionCount: Int { sessions.count }
    public var activeTurnCount: Int { sessions.values.filter { $0.activeTurn != nil }.count }

    /// Unloads sessions nobody is connected to and that have been idle for `ttl`; their history stays
    /// in the store and is reloaded on the next connect.
    public func evictIdleSessions(olderThan ttl: Duration) {
        let now = ContinuousClock.now
        for (id, session) in sessions
        where session.fanout.isEmpty && session.activeTurn == nil && now - session.lastActivity >= ttl {
            sessions[id] = nil
        }
    }

    func error(_ requestID: String?, _ code: GatewayErrorCode, _ message: String) -> ServerFrame {
        .error(GatewayErrorInfo(requestID: requestID, code: code, message: message))
    }
}

/// A connection's identity within the hub.
public struct ConnectionID: Hashable, Sendable {
    let value: UInt64
    private static let counter = AtomicCounter()
    public static func next() -> ConnectionID { ConnectionID(value: counter.next()) }
}

struct Subscriber {
    var sink: @Sendable (ServerFrame) -> Bool
    /// `tui#3`: who answered an approval.
    var label: String
    var session: SessionID?
}

struct TurnKey: Hashable, Sendable {
    var session: SessionID
    var turn: TurnID
}

/// A session loaded into memory.
final class LiveSession {
    let id: SessionID
    let archived: Bool
    /// Loaded on the first turn; nil until then (idle sessions cost almost nothing).
    var history: [Message]?
    /// The connections on this session, reachable without the hub's actor (a running turn streams
    /// its frames straight to them).
    let fanout = Fanout()
    var activeTurn: ActiveTurn?
    var lastTerminal: ServerFrame?
    var lastActivity = ContinuousClock.now
    /// Whether the session was checked for a title since it was loaded.
    var titled = false
    /// The model chosen with `set_model` (nil: the guest's); read from the store once.
    var model: (provider: String, model: String)?
    var modelLoaded = false

    init(_ record: SessionRecord) {
        id = record.id
        archived = record.archived
    }
}

struct ActiveTurn {
    var turnID: TurnID
    var requestID: String
    var state: TurnState
    var ref: TurnRef { TurnRef(turnID: turnID, state: state) }
}

/// A request the hub refused, as the error frame it becomes.
struct HubError: Error {
    var code: GatewayErrorCode
    var message: String
    init(_ code: GatewayErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }

    func info(requestID: String?, session: SessionRef? = nil) -> GatewayErrorInfo {
        GatewayErrorInfo(requestID: requestID, session: session, code: code, message: message)
    }
}

/// The sinks of one session's subscribers behind a lock, so a running turn publishes its stream
/// without a hop onto the hub's actor for every delta.
final class Fanout: Sendable {
    /// An array, not a dictionary: every streamed frame is published to all of them (copying a
    /// dictionary per frame cost more than sending it), and a session has a few subscribers.
    private let sinks = Mutex<[(ConnectionID, @Sendable (ServerFrame) -> Bool)]>([])

    func add(_ connection: ConnectionID, _ sink: @escaping @Sendable (ServerFrame) -> Bool) {
        sinks.withLock { sinks in
            sinks.removeAll { $0.0 == connection }
            sinks.append((connection, sink))
        }
    }

    func remove(_ connection: ConnectionID) {
        sinks.withLock { $0.removeAll { $0.0 == connection } }
    }

    var isEmpty: Bool { sinks.withLock { $0.isEmpty } }
    /// Whether any connection other than `connection` is on the session.
    func hasOthers(than connection: ConnectionID) -> Bool { sinks.withLock { $0.contains { $0.0 != connection } } }

    /// Sends `frame` to every subscriber; returns those whose buffer overflowed (now removed).
    func publish(_ frame: ServerFrame) -> [ConnectionID] {
        let targets = sinks.withLock { $0 }
        var lagging: [ConnectionID] = []
        for (connection, sink) in targets where !sink(frame) { lagging.append(connection) }
        if !lagging.isEmpty { sinks.withLock { $0.removeAll { lagging.contains($0.0) } } }
        return lagging
    }
}

extension SessionHub {
    /// Changes the status reported from now on.
    public func updateStartupStatus(_ change: @Sendable (inout StartupStatus) -> Void) { change(&startupStatus) }
}
