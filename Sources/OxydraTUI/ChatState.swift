import OxydraClient
import OxydraCore

/// What the terminal UI shows, independent of the terminal: the transcript, the connection, the
/// session and turn, and the input being edited.
public struct ChatState: Sendable {
    public enum EntryKind: Sendable, Hashable {
        case user, assistant, tool, system, error
    }

    public struct Entry: Sendable, Hashable {
        public var kind: EntryKind
        public var text: String
        /// A live tool call: its arguments, state and (once finished) output.
        public var tool: ToolView?
        /// Unique in the transcript: what the renderer keeps an entry's laid-out lines under.
        public internal(set) var id = 0

        public init(kind: EntryKind, text: String, tool: ToolView? = nil) {
            self.kind = kind
            self.text = text
            self.tool = tool
        }
    }

    /// A tool call as the transcript shows it: one compact line that expands to the arguments and the
    /// whole (scrubbed) output.
    public struct ToolView: Sendable, Hashable {
        public enum Status: Sendable, Hashable {
            case running(since: ContinuousClock.Instant)
            case succeeded(milliseconds: Int)
            case failed(milliseconds: Int)
        }

        public var callID: String
        public var summary: String
        public var arguments: String?
        public var output: String?
        public var status: Status
        /// Why a failed call failed (the first line of its output).
        public var note: String?
        public var expanded = false
    }

    public enum Connection: Sendable, Hashable {
        case connecting
        case connected
        case disconnected(reason: String)
    }

    public static let maxEntries = 1000

    public private(set) var entries: [Entry] = []
    /// Index of the assistant entry receiving deltas.
    var streamingEntry: Int?
    /// Filters the streamed answer as a whole, so an escape sequence split across deltas is removed
    /// whole instead of its tail showing as text.
    var streamFilter = TerminalText.Filter()
    public var connection = Connection.connecting
    public var session: SessionID?
    public var activeTurn: TurnID?
    public var progress: String?
    public var turnsCompleted = 0
    public var totalCost: Double?
    /// Set when the UI landed on a session whose earlier messages it has not shown; the app asks
    /// for them (`get_history`) and clears it.
    public var needsHistory = false
    /// The session whose history was asked for and not yet shown.
    public var historyPending: SessionID?
    /// Lines scrolled up from the bottom (0 follows new output).
    public var scroll = 0
    public var editor = InputEditor()
    public let user: String
    public let color: Bool

    public init(user: String, color: Bool) {
        self.user = user
        self.color = color
    }

    public var isStreaming: Bool { activeTurn != nil }
    /// When the running turn was sent (the status bar shows the time since).
    public var turnStartedAt: ContinuousClock.Instant?
    /// Tokens in the session's context after the last turn, and the model's window.
    public var context: (used: Int, window: Int)?
    /// The tool call Ctrl+O expands (an index into `entries`); the newest call unless moved.
    public var focusedTool: Int?
    /// The session's model, once the guest said (`/model`).
    public var model: ModelInfo?
    /// Files to send with the next message (`/attach`, or an image path dropped on the terminal).
    public var attachments: [ClientFrame.FileAttachment] = []
    /// Where `/sessions more` continues the last listing (nil: it was the last page).
    public var sessionsCursor: String?
    /// Set while a `/sessions more` request is out.
    public var sessionsPaging = false
    /// The reverse search (Ctrl+R) through earlier prompts, while it is open.
    public var search: HistorySearch?
    /// A prompt typed while a turn ran: sent when it ends (Esc takes it back).
    public var queuedPrompt: String?
    /// Tool calls of this session waiting for an answer, oldest first (y / n / a answer the first).
    public var approvals: [ApprovalRequest] = []

    public mutating func append(_ kind: EntryKind, _ text: String) {
        append(Entry(kind: kind, text: TextLayout.sanitize(text)))
    }

    /// Appends an entry whose text is already sanitised, keeping at most `maxEntries`.
    mutating func append(_ entry: Entry) {
        var entry = entry
        entry.id = newID()
        entries.append(entry)
        trim()
    }

    private var lastID = 0
    private mutating func newID() -> Int {
        lastID += 1
        return lastID
    }

    /// Keeps at most `maxEntries`, moving the indices that point into the transcript.
    private mutating func trim() {
        guard entries.count > Self.maxEntries else { return }
        let overflow = entries.count - Self.maxEntries
        entries.removeFirst(overflow)
        if let index = streamingEntry { streamingEntry = index >= overflow ? index - overflow : nil }
        if let index = focusedTool { focusedTool = index >= overflow ? index - overflow : nil }
    }

