import Logging
import OxydraAudit
import OxydraCore
import OxydraRuntime

extension SessionHub {
    /// Accepts a turn on the connection's session, or returns the error frame that refuses it.
    /// `resuming`: no new prompt; the session's unfinished last turn continues (a channel recovering
    /// a message whose answer a guest restart interrupted).
    func submit(_ turn: ClientFrame.SendTurn, connection: ConnectionID, resuming: Bool = false) -> ServerFrame? {
        guard !shuttingDown else {
            return error(turn.requestID, .shuttingDown, "the guest is shutting down; reconnect after it restarts")
        }
        guard let sessionID = currentSession(of: connection), let session = sessions[sessionID] else {
            return error(turn.requestID, .protocolError, "no session: send hello first")
        }
        if let claimed = turn.sessionID, claimed != sessionID {
            return .error(
                GatewayErrorInfo(
                    requestID: turn.requestID, session: ref(sessionID), code: .protocolError,
                    message: "session_id `\(claimed)` does not match the connection's session `\(sessionID)`; "
                        + "switch_session first"))
        }
        if let active = session.activeTurn {
            return .error(
                GatewayErrorInfo(
                    requestID: turn.requestID, session: ref(sessionID), turn: active.ref, code: .busy,
                    message: "an active turn is already running in this session (turn `\(active.turnID)`); "
                        + "wait for it to finish or cancel it"))
        }
        if !turn.attachments.isEmpty && inbox == nil {
            return error(turn.requestID, .protocolError, "this guest has no /shared directory for attachments")
        }
        let queued = running >= limits.maxConcurrentTurnsPerUser
        if queued && waiting.count >= limits.maxQueuedTurnsPerUser {
            return .error(
                GatewayErrorInfo(
                    requestID: turn.requestID, session: ref(sessionID), code: .queueFull,
                    message: "too many queued turns (queue limit: \(limits.maxQueuedTurnsPerUser)); "
                        + "try again when a running turn finishes"))
        }
        let key = TurnKey(session: sessionID, turn: turn.turnID)
        session.activeTurn = ActiveTurn(
            turnID: turn.turnID, requestID: turn.requestID, state: queued ? .queued : .running)
        session.lastTerminal = nil
        session.lastActivity = .now
        if !queued { running += 1 }
        let header = TurnHeader(
            requestID: turn.requestID, session: ref(sessionID), turn: TurnRef(turnID: turn.turnID, state: .running))
        if queued {
            let ahead = waiting.count
            publish(
                .turnProgress(
                    TurnHeader(requestID: turn.requestID, session: ref(sessionID), turn: session.activeTurn!.ref),
                    ProgressInfo(
                        kind: "queued",
                        message: "Waiting for a free turn slot (\(ahead) ahead, "
                            + "\(limits.maxConcurrentTurnsPerUser) running)", turn: 0,
                        maxTurns: runtime.settings.maxTurns)), to: sessionID)
        }
        let prompt = resuming ? nil : turn.prompt
        let attachments = turn.attachments
        turnTasks[key] = Task(executorPreference: EventLoopTaskExecutor.current) {
            await self.execute(key: key, header: header, prompt: prompt, attachments: attachments, queued: queued)
        }
        return nil
    }

    /// An untitled session is named after its first prompt (no model call): its first line,
    /// shortened to 60 characters at a word boundary.
    /// Returns the title when it gave one (a `[sessions] title_model` may improve it later).
    @discardableResult
    func giveTitle(to session: LiveSession, from prompt: String) async -> String? {
        guard !session.titled else { return nil }
        session.titled = true
        let title = Self.title(from: prompt)
        guard (try? await store.titleSession(session.id, title)) == true else { return nil }
        return title
    }

