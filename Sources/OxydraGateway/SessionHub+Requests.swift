import Logging
import OxydraCore
import OxydraRuntime

extension SessionHub {
    /// Handles one parsed client frame after `hello`; returns the frames for this connection only
    /// (replies and request errors). Turn frames reach subscribers through ``publish(_:to:)``.
    func handle(_ frame: ClientFrame, connection: ConnectionID) async -> [ServerFrame] {
        switch frame {
        case .hello(let hello):
            return [error(hello.requestID, .protocolError, "hello already negotiated for this websocket connection")]
        case .sendTurn(let turn):
            return submit(turn, connection: connection).map { [$0] } ?? []
        case .cancelActiveTurn(let requestID, let session, let turn):
            return cancel(requestID: requestID, sessionID: session, turnID: turn, connection: connection).map { [$0] }
                ?? []
        case .cancelAllActiveTurns(let requestID):
            return cancelAll(requestID: requestID).map { [$0] } ?? []
        case .listModels(let requestID):
            return [await listModels(requestID: requestID, connection: connection)]
        case .getUsage(let requestID, let days):
            return [await usage(requestID: requestID, days: days)]
        case .approve(let requestID, let approvalID, let decision, let scope):
            return answerApproval(
                requestID: requestID, approvalID: approvalID, decision: decision, scope: scope, connection: connection)
        case .listGrants(let requestID):
            return [await listGrants(requestID: requestID)]
        case .revokeGrant(let requestID, let grantID):
            return [await revokeGrant(requestID: requestID, grantID: grantID)]
        case .setModel(let requestID, let provider, let model):
            return await setModel(requestID: requestID, provider: provider, model: model, connection: connection)
                .map { [$0] } ?? []
        case .healthCheck(let requestID):
            let session = currentSession(of: connection)
            return [
                .healthStatus(
                    HealthInfo(
                        requestID: requestID, healthy: !shuttingDown, session: session.map(ref),
                        activeTurn: session.flatMap { sessions[$0]?.activeTurn?.ref }, startupStatus: startupStatus,
                        message: shuttingDown ? "shutting down" : "gateway ready"))
            ]
        case .createSession(let requestID, let displayName, let agentName):
            do {
                let origin = connections[connection].map { String($0.label.prefix { $0 != "#" }) }
                let session = try await createSession(
                    displayName: displayName, agentName: agentName,
                    origin: origin == nil || origin == "client" ? "tui" : origin!)
                subscribe(connection, to: session)
                let name = displayName?.trimmed
                return [
                    .sessionCreated(
                        requestID: requestID, session: ref(session.id),
                        displayName: name?.isEmpty == false ? name : nil,
                        agentName: agentName ?? "default")
                ]
            } catch {
                return [.error(error.info(requestID: requestID))]
            }
        case .listSessions(let requestID, let includeArchived, let limit, let cursor):
            if let cursor, SessionPage.position(of: cursor) == nil {
                return [error(requestID, .badFrame, "list_sessions: `\(cursor)` is not a cursor this gateway gave out")]
            }
            do {
                let page = try await listSessions(includeArchived: includeArchived, limit: limit ?? 50, cursor: cursor)
                return [
                    .sessionList(
                        requestID: requestID, sessions: page.sessions.map(info), nextCursor: page.nextCursor,
                        total: page.total)
                ]
            } catch {
                return [.error(error.info(requestID: requestID))]
            }
        case .switchSession(let requestID, let target):
            do {
                let session = try await resolve(target)
                subscribe(connection, to: session)
                var frames: [ServerFrame] = [
                    .sessionSwitched(
                        requestID: requestID, session: ref(session.id), activeTurn: session.activeTurn?.ref)
                ]
                if session.activeTurn == nil, let terminal = session.lastTerminal { frames.append(terminal) }
                return frames + pendingRequests(in: session.id)
            } catch {
                return [.error(error.info(requestID: requestID))]
            }
        case .renameSession(let requestID, let target, let name):
            return await updateSession(requestID, target) { id throws(MemoryError) in
                try await store.renameSession(id, to: name)
            }
        case .archiveSession(let requestID, let target, let archived):
            return await updateSession(requestID, target) { id throws(MemoryError) in
                try await store.archiveSession(id, archived: archived)
            }
        case .deleteSession(let requestID, let target):
            do {
                let record = try await storeCall { () throws(MemoryError) in try await store.resolveSession(target) }
                if let live = sessions[record.id] {
                    if live.activeTurn != nil {
                        return [error(requestID, .busy, "session `\(record.id)` has a turn running; cancel it first")]
                    }
                    if live.fanout.hasOthers(than: connection) {
                        return [
                            error(
                                requestID, .busy,
                                "session `\(record.id)` is open in another client; switch that client to another "
                                    + "session first")
                        ]
                    }
                    // The requesting connection may delete the session it is on; it is then on none
                    // until it switches or creates one.
                    live.fanout.remove(connection)
                    connections[connection]?.session = nil
                    sessions[record.id] = nil
                }
                try await storeCall { () throws(MemoryError) in try await store.deleteSession(record.id) }
                logger.info("session deleted", metadata: ["session": "\(record.id)"])
                return [.sessionDeleted(requestID: requestID, session: ref(record.id))]
            } catch {
                return [.error(error.info(requestID: requestID))]
            }
        case .getHistory(let requestID, let limit, let before):
            guard let id = currentSession(of: connection), let session = sessions[id] else {
                return [error(requestID, .protocolError, "no session: send hello first")]
            }
            do {
                let messages: [Message]
                if let cached = session.history {
                    messages = cached
                } else {
                    // Read without caching: a running turn keeps its own copy.
                    let stored = try await storeCall { () throws(MemoryError) in try await store.restore(id) }
                    messages = stored.map(\.message)
                }
                let entries = Self.historyEntries(messages)
                let end = min(before ?? entries.count, entries.count)
                let first = max(0, end - limit)
                return [
                    .history(
                        requestID: requestID, session: ref(id), entries: Array(entries[first..<end]),
                        truncated: first > 0, first: first)
                ]
            } catch {
                return [.error(error.info(requestID: requestID))]
            }
        }
    }

