/// A chat channel inside a user's guest (Telegram, …). People reach their agent through it; it
/// talks to the guest's session hub exactly as a gateway client does (hello, `send_turn`, the
/// streamed frames, approvals), so a turn started from a chat is seen by the terminal UI and the
/// web app on the same session, and the other way round.
public protocol Channel: Sendable {
    /// `telegram`.
    var id: String { get }
    /// Runs until the task is cancelled. Problems (no token, the service refusing) are reported in
    /// ``health()``, never thrown: a broken channel must not take the guest down.
    func run(connector: any ChannelConnector) async
    /// The channel's state for `runner status` and the web app.
    func health() async -> ChannelHealth
}

/// Opens connections to the guest's session hub (the gateway's hub, in process).
public protocol ChannelConnector: Sendable {
    /// A new connection; `client` names it in approvals (`telegram#7`). Send `hello` first.
    func connect(client: String) async -> any ChannelConnection
}

/// One in-process connection to the session hub: the gateway protocol's frames, without a socket.
public protocol ChannelConnection: Sendable {
    /// What the session publishes to its clients, in order: turn frames, approvals, model changes.
    var frames: AsyncStream<ServerFrame> { get }
    /// Sends a frame; returns the hub's direct answers to it (`hello_ack`, `session_list`, an
    /// `error` refusing it, …). A turn's frames arrive on ``frames``.
    func send(_ frame: ClientFrame) async -> [ServerFrame]
    /// Continues the session's last turn without a new prompt, under `turnID`: for a message whose
    /// answer a guest restart interrupted (its prompt is already in the history). Frames follow on
    /// ``frames`` as for `send_turn`; the answer is the `error` frame refusing it, if any.
    func resumeTurn(requestID: String, turnID: TurnID) async -> ServerFrame?
    /// Leaves the hub; `frames` ends.
    func close() async
}

/// A channel's state: what it is doing, when it last heard from its service, the last problem.
public struct ChannelHealth: Sendable, Hashable {
    /// `starting`, `polling`, `off` (not configured, or no token), `failing` (retrying after errors).
    public var state: String
    /// RFC 3339, when the service last answered a poll.
    public var lastUpdateAt: String?
    /// The last error, or why the channel is off.
    public var lastError: String?

    public init(state: String, lastUpdateAt: String? = nil, lastError: String? = nil) {
        self.state = state
        self.lastUpdateAt = lastUpdateAt
        self.lastError = lastError
    }

    public var json: JSONValue {
        .compactObject([
            "state": .string(state), "last_update_at": lastUpdateAt.map(JSONValue.string),
            "last_error": lastError.map(JSONValue.string),
        ])
    }

    public init(_ reader: FieldReader) throws(WireError) {
        state = try reader.nonBlankString("state")
        lastUpdateAt = try reader.optionalString("last_update_at")
        lastError = try reader.optionalString("last_error")
    }
}

/// Durable state of channels in the user's store: where polling resumes, what arrived and what became
/// of it, and small per-channel values (which session a chat is on).
///
/// ``recordUpdates(channel:updates:nextOffset:)`` records arrivals and the new offset in one
/// transaction, so after a crash an update is either stored (and handled once, from the store) or
/// not acknowledged (and delivered again by the service).
public protocol ChannelStore: Sendable {
    /// The offset to poll from (nil before the first update).
    func channelOffset(_ channel: String) async throws(MemoryError) -> Int64?
    /// Stores `updates` (ignoring ids already stored) and `nextOffset`, in one transaction.
    func recordUpdates(channel: String, updates: [ChannelUpdate], nextOffset: Int64) async throws(MemoryError)
    /// Updates not yet `done`, oldest first.
    func pendingUpdates(_ channel: String) async throws(MemoryError) -> [ChannelUpdate]
    /// Records progress on an update (`turn_started` with its turn id, `done`) and, in the same
    /// transaction, sets `values` (nil deletes one).
    func markUpdate(channel: String, id: Int64, state: String, turnID: String?, values: [String: String?])
        async throws(MemoryError)
    func channelValue(channel: String, key: String) async throws(MemoryError) -> String?
    func setChannelValue(channel: String, key: String, value: String?) async throws(MemoryError)
}

/// One update as the channel stored it.
public struct ChannelUpdate: Sendable, Hashable {
    public var id: Int64
    /// The service's JSON for the update, as received.
    public var payload: String
    /// `received`, `turn_started`, `done`.
    public var state: String
    public var turnID: String?

    public init(id: Int64, payload: String, state: String = "received", turnID: String? = nil) {
        self.id = id
        self.payload = payload
        self.state = state
        self.turnID = turnID
    }
}

/// Delivers a file the agent produced to the chat a session is talking in (`send_file`).
public protocol ChannelFileSender: Sendable {
    /// Sends `data` as a document to the chats on `session`; a sentence saying where it went, or
    /// an error message the model can act on.
    func sendFile(session: SessionID, name: String, mimeType: String, data: [UInt8], caption: String?) async
        -> Result<String, ChannelSendError>
}

public struct ChannelSendError: Error, Sendable, Hashable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