    /// `[sessions] title_model`: asks that model for a short title of the first exchange and
    /// replaces the prompt's title with it, unless someone renamed the session meanwhile.
    func improveTitle(of id: SessionID, was title: String, prompt: String, answer: String, runtime: AgentRuntime) async
    {
        guard let titleModel else { return }
        var provider = runtime.provider
        var model = titleModel
        if let slash = titleModel.firstIndex(of: "/"), let switching {
            let prefix = String(titleModel[..<slash])
            if switching.choices.contains(where: { $0.provider == prefix }),
                let reached = try? switching.resolve(prefix, String(titleModel[titleModel.index(after: slash)...]))
            {
                provider = reached.0
                model = reached.1.id.rawValue
            }
        }
        let request = ModelRequest(
            model: ModelID(model),
            messages: [
                .system("You name conversations. Answer with a title of at most six words, nothing else."),
                .user(
                    "User: \(String(prompt.prefix(2000)))\n\nAssistant: \(String(answer.prefix(2000)))\n\n"
                        + "A title of at most six words for this conversation, without quotes:"),
            ], maxOutputTokens: 32)
        let text: String
        do {
            text = try await provider.complete(request).message.content ?? ""
        } catch {
            logger.warning("title_model failed; keeping the prompt's title", metadata: ["error": "\(error)"])
            return
        }
        let cleaned = Self.title(from: Self.plainTitle(text))
        guard cleaned != "untitled", let record = try? await store.session(id), record.displayName == title else {
            return
        }
        try? await store.renameSession(id, to: cleaned)
        logger.info("session titled", metadata: ["session": "\(id)", "model": "\(model)"])
    }

    /// A model's title as plain text: the first line, without Markdown marks, quotes or control
    /// characters.
    nonisolated static func plainTitle(_ text: String) -> String {
        let line = text.split(whereSeparator: \.isNewline).first { !$0.trimmed.isEmpty }.map(String.init) ?? ""
        let kept = line.filter { character in
            !"\"'`*#_“”‘’".contains(character)
                && (character.isLetter || character.isNumber || character.isPunctuation || character.isSymbol
                    || character == " ")
        }
        var title = kept.trimmed
        if title.lowercased().hasPrefix("title:") { title = String(title.dropFirst(6)).trimmed }
        while let last = title.last, ".:;,".contains(last) { title.removeLast() }
        return title
    }

    public nonisolated static func title(from prompt: String) -> String {
        shorten(asciiFirstLine(of: prompt) ?? characterFirstLine(of: prompt))
    }

    /// The first non-empty line with its whitespace collapsed, read as `Character`s (a prompt's
    /// every grapheme: costly for a long one, and only the first line is needed).
    nonisolated static func characterFirstLine(of prompt: String) -> String {
        let line = prompt.split(whereSeparator: \.isNewline).first.map { $0.trimmed } ?? ""
        return line.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }

    /// The same when that line is ASCII, read as bytes up to its end; nil for anything else.
    nonisolated static func asciiFirstLine(of prompt: String) -> String? {
        var words: [UInt8] = []
        var pendingSpace = false
        var inLine = false
        for byte in prompt.utf8 {
            guard byte < 0x80 else { return nil }
            if byte >= 0x0A && byte <= 0x0D {
                // Empty lines are passed over; a line of blanks is the first line (and empty).
                if inLine { break }
                continue
            }
            inLine = true
            if byte == 0x20 || byte == 0x09 {
                pendingSpace = !words.isEmpty
                continue
            }
            if pendingSpace { words.append(0x20) }
            pendingSpace = false
            words.append(byte)
        }
        return String(decoding: words, as: UTF8.self)
    }

    nonisolated static func shorten(_ collapsed: String) -> String {
        guard collapsed.count > 60 else { return collapsed.isEmpty ? "untitled" : collapsed }
        var cut = String(collapsed.prefix(60))
        if let space = cut.lastIndex(of: " "), cut.distance(from: cut.startIndex, to: space) >= 30 {
            cut = String(cut[..<space])
        }
        return cut + "…"
    }