    public mutating func clearTranscript() {
        entries.removeAll()
        streamingEntry = nil
        focusedTool = nil
        scroll = 0
    }

    /// Ctrl+O: shows or hides the focused tool call's arguments and output.
    public mutating func toggleFocusedTool() {
        guard let index = focusedTool, index < entries.count, entries[index].tool != nil else { return }
        entries[index].tool?.expanded.toggle()
    }

    /// Alt+↑/↓: moves the focus to the previous (`-1`) or next (`+1`) tool call.
    public mutating func moveToolFocus(_ direction: Int) {
        let calls = entries.indices.filter { entries[$0].tool != nil }
        guard !calls.isEmpty else { return }
        guard let current = focusedTool, let position = calls.firstIndex(of: current) else {
            focusedTool = calls.last
            return
        }
        focusedTool = calls[min(max(position + direction, 0), calls.count - 1)]
    }

    /// Applies a frame from the gateway.
    public mutating func apply(_ frame: ServerFrame) {
        switch frame {
        case .helloAck(_, _, let ref, let active):
            connection = .connected
            if session != ref.sessionID {
                session = ref.sessionID
                append(.system, "connected to session \(ref.sessionID)")
                needsHistory = true
            }
            activeTurn = active.flatMap { $0.state == .running || $0.state == .queued ? $0.turnID : nil }
            if activeTurn == nil { progress = nil }
        case .turnStarted(let header):
            activeTurn = header.turn.turnID
            progress = "thinking…"
            turnStartedAt = turnStartedAt ?? .now
        case .assistantDelta(let header, let delta):
            guard header.session.sessionID == session else { return }
            activeTurn = header.turn.turnID
            if let index = streamingEntry, index < entries.count {
                entries[index].text += streamFilter.feed(delta)
            } else {
                streamFilter = TerminalText.Filter()
                append(Entry(kind: .assistant, text: streamFilter.feed(delta)))
                streamingEntry = entries.count - 1
            }
        case .turnProgress(_, let info):
            progress = info.message
        case .toolCall(_, let call):
            streamingEntry = nil
            append(
                Entry(
                    kind: .tool, text: "⚙ " + TextLayout.sanitize(call.summary),
                    tool: ToolView(
                        callID: call.callID, summary: TextLayout.sanitize(call.summary),
                        arguments: call.arguments.map(TextLayout.sanitize), status: .running(since: .now))))
            focusedTool = entries.count - 1
        case .toolResult(_, let result):
            let milliseconds = result.durationMilliseconds
            let status: ToolView.Status =
                result.isError ? .failed(milliseconds: milliseconds) : .succeeded(milliseconds: milliseconds)
            if let index = entries.lastIndex(where: { $0.tool?.callID == result.callID }) {
                entries[index].tool?.status = status
                entries[index].tool?.output = result.output.map(TextLayout.sanitize)
                if result.isError { entries[index].tool?.note = TextLayout.sanitize(result.summary) }
            } else {
                // The call started before this client connected.
                append(
                    Entry(
                        kind: .tool, text: "⚙ " + TextLayout.sanitize(result.name),
                        tool: ToolView(
                            callID: result.callID, summary: TextLayout.sanitize(result.name),
                            output: result.output.map(TextLayout.sanitize), status: status,
                            note: result.isError ? TextLayout.sanitize(result.summary) : nil)))
                focusedTool = entries.count - 1
            }
        case .turnCompleted(let header, let completion):
            guard header.session.sessionID == session else { return }
            let ours = activeTurn == header.turn.turnID
            if streamingEntry == nil, !completion.message.isEmpty {
                // A turn that ended while this client was away is replayed after hello.
                if !ours { append(.system, "last answer in this session:") }
                append(.assistant, completion.message)
            }
            finishTurn()
            if ours {
                turnsCompleted += 1
                if let cost = completion.costUSD { totalCost = (totalCost ?? 0) + cost }
            }
            if let used = completion.contextTokens, let window = completion.contextWindow, window > 0 {
                context = (used, window)
            }
        case .turnCancelled(let header):
            guard header.session.sessionID == session else { return }
            finishTurn()
            append(.system, "turn cancelled")
        case .error(let info):
            if info.turn != nil, info.session?.sessionID == session, info.code == .turnFailed { finishTurn() }
            append(.error, info.message)
        case .healthStatus(let info):
            var lines = ["gateway: \(info.healthy ? "healthy" : "unhealthy")\(info.message.map { " (\($0))" } ?? "")"]
            if let status = info.startupStatus {
                lines.append(
                    "tier \(status.sandboxTier.rawValue) · shell \(status.shellAvailable ? "on" : "off") · browser "
                        + (status.browserAvailable ? "on" : "off"))
                lines += status.degradedReasons.map { "degraded: \($0.code): \($0.detail)" }
            }
            lines.append("session \(session?.rawValue ?? "-") · turns \(turnsCompleted)" + costText)
            append(.system, lines.joined(separator: "\n"))
        case .sessionCreated(_, let ref, let name, _):
            switchTo(ref.sessionID, note: "new session \(ref.sessionID)" + (name.map { " (\($0))" } ?? ""))
        case .sessionSwitched(_, let ref, let active):
            switchTo(ref.sessionID, note: "switched to session \(ref.sessionID)")
            needsHistory = true
            activeTurn = active.flatMap { $0.state == .running || $0.state == .queued ? $0.turnID : nil }
        case .history(_, let ref, let history, let truncated, _):
            guard ref.sessionID == session, historyPending == session else { return }
            historyPending = nil
            showHistory(history, truncated: truncated)
        case .sessionList(_, let sessions, let next, let total):
            let continued = sessionsCursor != nil && sessionsPaging
            sessionsCursor = next
            sessionsPaging = false
            if sessions.isEmpty {
                append(.system, "no sessions")
            } else {
                var text = continued ? "older sessions:\n" : "sessions (most recent first):\n"
                text += sessions.map { info in
                    (info.sessionID == session ? "* " : "  ") + Self.shortID(info.sessionID) + "  "
                        + (info.displayName ?? "-") + "  last active " + info.lastActiveAt
                        + (info.activeTurn != nil ? "  (turn running)" : "")
                }.joined(separator: "\n")
                if next != nil, let total {
                    text +=
                        "\n  … \(total) \(total == 1 ? "session" : "sessions") in all; /sessions more for older ones"
                }
                append(.system, text)
            }
        case .sessionUpdated(_, let info):
            append(
                .system,
                "session \(Self.shortID(info.sessionID)): " + (info.displayName.map { "“\($0)”" } ?? "untitled")
                    + (info.archived ? " (archived)" : ""))
        case .sessionDeleted(_, let ref):
            append(.system, "session \(Self.shortID(ref.sessionID)) deleted")
        case .usageReport(_, let report):
            append(.system, report.text)
        case .modelChanged(_, let ref, let info):
            guard ref.sessionID == session else { return }
            model = info
            append(.system, "model for this session: " + Self.describe(info))
        case .approvalRequest(let header, let request):
            guard header.session.sessionID == session,
                !approvals.contains(where: { $0.approvalID == request.approvalID })
            else { return }
            approvals.append(request)
            streamingEntry = nil
            append(.system, Self.prompt(for: request))
        case .approvalResolved(let header, let resolution):
            guard header.session.sessionID == session else { return }
            guard let index = approvals.firstIndex(where: { $0.approvalID == resolution.approvalID }) else { return }
            let request = approvals.remove(at: index)
            append(.system, Self.outcome(of: resolution, for: request))
        case .grantList(_, let grants):
            append(
                .system,
                grants.isEmpty
                    ? "no standing approvals"
                    : "standing approvals (/revoke <id>):\n"
                        + grants.map { grant in
                            "  \(grant.grantID)  \(grant.scope.rawValue)  \(grant.tool): \(grant.kind.label)"
                        }.joined(separator: "\n"))
        case .grantRevoked(_, let id):
            append(.system, "approval \(id) revoked")
        case .modelList(_, let current, let models):
            model = current
            var text =
                "model: " + Self.describe(current) + "\n/model <name> or /model <provider>/<name> switches; available:"
            var providers: [String] = []
            for choice in models where !providers.contains(choice.provider) { providers.append(choice.provider) }
            for provider in providers {
                let names = models.filter { $0.provider == provider }.map(\.model)
                text += "\n  \(provider): " + names.joined(separator: ", ")
            }
            append(.system, text)
        }
    }

