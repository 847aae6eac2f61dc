/// A stored message with its position in the session's event log.
public struct StoredMessage: Sendable, Hashable {
    /// Strictly increasing within a session, starting at 1.
    public var sequence: Int
    public var message: Message

    public init(sequence: Int, message: Message) {
        self.sequence = sequence
        self.message = message
    }
}

/// A snippet found by memory retrieval.
public struct MemoryHit: Sendable, Hashable {
    public var chunkID: String
    public var text: String
    /// Combined score in [0, 1] (weighted vector + keyword).
    public var score: Double
    /// The message's sequence for conversation hits; nil for notes.
    public var sequence: Int?

    public init(chunkID: String, text: String, score: Double, sequence: Int? = nil) {
        self.chunkID = chunkID
        self.text = text
        self.score = score
        self.sequence = sequence
    }
}

/// A rolling summary of a session's oldest messages.
public struct SessionSummary: Sendable, Hashable, Codable {
    /// Increases by one with every replacement; writers compare-and-swap on it.
    public var epoch: Int
    /// Messages with sequence ≤ this are represented by `text` and no longer sent to the model.
    public var upperSequence: Int
    public var text: String

    public init(epoch: Int, upperSequence: Int, text: String) {
        self.epoch = epoch
        self.upperSequence = upperSequence
        self.text = text
    }

    enum CodingKeys: String, CodingKey {
        case epoch, text
        case upperSequence = "upper_sequence"
    }
}

/// Durable conversation history and retrieval. Implementations commit a message before returning
/// from ``append(_:to:)``, so a crash right after loses nothing that was acknowledged.
public protocol MemoryStore: Sendable {
    /// Appends messages after the session's last sequence; returns their stored form.
    func append(_ messages: [Message], to session: SessionID) async throws(MemoryError) -> [StoredMessage]
    /// The same, but the store may leave the write to reach the disk with its next synced commit
    /// (it still survives the process being killed): for messages that a synced write normally
    /// follows soon, such as tool results before the model's next answer.
    func appendWithoutSync(_ messages: [Message], to session: SessionID) async throws(MemoryError) -> [StoredMessage]
    /// Puts on disk everything of `session` that ``appendWithoutSync(_:to:)`` committed and no synced
    /// write has carried there since: for a turn that ends (fails, is cancelled) before its next
    /// synced write.
    func sync(_ session: SessionID) async throws(MemoryError)
    /// The whole history of a session, oldest first; empty for an unknown session.
    func restore(_ session: SessionID) async throws(MemoryError) -> [StoredMessage]
    /// The best snippets for `query` within a session and the user's notes.
    func search(_ query: String, in session: SessionID, limit: Int) async throws(MemoryError) -> [MemoryHit]
    /// The session's rolling summary, if one was written.
    func summary(of session: SessionID) async throws(MemoryError) -> SessionSummary?
    /// Stores `summary` only if the stored epoch is still `expectedEpoch` (0 for none) and
    /// `summary.epoch` is greater; returns false for a stale write, which is discarded.
    func replaceSummary(of session: SessionID, expectedEpoch: Int, with summary: SessionSummary)
        async throws(MemoryError) -> Bool
}

extension MemoryStore {
    public func appendWithoutSync(_ messages: [Message], to session: SessionID) async throws(MemoryError)
        -> [StoredMessage]
    {
        try await append(messages, to: session)
    }

    /// Nothing to do where ``appendWithoutSync(_:to:)`` syncs like ``append(_:to:)``.
    public func sync(_ session: SessionID) async throws(MemoryError) {}
}