    /// Waits for a slot (FIFO) when queued, runs the turn, publishes its frames and its end.
    /// Without a prompt, resumes the session's turn that waits for an approval (after a restart).
    func execute(
        key: TurnKey, header: TurnHeader, prompt: String?, attachments: [ClientFrame.FileAttachment], queued: Bool
    ) async {
        if queued {
            let admitted = await withCheckedContinuation { continuation in
                waiting.append((key, continuation))
            }
            guard admitted else {
                finish(key, header: header, terminal: .turnCancelled(header.with(state: .cancelled)), holdsSlot: false)
                return
            }
        }
        guard let session = sessions[key.session] else {
            finish(key, header: header, terminal: nil, holdsSlot: true)
            return
        }
        session.activeTurn?.state = .running
        publish(.turnStarted(header), to: key.session)
        let newTitle = if let prompt { await giveTitle(to: session, from: prompt) } else { String?.none }
        logger.info(
            prompt == nil ? "turn resumed" : "turn started",
            metadata: ["session": "\(key.session)", "turn": "\(key.turn)"])

        let started = ContinuousClock.now
        let approver =
            approvalConfig.mode == .off
            ? nil : TurnApprover(hub: self, key: key, header: header, config: approvalConfig)
        let events: @Sendable (RuntimeEvent) async -> Void = { [fanout = session.fanout, audit] event in
            Self.record(event, in: audit, header: header)
            guard let frame = Self.frame(for: event, header: header) else { return }
            let lagging = fanout.publish(frame)
            if !lagging.isEmpty { await self.dropLagging(lagging) }
        }
        do {
            let history = try await loadHistory(session)
            let runtime = await self.runtime(for: session)
            let input = try prompt.map { prompt throws(HubError) in
                try message(prompt, attachments: attachments, runtime: runtime)
            }
            let result =
                if let input {
                    try await runtime.run(
                        session: key.session, user: user, history: history, input: input, approver: approver,
                        events: events)
                } else {
                    try await runtime.resume(
                        session: key.session, user: user, history: history, approver: approver, events: events)
                }
            session.history = history + (input.map { [$0] } ?? []) + result.messages
            let completion = TurnCompletion(
                message: result.answer.content ?? "", finishReason: result.finishReason.map { "\($0)" },
                usage: result.usage, costUSD: result.cost, providerCalls: result.providerCalls,
                durationMilliseconds: Self.milliseconds(ContinuousClock.now - started),
                contextTokens: result.contextTokens, contextWindow: result.contextWindow, provider: result.provider,
                model: result.model)
            logger.info(
                "turn completed",
                metadata: [
                    "session": "\(key.session)", "turn": "\(key.turn)", "ms": "\(completion.durationMilliseconds)",
                    "provider_calls": "\(result.providerCalls)",
                ])
            finish(
                key, header: header, terminal: .turnCompleted(header.with(state: .completed), completion),
                holdsSlot: true)
            if let newTitle, let prompt, titleModel != nil {
                await improveTitle(
                    of: key.session, was: newTitle, prompt: prompt, answer: completion.message, runtime: runtime)
            }
        } catch {
            session.history = nil
            // A cancellation can surface as a transport error when it lands while a request is
            // being set up; the turn was still cancelled.
            let cancelled: Bool
            switch error {
            case RuntimeError.cancelled, is CancellationError: cancelled = true
            default: cancelled = Task.isCancelled
            }
            if case RuntimeError.suspended = error {
                logger.info(
                    "turn suspended: it waits for an approval and resumes at the next start",
                    metadata: ["session": "\(key.session)", "turn": "\(key.turn)"])
                finish(key, header: header, terminal: nil, holdsSlot: true)
            } else if cancelled {
                logger.info("turn cancelled", metadata: ["session": "\(key.session)", "turn": "\(key.turn)"])
                finish(key, header: header, terminal: .turnCancelled(header.with(state: .cancelled)), holdsSlot: true)
            } else if let error = error as? HubError {
                failed(key, header: header, message: error.message)
            } else if let error = error as? RuntimeError {
                failed(key, header: header, message: error.description)
            } else {
                failed(key, header: header, message: "internal error: \(error)")
            }
        }
    }

    /// The user's message: the prompt, and for attachments a note of where each was saved in
    /// `/shared/inbox/`; images also go to the model as images when it accepts them.
    func message(_ prompt: String, attachments: [ClientFrame.FileAttachment], runtime: AgentRuntime) throws(HubError)
        -> Message
    {
        guard !attachments.isEmpty else { return .user(prompt) }
        guard let inbox else { throw HubError(.protocolError, "this guest has no /shared directory for attachments") }
        let seesImages = runtime.model.capabilities.accepts(.image)
        var notes: [String] = []
        var images: [Attachment] = []
        for attachment in attachments {
            let path: String
            do {
                path = try inbox.save(attachment.data, as: attachment.name)
            } catch {
                throw HubError(.internalError, "attachment `\(attachment.name)`: \(error)")
            }
            var note = "\(path) (\(attachment.mimeType), \(ByteCount.display(attachment.data.count))"
            if InputModality(mimeType: attachment.mimeType) == .image {
                if seesImages {
                    images.append(Attachment(mimeType: attachment.mimeType, data: attachment.data))
                    note += "; shown to you as an image"
                } else {
                    note += "; this model cannot see images"
                }
            }
            notes.append(note + ")")
            logger.info("attachment saved", metadata: ["path": "\(path)", "bytes": "\(attachment.data.count)"])
        }
        let text =
            prompt + "\n\n[Attached " + (notes.count == 1 ? "file" : "files") + ": " + notes.joined(separator: ", ")
            + "]"
        return .user(text, attachments: images)
    }

