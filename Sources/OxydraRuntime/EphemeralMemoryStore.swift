import OxydraCore

/// A memory store that keeps everything in process memory: sessions do not survive a restart and
/// there is no retrieval. Used where no database is configured and in runtime tests; the SQLite
/// store (`OxydraMemory`) is the durable one.
public actor EphemeralMemoryStore: MemoryStore {
    private var sessions: [SessionID: [StoredMessage]] = [:]
    private var summaries: [SessionID: SessionSummary] = [:]
    /// Summary writes attempted (applied or not), for tests of the compare-and-swap.
    public private(set) var summaryWrites = 0

    public init() {}

    public func append(_ messages: [Message], to session: SessionID) async throws(MemoryError) -> [StoredMessage] {
        var log = sessions[session] ?? []
        var stored: [StoredMessage] = []
        for message in messages {
            let entry = StoredMessage(sequence: (log.last?.sequence ?? 0) + 1, message: message)
            log.append(entry)
            stored.append(entry)
        }
        sessions[session] = log
        return stored
    }

    public func restore(_ session: SessionID) async throws(MemoryError) -> [StoredMessage] { sessions[session] ?? [] }

    public func search(_ query: String, in session: SessionID, limit: Int) async throws(MemoryError) -> [MemoryHit] {
        []
    }

    public func summary(of session: SessionID) async throws(MemoryError) -> SessionSummary? { summaries[session] }

    public func replaceSummary(of session: SessionID, expectedEpoch: Int, with summary: SessionSummary)
        async throws(MemoryError) -> Bool
    {
        summaryWrites += 1
        let current = summaries[session]
        guard (current?.epoch ?? 0) == expectedEpoch else { return false }
        guard summary.epoch > expectedEpoch else {
            throw .conflict("summary epoch \(summary.epoch) must be greater than \(expectedEpoch)")
        }
        if let current, summary.upperSequence < current.upperSequence {
            throw .conflict(
                "summary upper_sequence may not decrease (\(current.upperSequence) → \(summary.upperSequence))")
        }
        summaries[session] = summary
        return true
    }
}