    /// The chat line asking for an approval: what, why, the arguments (first lines) and the keys.
    static func prompt(for request: ApprovalRequest) -> String {
        var lines = [
            "⚠ approval needed: " + TextLayout.sanitize(request.summary),
            "  " + TextLayout.sanitize(request.reason) + " · risk \(request.risk.rawValue)",
        ]
        let details = TextLayout.sanitize(request.details).split(separator: "\n", omittingEmptySubsequences: false)
        for line in details.prefix(6) { lines.append("  │ " + line) }
        if details.count > 6 { lines.append("  │ … \(details.count - 6) more lines") }
        lines.append(
            "  y allow once · n deny · a allow \(TextLayout.sanitize(request.kindLabel)) for this session")
        return lines.joined(separator: "\n")
    }

    static func outcome(of resolution: ApprovalResolution, for request: ApprovalRequest) -> String {
        let by = resolution.answeredBy.map { " by \($0)" } ?? ""
        switch (resolution.reason, resolution.decision) {
        case (.answered, .allow):
            return "✓ allowed\(resolution.scope == .once ? "" : " (\(resolution.scope.rawValue))")\(by): "
                + TextLayout.sanitize(request.summary)
        case (.answered, .deny): return "✗ denied\(by): " + TextLayout.sanitize(request.summary)
        case (.timedOut, _): return "✗ not answered in time, denied: " + TextLayout.sanitize(request.summary)
        case (.cancelled, _): return "✗ cancelled with the turn: " + TextLayout.sanitize(request.summary)
        }
    }

