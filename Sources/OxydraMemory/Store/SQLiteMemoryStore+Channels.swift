import OxydraCore

/// Channel state: the polling offset and every update received, in the same database as the
/// conversation, so recording an update and moving the offset past it is one transaction.
extension SQLiteMemoryStore: ChannelStore {
    static let offsetKey = "offset"
    /// Updates done for longer than this are deleted (their messages are in the conversation).
    static let keepDoneUpdates: Int64 = 7 * 24 * 3_600_000

    public func channelOffset(_ channel: String) async throws(MemoryError) -> Int64? {
        try await channelValue(channel: channel, key: Self.offsetKey).flatMap { Int64($0) }
    }

    public func recordUpdates(channel: String, updates: [ChannelUpdate], nextOffset: Int64)
        async throws(MemoryError)
    {
        try await write { db in
            let now = Clock.now()
            for update in updates {
                try db.execute(
                    """
                    INSERT INTO channel_updates (channel, update_id, payload, state, turn_id, received_at, updated_at)
                    VALUES (?, ?, ?, 'received', NULL, ?, ?) ON CONFLICT(channel, update_id) DO NOTHING
                    """, [channel, update.id, update.payload, now, now])
            }
            try db.execute(
                """
                INSERT INTO channel_values (channel, key, value) VALUES (?, ?, ?)
                ON CONFLICT(channel, key) DO UPDATE SET value = excluded.value
                """, [channel, Self.offsetKey, String(nextOffset)])
            try db.execute(
                "DELETE FROM channel_updates WHERE channel = ? AND state = 'done' AND updated_at < ?",
                [channel, now - Self.keepDoneUpdates])
        }
    }

    public func pendingUpdates(_ channel: String) async throws(MemoryError) -> [ChannelUpdate] {
        try await read { db in
            try db.rows(
                """
                SELECT update_id, payload, state, turn_id FROM channel_updates
                WHERE channel = ? AND state != 'done' ORDER BY update_id
                """, [channel]
            ).map { row throws in
                ChannelUpdate(id: try row[0], payload: try row[1], state: try row[2], turnID: try row[3])
            }
        }
    }

    public func markUpdate(
        channel: String, id: Int64, state: String, turnID: String?, values: [String: String?]
    ) async throws(MemoryError) {
        try await write { db in
            try db.execute(
                "UPDATE channel_updates SET state = ?, turn_id = COALESCE(?, turn_id), updated_at = ? WHERE channel = ? AND update_id = ?",
                [state, turnID, Clock.now(), channel, id])
            for (key, value) in values { try Self.set(db, channel: channel, key: key, value: value) }
        }
    }

    public func channelValue(channel: String, key: String) async throws(MemoryError) -> String? {
        try await read { db in
            try db.value(
                as: String.self, "SELECT value FROM channel_values WHERE channel = ? AND key = ?", [channel, key])
        }
    }

    public func setChannelValue(channel: String, key: String, value: String?) async throws(MemoryError) {
        try await write { db in try Self.set(db, channel: channel, key: key, value: value) }
    }

    static func set(_ db: SQLiteConnection, channel: String, key: String, value: String?) throws {
        if let value {
            try db.execute(
                """
                INSERT INTO channel_values (channel, key, value) VALUES (?, ?, ?)
                ON CONFLICT(channel, key) DO UPDATE SET value = excluded.value
                """, [channel, key, value])
        } else {
            try db.execute("DELETE FROM channel_values WHERE channel = ? AND key = ?", [channel, key])
        }
    }
}
