import OxydraClient
import OxydraCore

/// `runner sessions list|show|export|rename|archive|unarchive|delete`: the user's sessions through
/// the running guest's gateway (the same frames the terminal UI sends).
public enum SessionsCommand {
    public enum Action: Sendable {
        case list(includeArchived: Bool, limit: Int = 50, cursor: String? = nil, all: Bool = false)
        case show(String, limit: Int)
        case export(String, markdown: Bool)
        case rename(String, to: String?)
        case archive(String, archived: Bool)
        case delete(String)
        /// `runner usage`: spending over the last `days` UTC days.
        case usage(days: Int)
        /// `runner approvals list|revoke`: standing grants.
        case grants
        case revokeGrant(String)
    }

    public static func run(_ context: RunnerContext, _ action: Action, json: Bool) async -> CommandOutput {
        let endpoint: GatewayEndpoint
        do {
            endpoint = try GatewayEndpoint.locate(context)
        } catch {
            return error
        }
        let connection = Connection(GatewayClient(endpoint: endpoint.url, token: endpoint.token))
        defer { connection.client.close() }
        do {
            let hello = FrameIDs.request()
            connection.client.send(.hello(.init(requestID: hello, userID: endpoint.user.rawValue)))
            _ = try await connection.reply(to: hello)
            switch action {
            case .grants:
                let id = FrameIDs.request()
                connection.client.send(.listGrants(requestID: id))
                guard case .grantList(_, let grants) = try await connection.reply(to: id) else {
                    return .error("unexpected reply to list_grants")
                }
                if json {
                    return CommandOutput(standardOutput: JSONValue.array(grants.map(\.json)).prettyText + "\n")
                }
                if grants.isEmpty { return CommandOutput(standardOutput: "no standing approvals\n") }
                let lines = grants.map { (grant: ApprovalGrant) -> String in
                    var line = "\(grant.grantID[...].padding(20))  \(grant.scope.rawValue[...].padding(7))  "
                    line += "\(grant.tool[...].padding(12))  " + TerminalText.sanitize(grant.kind.label)
                    if let session = grant.session { line += "  (session \(session.rawValue.prefix(12)))" }
                    line += "  \(grant.createdAt)"
                    if let by = grant.createdBy { line += " by \(by)" }
                    return line
                }
                return CommandOutput(standardOutput: lines.joined(separator: "\n") + "\n")
            case .revokeGrant(let grant):
                let id = FrameIDs.request()
                connection.client.send(.revokeGrant(requestID: id, grantID: grant))
                guard case .grantRevoked(_, let revoked) = try await connection.reply(to: id) else {
                    return .error("unexpected reply to revoke_grant")
                }
                return CommandOutput(standardOutput: "revoked=\(revoked)\n")
            case .usage(let days):
                let id = FrameIDs.request()
                connection.client.send(.getUsage(requestID: id, days: days))
                guard case .usageReport(_, let report) = try await connection.reply(to: id) else {
                    return .error("unexpected reply to get_usage")
                }
                return CommandOutput(standardOutput: (json ? report.json.prettyText : report.text) + "\n")
            case .list(let includeArchived, let limit, let cursor, let all):
                var sessions: [SessionInfo] = []
                var next = cursor
                var total = 0
                repeat {
                    let page = try await page(
                        connection, includeArchived: includeArchived, limit: all ? 1000 : limit, cursor: next)
                    sessions += page.sessions
                    (next, total) = (page.next, page.total)
                } while all && next != nil
                if json {
                    return CommandOutput(
                        standardOutput: JSONValue.compactObject([
                            "sessions": .array(sessions.map(\.json)), "next_cursor": next.map(JSONValue.string),
                            "total": .integer(total),
                        ]).prettyText + "\n")
                }
                if sessions.isEmpty { return CommandOutput(standardOutput: "no sessions\n") }
                var lines = sessions.map { info in
                    "\(info.sessionID.rawValue.prefix(12).padding(12))  \(info.lastActiveAt)  "
                        + (info.displayName ?? "untitled") + (info.archived ? "  (archived)" : "")
                        + (info.activeTurn != nil ? "  (turn running)" : "")
                }
                if let next {
                    lines.append(
                        "(\(sessions.count) of \(total) \(total == 1 ? "session" : "sessions"); --all lists every one)")
                    lines.append(
                        "next page: runner sessions list --cursor \(next)\(includeArchived ? " --archived" : "")")
                }
                return CommandOutput(standardOutput: lines.joined(separator: "\n") + "\n")
            case .show(let session, let limit):
                let (info, entries, truncated) = try await history(connection, session, limit: limit)
                if json {
                    return CommandOutput(
                        standardOutput: JSONValue.object([
                            "session": info.json, "entries": .array(entries.map(\.json)), "truncated": .bool(truncated),
                        ]).prettyText + "\n")
                }
                var text = "session \(info.sessionID) — \(info.displayName ?? "untitled")\n"
                if truncated { text += "(earlier messages not shown)\n" }
                for entry in entries {
                    let tools = entry.toolNames.isEmpty ? "" : " [\(entry.toolNames.joined(separator: ", "))]"
                    text += "\(entry.role)\(tools): \(TerminalText.sanitize(entry.text))\n"
                }
                return CommandOutput(standardOutput: text)
            case .export(let session, let markdown):
                let (info, entries, _) = try await history(connection, session, limit: 500)
                if !markdown {
                    return CommandOutput(
                        standardOutput: JSONValue.object(["session": info.json, "entries": .array(entries.map(\.json))])
                            .prettyText + "\n")
                }
                var text = "# \(info.displayName ?? "Session \(info.sessionID)")\n\n"
                text += "_session `\(info.sessionID)`, created \(info.createdAt), last active \(info.lastActiveAt)_\n"
                for entry in entries {
                    switch entry.role {
                    case "user": text += "\n**You:**\n\n\(entry.text)\n"
                    case "assistant":
                        if !entry.text.isEmpty { text += "\n**Oxydra:**\n\n\(entry.text)\n" }
                        if !entry.toolNames.isEmpty {
                            text += "\n> called \(entry.toolNames.joined(separator: ", "))\n"
                        }
                    default: text += "\n> \(entry.toolNames.first ?? "tool") → \(entry.text)\n"
                    }
                }
                return CommandOutput(standardOutput: text)
            case .rename(let session, let name):
                return try await update(
                    connection, .renameSession(requestID: FrameIDs.request(), session: session, displayName: name),
                    json: json)
            case .archive(let session, let archived):
                return try await update(
                    connection, .archiveSession(requestID: FrameIDs.request(), session: session, archived: archived),
                    json: json)
            case .delete(let session):
                let id = FrameIDs.request()
                connection.client.send(.deleteSession(requestID: id, session: session))
                guard case .sessionDeleted(_, let ref) = try await connection.reply(to: id) else {
                    return .error("unexpected reply to delete_session")
                }
                return CommandOutput(standardOutput: "deleted=\(ref.sessionID)\n")
            }
        } catch {
            return error
        }
    }