    /// `openai/gpt-4o (128k context, images)`.
    static func describe(_ info: ModelInfo) -> String {
        var details: [String] = []
        if let window = info.contextWindow { details.append("\(TokenCount.display(window)) context") }
        if info.images { details.append("images") }
        return "\(info.provider)/\(info.model)" + (details.isEmpty ? "" : " (" + details.joined(separator: ", ") + ")")
    }

    /// Short enough for the status bar, long enough to `/switch` to.
    static func shortID(_ id: SessionID) -> String {
        id.rawValue.count <= 16 ? id.rawValue : String(id.rawValue.prefix(8))
    }

    var costText: String { totalCost.map { " · " + Money.display($0) } ?? "" }

    private mutating func finishTurn() {
        approvals = []
        activeTurn = nil
        turnStartedAt = nil
        streamingEntry = nil
        progress = nil
    }

    /// Puts the session's earlier messages right after the "connected/switched" line, replacing the
    /// replay of the last answer (which the history contains) and keeping anything streamed since.
    mutating func showHistory(_ history: [HistoryEntry], truncated: Bool) {
        guard !history.isEmpty else { return }
        let marker =
            entries.lastIndex {
                $0.kind == .system
                    && ($0.text.hasPrefix("connected to session") || $0.text.hasPrefix("switched to session"))
            } ?? -1
        var tail = Array(entries[(marker + 1)...])
        if let replay = tail.firstIndex(where: { $0.kind == .system && $0.text == "last answer in this session:" }),
            streamingEntry == nil
        {
            tail.removeSubrange(replay..<min(replay + 2, tail.count))
        }
        var earlier = [
            Entry(
                kind: .system,
                text: truncated ? "earlier in this session (older messages not shown):" : "earlier in this session:")
        ]
        for entry in history {
            switch entry.role {
            case "user":
                earlier.append(Entry(kind: .user, text: TextLayout.sanitize(entry.text)))
            case "assistant":
                if !entry.text.isEmpty {
                    earlier.append(Entry(kind: .assistant, text: TextLayout.sanitize(entry.text)))
                }
                for name in entry.toolNames {
                    earlier.append(Entry(kind: .tool, text: "⚙ " + TextLayout.sanitize(name)))
                }
            default:
                let name = entry.toolNames.first.map { "\($0): " } ?? ""
                earlier.append(Entry(kind: .tool, text: "  ↳ " + TextLayout.sanitize(name + entry.text)))
            }
        }
        for index in earlier.indices { earlier[index].id = newID() }
        let head = marker >= 0 ? Array(entries[...marker]) : []
        if let index = streamingEntry { streamingEntry = index + earlier.count }
        if let index = focusedTool { focusedTool = index > marker ? index + earlier.count : nil }
        entries = head + earlier + tail
        trim()
    }

    private mutating func switchTo(_ id: SessionID, note: String) {
        clearTranscript()
        approvals = []
        context = nil
        session = id
        activeTurn = nil
        progress = nil
        append(.system, note)
    }
}