    private func failed(_ key: TurnKey, header: TurnHeader, message: String) {
        logger.warning(
            "turn failed", metadata: ["session": "\(key.session)", "turn": "\(key.turn)", "error": "\(message)"])
        let failedHeader = header.with(state: .failed)
        finish(
            key, header: header,
            terminal: .error(
                GatewayErrorInfo(
                    requestID: header.requestID, session: failedHeader.session, turn: failedHeader.turn,
                    code: .turnFailed, message: message)), holdsSlot: true)
    }

    /// The session's history from the store, cached in memory.
    func loadHistory(_ session: LiveSession) async throws(HubError) -> [Message] {
        if let history = session.history { return history }
        let id = session.id
        let stored = try await storeCall { () throws(MemoryError) in try await store.restore(id) }
        let repaired = HistoryRepair.closingUnansweredCalls(stored.map(\.message), keepingOpen: keptOpen[id] ?? [])
        if !repaired.added.isEmpty {
            logger.warning(
                "closed tool calls the guest never finished",
                metadata: ["session": "\(id)", "calls": "\(repaired.added.count)"])
            // Usually the calls are the last thing stored: write their results, so the store itself is
            // valid again. Elsewhere in the history the repair is applied each time it is read.
            if repaired.appendable {
                _ = try await storeCall { () throws(MemoryError) in try await store.append(repaired.added, to: id) }
            }
        }
        let history = repaired.messages
        session.history = history
        return history
    }

    private func finish(_ key: TurnKey, header: TurnHeader, terminal: ServerFrame?, holdsSlot: Bool) {
        turnTasks[key] = nil
        turnGrants[key] = nil
        keptOpen[key.session] = nil
        if holdsSlot { releaseSlot() }
        guard let session = sessions[key.session], session.activeTurn?.turnID == key.turn else { return }
        session.activeTurn = nil
        session.lastActivity = .now
        if let terminal {
            session.lastTerminal = terminal
            publish(terminal, to: key.session)
        }
    }

    private func releaseSlot() {
        if waiting.isEmpty {
            running -= 1
        } else {
            // The slot passes straight to the oldest waiter.
            waiting.removeFirst().continuation.resume(returning: true)
        }
    }

    /// Tool calls into the audit log, with the approval decision and who answered.
    nonisolated static func record(_ event: RuntimeEvent, in audit: AuditLog?, header: TurnHeader) {
        guard let audit else { return }
        switch event {
        case .toolStarted(let callID, let name, _, let arguments, let approval, let approvedBy):
            audit.begin(
                callID: callID, tool: name, arguments: arguments, session: header.session.sessionID.rawValue,
                turn: header.turn.turnID.rawValue, decision: approval, approvedBy: approvedBy)
        case .toolFinished(let callID, _, let duration, let isError, _, let output):
            audit.finish(
                callID: callID, isError: isError, resultBytes: output.utf8.count,
                durationMilliseconds: milliseconds(duration))
        default:
            break
        }
    }

    /// The frame a runtime event becomes for the session's subscribers (nil for events not sent).
    nonisolated static func frame(for event: RuntimeEvent, header: TurnHeader) -> ServerFrame? {
        let frame: ServerFrame
        switch event {
        case .textDelta(let text):
            frame = .assistantDelta(header, delta: text)
        case .progress(let progress):
            frame = .turnProgress(header, ProgressInfo(progress))
        case .toolStarted(let callID, let name, let summary, let arguments, _, _):
            frame = .toolCall(header, ToolCallInfo(callID: callID, name: name, summary: summary, arguments: arguments))
        case .toolFinished(let callID, let name, let duration, let isError, let summary, let output):
            frame = .toolResult(
                header,
                ToolResultInfo(
                    callID: callID, name: name, isError: isError, durationMilliseconds: Self.milliseconds(duration),
                    summary: summary, output: output))
        case .reasoningDelta, .usage:
            return nil
        }
        return frame
    }

