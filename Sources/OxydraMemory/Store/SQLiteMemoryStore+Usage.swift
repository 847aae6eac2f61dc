import OxydraCore

/// The usage ledger (`usage_records`).
extension SQLiteMemoryStore: UsageLedger {
    public func recordUsage(_ record: UsageRecord) async throws(MemoryError) {
        let user = self.user
        try await write { db in try Self.insert(record, user: user, into: db) }
    }

    static func insert(_ record: UsageRecord, user: UserID, into db: SQLiteConnection) throws {
        try db.execute(
            """
            INSERT INTO usage_records (user_id, session_id, at, provider, model, prompt_tokens, completion_tokens, cost_nanousd)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                user.rawValue, record.session.rawValue, Int64((record.at.timeIntervalSince1970 * 1000).rounded()),
                record.provider, record.model, record.usage.promptTokens, record.usage.completionTokens,
                record.costUSD.map(Money.nanodollars),
            ])
    }

    public func spentNanodollars(since start: Date) async throws(MemoryError) -> Int64 {
        let user = self.user
        let from = Int64((start.timeIntervalSince1970 * 1000).rounded())
        return try await read { db in
            try db.value(
                as: Int64.self,
                "SELECT COALESCE(SUM(cost_nanousd), 0) FROM usage_records WHERE user_id = ? AND at >= ?",
                [user.rawValue, from]) ?? 0
        }
    }

    public func usageRecords(since start: Date) async throws(MemoryError) -> [UsageRecord] {
        let user = self.user
        let from = Int64((start.timeIntervalSince1970 * 1000).rounded())
        return try await read { db in
            try db.rows(
                "SELECT * FROM usage_records WHERE user_id = ? AND at >= ? ORDER BY at, id", [user.rawValue, from]
            ).map { row throws(SQLiteError) in
                UsageRecord(
                    session: SessionID(try row["session_id"] as String), at: Clock.date(try row["at"]),
                    provider: try row["provider"], model: try row["model"],
                    usage: Usage(
                        promptTokens: try row["prompt_tokens"], completionTokens: try row["completion_tokens"]),
                    costUSD: (try row["cost_nanousd"] as Int64?).map(Money.dollars))
            }
        }
    }
}