    /// Renames or (un)archives a session and answers with its new listing.
    private func updateSession(
        _ requestID: String, _ target: String, _ change: (SessionID) async throws(MemoryError) -> Void
    ) async -> [ServerFrame] {
        do {
            let record = try await storeCall { () throws(MemoryError) in try await store.resolveSession(target) }
            try await storeCall { () throws(MemoryError) in try await change(record.id) }
            guard let updated = try await storeCall({ () throws(MemoryError) in try await store.session(record.id) })
            else { return [error(requestID, .notFound, "session `\(record.id)` disappeared")] }
            return [.sessionUpdated(requestID: requestID, session: info(updated))]
        } catch {
            return [.error(error.info(requestID: requestID))]
        }
    }

    /// What clients show of a conversation: user and assistant text, the tools the assistant called,
    /// and a one-line summary of each tool result. System messages are left out.
    nonisolated static func historyEntries(_ messages: [Message]) -> [HistoryEntry] {
        var toolNames: [String: String] = [:]
        var entries: [HistoryEntry] = []
        for message in messages {
            switch message.role {
            case .system:
                continue
            case .user:
                entries.append(HistoryEntry(role: "user", text: message.content ?? ""))
            case .assistant:
                for call in message.toolCalls { toolNames[call.id] = call.name }
                let text = message.content ?? ""
                if text.isEmpty && message.toolCalls.isEmpty { continue }
                entries.append(HistoryEntry(role: "assistant", text: text, toolNames: message.toolCalls.map(\.name)))
            case .tool:
                let firstLine =
                    (message.content ?? "").split(separator: "\n", maxSplits: 1).first.map(String.init) ?? ""
                let summary = firstLine.count > 160 ? String(firstLine.prefix(160)) + "…" : firstLine
                let name = message.toolCallID.flatMap { toolNames[$0] }
                entries.append(HistoryEntry(role: "tool", text: summary, toolNames: name.map { [$0] } ?? []))
            }
        }
        return entries
    }

    /// `get_usage`: the ledger's records of the last `days` UTC days, added up.
    func usage(requestID: String, days: Int) async -> ServerFrame {
        guard let ledger = store as? any UsageLedger else {
            return error(requestID, .notFound, "this guest's store keeps no usage records")
        }
        let now = await runtime.budget?.now() ?? Date()
        let since = UTCPeriod.day(of: now.addingTimeInterval(-Double(days - 1) * 86_400)).start
        let records: [UsageRecord]
        do {
            records = try await ledger.usageRecords(since: since)
        } catch {
            return self.error(requestID, .internalError, "cannot read the usage records: \(error)")
        }
        let status = await runtime.budget?.status()
        return .usageReport(
            requestID: requestID,
            report: UsageReport(
                since: since, records: records, dailyLimitUSD: status?.limits.dailyUSD,
                monthlyLimitUSD: status?.limits.monthlyUSD, spentTodayUSD: status?.spentToday ?? 0,
                spentThisMonthUSD: status?.spentThisMonth ?? 0))
    }
}