    /// Sends a frame to every connection subscribed to `session`. A subscriber whose buffer is full
    /// is dropped (its connection closes with `lagging`); it resumes by reconnecting.
    func publish(_ frame: ServerFrame, to session: SessionID) {
        guard let live = sessions[session] else { return }
        dropLagging(live.fanout.publish(frame))
    }

    /// Forgets the session of connections whose buffer overflowed.
    func dropLagging(_ lagging: [ConnectionID]) {
        for connection in lagging {
            logger.warning(
                "dropping a lagging client",
                metadata: ["session": "\(connections[connection]?.session.map { "\($0)" } ?? "-")"])
            connections[connection]?.session = nil
        }
    }

    /// `cancel_active_turn` on the connection's session.
    func cancel(requestID: String, sessionID: SessionID?, turnID: TurnID?, connection: ConnectionID) -> ServerFrame? {
        guard let current = currentSession(of: connection) else {
            return error(requestID, .protocolError, "no session: send hello first")
        }
        let target = sessionID ?? current
        guard let session = sessions[target], let active = session.activeTurn else {
            return .error(
                GatewayErrorInfo(
                    requestID: requestID, session: ref(target), code: .noActiveTurn, message: "no active turn to cancel"
                ))
        }
        if let turnID, turnID != active.turnID {
            return .error(
                GatewayErrorInfo(
                    requestID: requestID, session: ref(target), turn: active.ref, code: .noActiveTurn,
                    message: "cancel request names turn `\(turnID)` but the active turn is `\(active.turnID)`"))
        }
        cancelTurn(TurnKey(session: target, turn: active.turnID))
        return nil
    }

    /// `cancel_all_active_turns`: every running or queued turn of the user. Returns the error frame
    /// when there was nothing to cancel.
    func cancelAll(requestID: String) -> ServerFrame? {
        let keys = sessions.values.compactMap { session in
            session.activeTurn.map { TurnKey(session: session.id, turn: $0.turnID) }
        }
        guard !keys.isEmpty else { return error(requestID, .noActiveTurn, "no active turns to cancel") }
        keys.forEach(cancelTurn)
        return nil
    }

    private func cancelTurn(_ key: TurnKey) {
        if let index = waiting.firstIndex(where: { $0.key == key }) {
            waiting.remove(at: index).continuation.resume(returning: false)
        }
        turnTasks[key]?.cancel()
    }

    /// Refuses new turns, cancels every running and queued turn and waits (bounded) until each has
    /// committed its partial state. Returns how many turns were cancelled.
    @discardableResult
    public func shutdown(grace: Duration = .seconds(10)) async -> Int {
        shuttingDown = true
        let tasks = Array(turnTasks)
        for (key, _) in tasks { cancelTurn(key) }
        let deadline = ContinuousClock.now + grace
        for (_, task) in tasks {
            let remaining = deadline - .now
            if remaining <= .zero { break }
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await task.value }
                group.addTask { try? await Task.sleep(for: remaining) }
                await group.next()
                group.cancelAll()
            }
        }
        return tasks.count
    }

    public var isShuttingDown: Bool { shuttingDown }

    static func milliseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
    }
}

extension TurnHeader {
    func with(state: TurnState) -> TurnHeader {
        TurnHeader(requestID: requestID, session: session, turn: TurnRef(turnID: turn.turnID, state: state))
    }
}

extension ProgressInfo {
    init(_ progress: TurnProgress) {
        let simple: String?
        switch progress.kind {
        case .providerCall: simple = "provider_call"
        case .providerRetry: simple = "provider_retry"
        case .providerFailover: simple = "provider_failover"
        case .budgetWarning: simple = "budget_warning"
        case .summarizing: simple = "rolling_summary"
        default: simple = nil
        }
        if let simple {
            self.init(kind: simple, message: progress.message, turn: progress.turn, maxTurns: progress.maxTurns)
            return
        }
        switch progress.kind {
        case .toolExecution(let names):
            self.init(
                kind: "tool_execution", toolNames: names, message: progress.message, turn: progress.turn,
                maxTurns: progress.maxTurns)
        case .toolHeartbeat(let names, let elapsed):
            self.init(
                kind: "tool_heartbeat", toolNames: names, elapsedSeconds: elapsed, message: progress.message,
                turn: progress.turn, maxTurns: progress.maxTurns)
        default:
            self.init(kind: "progress", message: progress.message, turn: progress.turn, maxTurns: progress.maxTurns)
        }
    }
}