    /// The session's listing and its last `limit` history entries (the connection moves to it).
    private static func history(_ connection: Connection, _ session: String, limit: Int) async throws(CommandOutput)
        -> (SessionInfo, [HistoryEntry], Bool)
    {
        let switched = FrameIDs.request()
        connection.client.send(.switchSession(requestID: switched, session: session))
        guard case .sessionSwitched(_, let ref, _) = try await connection.reply(to: switched) else {
            throw .error("unexpected reply to switch_session")
        }
        // Its listing: usually on the first page; older sessions take a page walk.
        var info: SessionInfo?
        var cursor: String?
        repeat {
            let page = try await page(connection, includeArchived: true, limit: 1000, cursor: cursor)
            info = page.sessions.first { $0.sessionID == ref.sessionID }
            cursor = page.next
        } while info == nil && cursor != nil
        guard let info else { throw .error("session `\(ref.sessionID)` is not in the list") }
        let asked = FrameIDs.request()
        connection.client.send(.getHistory(requestID: asked, limit: min(max(limit, 1), 500)))
        guard case .history(_, _, let entries, let truncated, _) = try await connection.reply(to: asked) else {
            throw .error("unexpected reply to get_history")
        }
        return (info, entries, truncated)
    }

    private static func page(_ connection: Connection, includeArchived: Bool, limit: Int, cursor: String?)
        async throws(CommandOutput) -> (sessions: [SessionInfo], next: String?, total: Int)
    {
        let id = FrameIDs.request()
        connection.client.send(
            .listSessions(requestID: id, includeArchived: includeArchived, limit: limit, cursor: cursor))
        guard case .sessionList(_, let sessions, let next, let total) = try await connection.reply(to: id) else {
            throw .error("unexpected reply to list_sessions")
        }
        return (sessions, next, total ?? sessions.count)
    }

    private static func update(_ connection: Connection, _ frame: ClientFrame, json: Bool) async throws(CommandOutput)
        -> CommandOutput
    {
        connection.client.send(frame)
        guard case .sessionUpdated(_, let info) = try await connection.reply(to: frame.requestID) else {
            throw .error("unexpected reply to \(frame.type)")
        }
        if json { return CommandOutput(standardOutput: info.json.prettyText + "\n") }
        return CommandOutput(
            standardOutput: "session_id=\(info.sessionID)\ntitle=\(info.displayName ?? "")\narchived=\(info.archived)\n"
        )
    }

    /// A gateway connection read one reply at a time.
    final class Connection: @unchecked Sendable {
        let client: GatewayClient
        private var iterator: AsyncStream<ServerFrame>.Iterator

        init(_ client: GatewayClient) {
            self.client = client
            iterator = client.frames.makeAsyncIterator()
        }

        /// The reply to request `id` (an `error` for it becomes the command's error); other frames
        /// (a replayed turn end, progress of other sessions) are skipped. Ten seconds at most.
        func reply(to id: String) async throws(CommandOutput) -> ServerFrame {
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline {
                guard let frame = await iterator.next() else {
                    throw .error(client.failure?.message ?? "the gateway closed the connection")
                }
                switch frame {
                case .error(let info) where info.requestID == id || info.requestID == nil:
                    throw .error("\(info.message) [\(info.code.rawValue)]")
                default:
                    // Any reply to the request; turn frames carry their `send_turn`'s id instead.
                    if frame.turnHeader == nil, frame.requestID == id { return frame }
                }
            }
            throw .error("the gateway did not answer within 10 s")
        }
    }
}

extension Substring {
    fileprivate func padding(_ width: Int) -> String {
        String(self) + String(repeating: " ", count: Swift.max(0, width - count))
    }
}
