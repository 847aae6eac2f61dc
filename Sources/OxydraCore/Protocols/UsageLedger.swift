/// One provider call's usage, as the provider reported it, and its price.
public struct UsageRecord: Sendable, Hashable {
    public var session: SessionID
    public var at: Date
    /// Registry name and model id of who answered.
    public var provider: String
    public var model: String
    public var usage: Usage
    /// US dollars; nil when the model has no price (a local model): it counts 0.
    public var costUSD: Double?

    /// The cost in billionths of a dollar: what totals add up (integers, so sums are exact).
    public var costNanodollars: Int64 { costUSD.map(Money.nanodollars) ?? 0 }

    public init(
        session: SessionID, at: Date, provider: String, model: String, usage: Usage, costUSD: Double?
    ) {
        self.session = session
        self.at = at
        self.provider = provider
        self.model = model
        self.usage = usage
        self.costUSD = costUSD
    }
}

extension UsageLedger {
    /// Synced like ``append(_:to:usage:)`` where a ledger has no cheaper kind of write.
    public func appendWithoutSync(_ messages: [Message], to session: SessionID, usage: UsageRecord)
        async throws(MemoryError) -> [StoredMessage]
    {
        try await append(messages, to: session, usage: usage)
    }
}

/// Where spending is kept: every provider call of the user, kept when its session is deleted
/// (the budget is the user's), indexed by time.
public protocol UsageLedger: Sendable {
    func recordUsage(_ record: UsageRecord) async throws(MemoryError)
    /// Appends messages and records a provider call's usage in one transaction.
    func append(_ messages: [Message], to session: SessionID, usage: UsageRecord) async throws(MemoryError)
        -> [StoredMessage]
    /// The same, committed without a sync of its own (see ``MemoryStore/appendWithoutSync(_:to:)``).
    func appendWithoutSync(_ messages: [Message], to session: SessionID, usage: UsageRecord)
        async throws(MemoryError) -> [StoredMessage]
    /// Billionths of a dollar spent since `start` (unpriced calls count 0).
    func spentNanodollars(since start: Date) async throws(MemoryError) -> Int64
    /// The records since `start`, oldest first.
    func usageRecords(since start: Date) async throws(MemoryError) -> [UsageRecord]
}
