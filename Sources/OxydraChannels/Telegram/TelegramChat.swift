import Logging
import OxydraCore

/// One Telegram chat of the user: a hub connection on the chat's session (its own in `per_chat`
/// mode, the default session in `shared` mode), messages handled one after another, commands and
/// approval buttons handled at once (they act on the running turn).
///
/// Exactly-once turns: before a message's turn starts, the update is marked `turn_started` with the
/// session's history length; after a restart the worker looks at the history to tell whether the
/// message was committed (then the turn is resumed, or its stored answer delivered) or not (then
/// the turn starts again).
actor TelegramChat {
    let chatID: Int64
    let api: TelegramBotAPI
    let store: any ChannelStore
    let connector: any ChannelConnector
    let config: TelegramConfig
    let options: TelegramChannel.Options
    let logger: Logger
    static let channel = "telegram"

    private var connection: (any ChannelConnection)?
    private var reader: Task<Void, Never>?
    private var worker: Task<Void, Never>?
    private var session: SessionID?
    /// Streams of the turns this chat started, by request id (= turn id).
    private var turns: [String: AsyncStream<ServerFrame>.Continuation] = [:]
    /// Approval keyboards shown: approval id → message id.
    private var keyboards: [String: Int] = [:]
    /// Turns the user cancelled with /cancel (their cancellation is the answer).
    private var cancelled: Set<String> = []
    private var requests = 0
    private var connecting: Task<String?, Never>?
    /// Counts connections, so a reader that ends knows whether its connection is still the current one.
    private var generation = 0
    private var stopped = false
    private let queue: AsyncStream<(ChannelUpdate, TelegramInbound, Bool)>.Continuation
    private let work: AsyncStream<(ChannelUpdate, TelegramInbound, Bool)>

    static let commands: [(name: String, description: String)] = [
        ("new", "Start a new conversation"), ("sessions", "List your conversations"),
        ("switch", "Switch conversation: /switch <id>"), ("cancel", "Stop the running answer"),
        ("status", "What the agent is doing"), ("usage", "Tokens and cost today"), ("help", "What I understand"),
    ]

    init(
        chatID: Int64, api: TelegramBotAPI, store: any ChannelStore, connector: any ChannelConnector,
        config: TelegramConfig, options: TelegramChannel.Options, logger: Logger
    ) {
        self.chatID = chatID
        self.api = api
        self.store = store
        self.connector = connector
        self.config = config
        self.options = options
        self.logger = logger
        (work, queue) = AsyncStream.makeStream()
    }

    func start() {
        worker = Task {
            for await (update, inbound, recovering) in work {
                await self.handle(update, inbound, recovering: recovering)
            }
        }
    }

    /// The session this chat talks in (nil before its first message).
    var currentSession: SessionID? { session }

    /// Sends a document to the chat (`send_file`), waiting when Telegram asks to.
    func sendDocument(name: String, mimeType: String, data: [UInt8], caption: String?) async throws(TelegramError) {
        var fields = ["chat_id": String(chatID)]
        if let caption, !caption.trimmed.isEmpty { fields["caption"] = String(caption.prefix(1024)) }
        for attempt in 1...5 {
            do {
                _ = try await api.upload(
                    "sendDocument", fields: fields, field: "document", name: name, mimeType: mimeType, data: data)
                return
            } catch {
                guard case .retryAfter(let seconds, _) = error, attempt < 5 else { throw error }
                try? await Task.sleep(for: .seconds(max(seconds, 1)))
            }
        }
    }

    /// Ends the worker and the connection; turns in flight stay `turn_started` in the store.
    func stop() async {
        stopped = true
        queue.finish()
        for sink in turns.values { sink.finish() }
        turns = [:]
        worker?.cancel()
        reader?.cancel()
        await connection?.close()
        connection = nil
    }

    /// An update of this chat from an allowed sender.
    func receive(_ update: ChannelUpdate, _ inbound: TelegramInbound, recovering: Bool) async {
        switch inbound.kind {
        case .button(let query, let messageID, let data):
            await button(query: query, messageID: messageID, data: data)
            await markDone(update.id)
        case .message(let text, _):
            // These act on a running turn, so they do not wait behind it.
            if let command = TelegramInbound.command(text), ["cancel", "status"].contains(command.name) {
                await self.command(command.name, command.argument)
                await markDone(update.id)
            } else {
                queue.yield((update, inbound, recovering))
            }
        case .other:
            await markDone(update.id)
        }
    }

    private func handle(_ update: ChannelUpdate, _ inbound: TelegramInbound, recovering: Bool) async {
        guard case .message(let text, let files) = inbound.kind, !stopped else { return }
        if files.isEmpty, let command = TelegramInbound.command(text),
            command.name == "start" || Self.commands.contains(where: { $0.name == command.name })
        {
            await self.command(command.name, command.argument)
            await markDone(update.id)
            return
        }
        let finished = await turn(
            update, text: text, files: files, recovering: recovering && update.state != "received")
        if finished { await markDone(update.id) }
    }

    // MARK: - The hub connection

    private func nextRequest() -> String {
        requests += 1
        return "tg-\(chatID)-\(requests)"
    }

    /// Connects and says hello on the chat's session (once, however many callers wait for it);
    /// nil when it worked, else why not.
    private func connect() async -> String? {
        if connection != nil { return nil }
        if let connecting { return await connecting.value }
        let task = Task { await self.open() }
        connecting = task
        let problem = await task.value
        connecting = nil
        return problem
    }

    private func open() async -> String? {
        let key = "session:\(chatID)"
        let stored =
            config.sessionMode == .perChat ? try? await store.channelValue(channel: Self.channel, key: key) : nil
        for attempt in 0..<2 {
            let candidate = await connector.connect(client: "telegram")
            let resume = attempt == 0 ? stored : nil
            let hello = ClientFrame.Hello(
                requestID: nextRequest(), sessionID: resume,
                createNewSession: config.sessionMode == .perChat && resume == nil, client: "telegram")
            // Frames published from now on reach `route` (a turn resumed by the hub included).
            let frames = candidate.frames
            generation += 1
            let current = generation
            reader = Task {
                for await frame in frames { await self.route(frame) }
                await self.lost(current)
            }
            let answers = await candidate.send(.hello(hello))
            guard case .helloAck(_, _, let ref, _)? = answers.first else {
                reader?.cancel()
                await candidate.close()
                if case .error(let info)? = answers.first, info.code == .notFound, resume != nil { continue }
                let reason: String
                if case .error(let info)? = answers.first { reason = info.message } else { reason = "no answer" }
                return "the agent refused the chat's connection: \(reason)"
            }
            connection = candidate
            session = ref.sessionID
            if config.sessionMode == .perChat, resume != ref.sessionID.rawValue {
                try? await store.setChannelValue(channel: Self.channel, key: key, value: ref.sessionID.rawValue)
            }
            for frame in answers.dropFirst() { route(frame) }
            return nil
        }
        return "the chat's session could not be opened"
    }

    private func lost(_ ended: Int) {
        guard ended == generation, connection != nil else { return }
        connection = nil
        for sink in turns.values { sink.finish() }
        turns = [:]
    }

    private func route(_ frame: ServerFrame) {
        if let id = frame.requestID, let sink = turns[id] {
            sink.yield(frame)
            if frame.isTurnTerminal {
                sink.finish()
                turns[id] = nil
            }
        }
    }

    /// Sends a request and returns its first direct answer.
    private func request(_ make: (String) -> ClientFrame) async -> ServerFrame? {
        if let problem = await connect() {
            return .error(GatewayErrorInfo(code: .internalError, message: problem))
        }
        return await connection?.send(make(nextRequest())).first
    }

    // MARK: - Turns

    /// Runs the message's turn and shows its answer; false when the channel stopped before the
    /// answer was shown (the update stays pending and resumes at the next start).
    private func turn(_ update: ChannelUpdate, text: String, files: [TelegramFile], recovering: Bool) async -> Bool {
        let turnID = TurnID("tg-\(update.id)")
        let key = turnID.rawValue
        let (stream, sink) = AsyncStream.makeStream(of: ServerFrame.self)
        turns[key] = sink
        defer { turns[key] = nil }
        if let problem = await connect() {
            await say("⚠️ " + problem)
            return true
        }
        let store = store
        let existing =
            (try? await store.channelValue(channel: Self.channel, key: "reply:\(update.id)"))
            .map { $0.split(separator: ",").compactMap { Int($0) } } ?? []
        let reply = TelegramReply(
            api: api, chat: chatID, interval: options.editInterval, existing: recovering ? existing : []
        ) { ids in
            try? await store.setChannelValue(
                channel: Self.channel, key: "reply:\(update.id)", value: ids.map(String.init).joined(separator: ","))
        }
        if recovering, let outcome = await recover(update, turnID: turnID, reply: reply) {
            if outcome == .render { return await render(stream, reply: reply, update: update) }
            return outcome == .done
        }
        var attachments: [ClientFrame.FileAttachment] = []
        for file in files {
            switch await download(file) {
            case .success(let attachment): attachments.append(attachment)
            case .failure(let problem):
                await say("⚠️ " + problem.message)
                return true
            }
        }
        // Where the history stands before the message: after a restart, more means it was committed.
        let count = await historyCount() ?? -1
        do {
            try await store.markUpdate(
                channel: Self.channel, id: update.id, state: "turn_started", turnID: key,
                values: ["started:\(update.id)": "\(session?.rawValue ?? ""):\(count)"])
        } catch {
            logger.error("telegram: cannot record a turn start", metadata: ["error": "\(error)"])
        }
        await reply.setWorking(true)
        let prompt = text.isEmpty ? "(sent \(files.count == 1 ? "a file" : "files") without a message)" : text
        let deadline = ContinuousClock.now + options.busyWait
        while true {
            let frame = ClientFrame.sendTurn(
                .init(requestID: key, sessionID: session, turnID: turnID, prompt: prompt, attachments: attachments))
            guard let connection else { return false }
            guard case .error(let info)? = await connection.send(frame).first else { break }
            if info.code == .busy || info.code == .queueFull, ContinuousClock.now < deadline, !stopped {
                // A turn started elsewhere (the terminal UI, another chat in shared mode) runs first;
                // or the user's turn queue is full: wait for room rather than drop the message.
                try? await Task.sleep(for: .milliseconds(500))
                await reply.tick()
                continue
            }
            if stopped { return false }
            try? await reply.fail(info.message)
            return true
        }
        return await render(stream, reply: reply, update: update)
    }

    enum Recovery { case render, done }

    /// After a restart: what became of a message whose turn had started. Nil: start it (again).
    private func recover(_ update: ChannelUpdate, turnID: TurnID, reply: TelegramReply) async -> Recovery? {
        if let answer = try? await store.channelValue(channel: Self.channel, key: "answer:\(update.id)") {
            // The turn completed; its answer may not have reached the chat.
            try? await reply.finish(answer)
            return .done
        }
        guard
            let saved = try? await store.channelValue(channel: Self.channel, key: "started:\(update.id)"),
            let colon = saved.lastIndex(of: ":"), let count = Int(saved[saved.index(after: colon)...]), count >= 0
        else { return nil }
        let savedSession = String(saved[..<colon])
        if let active = await activeTurn(), active == turnID {
            return .render  // the hub resumed it (it waited for an approval)
        }
        guard savedSession == session?.rawValue, let total = await historyCount() else { return nil }
        guard total > count else { return nil }  // the message never reached the history
        logger.info(
            "telegram: resuming a turn a restart interrupted",
            metadata: ["update": "\(update.id)", "turn": "\(turnID)"])
        if let last = await history(last: total - count).last, last.role == "assistant", last.toolNames.isEmpty,
            !last.text.trimmed.isEmpty
        {
            try? await reply.finish(last.text, note: "↻ delivered after the agent restarted")
            return .done
        }
        await reply.setWorking(true)
        if case .error(let info)? = await connection?.resumeTurn(requestID: turnID.rawValue, turnID: turnID) {
            try? await reply.fail(
                "the agent restarted while answering and could not continue (\(info.message)); "
                    + "send your message again")
            return .done
        }
        return .render
    }

    private func activeTurn() async -> TurnID? {
        guard case .healthStatus(let info)? = await request({ .healthCheck(requestID: $0) }) else { return nil }
        return info.activeTurn?.turnID
    }

    /// How many messages the session's history holds.
    private func historyCount() async -> Int? {
        guard case .history(_, _, let entries, _, let first)? = await request({ .getHistory(requestID: $0, limit: 1) })
        else { return nil }
        return first + entries.count
    }

    private func history(last count: Int) async -> [HistoryEntry] {
        guard
            case .history(_, _, let entries, _, _)? = await request({
                .getHistory(requestID: $0, limit: max(count, 1))
            })
        else { return [] }
        return entries
    }

    /// Shows the turn's frames until it ends; false when the channel stopped first.
    private func render(_ stream: AsyncStream<ServerFrame>, reply: TelegramReply, update: ChannelUpdate) async -> Bool {
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: options.editInterval)
                await reply.tick()
            }
        }
        defer { ticker.cancel() }
        let key = "tg-\(update.id)"
        for await frame in stream {
            switch frame {
            case .assistantDelta(_, let delta):
                await reply.append(delta)
            case .toolCall:
                await reply.setWorking(true)
            case .toolResult:
                await reply.setWorking(false)
            case .approvalRequest(_, let request):
                await showApproval(request)
            case .approvalResolved(_, let resolution):
                await showResolution(resolution)
            case .turnCompleted(_, let completion):
                try? await store.setChannelValue(
                    channel: Self.channel, key: "answer:\(update.id)", value: completion.message)
                ticker.cancel()
                do {
                    try await reply.finish(completion.message)
                } catch {
                    logger.error("telegram: an answer could not be delivered", metadata: ["error": "\(error)"])
                }
                return true
            case .turnCancelled:
                // A cancel this chat did not ask for is the guest stopping: the turn resumes later.
                guard cancelled.remove(key) != nil || !stopped else { return false }
                ticker.cancel()
                try? await reply.finish(await reply.text, note: "⏹ cancelled")
                return true
            case .error(let info):  // only this turn's errors are routed here
                ticker.cancel()
                try? await reply.fail(info.message)
                return true
            default:
                break
            }
        }
        return false
    }

    // MARK: - Approvals

    private func showApproval(_ request: ApprovalRequest) async {
        guard keyboards[request.approvalID] == nil else { return }
        let button = { (label: String, answer: String) -> JSONValue in
            ["text": .string(label), "callback_data": .string("ap:\(request.approvalID):\(answer)")]
        }
        let keyboard: JSONValue = [
            "inline_keyboard": [
                [button("✅ Allow once", "once"), button("This turn", "turn")],
                [button("This session", "session"), button("Always", "always")],
                [button("❌ Deny", "deny")],
            ]
        ]
        let text =
            "🔐 <b>Approval needed</b> (\(TelegramText.escape(request.risk.rawValue)) risk)\n"
            + "<code>\(TelegramText.escape(request.summary))</code>\n"
            + TelegramText.escape(request.reason)
            + (request.kindLabel.isEmpty
                ? "" : "\n“This session”/“Always” cover \(TelegramText.escape(request.kindLabel)).")
        do {
            let message = try await api.call(
                "sendMessage",
                [
                    "chat_id": .integer(Int(chatID)), "text": .string(text), "parse_mode": "HTML",
                    "reply_markup": keyboard,
                ])
            keyboards[request.approvalID] = message["message_id"]?.intValue
        } catch {
            logger.error("telegram: cannot show an approval", metadata: ["error": "\(error)"])
        }
    }

    private func showResolution(_ resolution: ApprovalResolution) async {
        guard let messageID = keyboards.removeValue(forKey: resolution.approvalID) else { return }
        let outcome =
            switch (resolution.reason, resolution.decision) {
            case (.answered, .allow): "✅ Allowed (\(resolution.scope.rawValue))"
            case (.answered, .deny): "❌ Denied"
            case (.timedOut, _): "⌛ Denied: nobody answered in time"
            case (.cancelled, _): "⏹ The turn was cancelled"
            }
        let by = resolution.answeredBy.map { " by \($0)" } ?? ""
        _ = try? await api.call(
            "editMessageText",
            [
                "chat_id": .integer(Int(chatID)), "message_id": .integer(messageID),
                "text": .string("🔐 Approval: \(outcome)\(by)"),
            ])
    }

    private func button(query: String, messageID: Int, data: String) async {
        let parts = data.split(separator: ":", maxSplits: 2).map(String.init)
        guard parts.count == 3, parts[0] == "ap" else {
            _ = try? await api.call("answerCallbackQuery", ["callback_query_id": .string(query)])
            return
        }
        let decision: ApprovalDecision = parts[2] == "deny" ? .deny : .allow
        let scope = ApprovalScope(rawValue: parts[2]) ?? .once
        let answer = await request {
            .approve(requestID: $0, approvalID: parts[1], decision: decision, scope: scope)
        }
        var notice = decision == .allow ? "Allowed (\(scope.rawValue))" : "Denied"
        if case .error(let info)? = answer { notice = String(info.message.prefix(190)) }
        _ = try? await api.call("answerCallbackQuery", ["callback_query_id": .string(query), "text": .string(notice)])
    }

    // MARK: - Files

    struct FileProblem: Error { let message: String }

    private func download(_ file: TelegramFile) async -> Result<ClientFrame.FileAttachment, FileProblem> {
        let limit = options.fileLimit
        if let size = file.size, size > limit {
            return .failure(FileProblem(message: "\(file.name) is larger than \(ByteCount.display(limit)); not saved"))
        }
        do {
            let info = try await api.call("getFile", ["file_id": .string(file.fileID)])
            guard let path = info["file_path"]?.stringValue else {
                return .failure(FileProblem(message: "Telegram gave no download path for \(file.name)"))
            }
            let bytes = try await api.download(path, limit: limit)
            return .success(.init(name: file.name, mimeType: file.mimeType, data: Data(bytes)))
        } catch {
            return .failure(FileProblem(message: "\(file.name) could not be downloaded: \(error)"))
        }
    }

    // MARK: - Commands

    private func command(_ name: String, _ argument: String) async {
        switch name {
        case "new":
            guard config.sessionMode == .perChat else {
                await say("This bot shares one conversation with your other apps (session_mode = \"shared\").")
                return
            }
            guard
                case .sessionCreated(_, let ref, _, _)? = await request({
                    .createSession(requestID: $0, displayName: nil, agentName: nil)
                })
            else {
                await say("⚠️ Could not start a new conversation.")
                return
            }
            await remember(ref.sessionID)
            await say("🆕 New conversation <code>\(TelegramText.escape(ref.sessionID.rawValue))</code>", html: true)
        case "sessions":
            guard
                case .sessionList(_, let sessions, _, let total)? = await request({
                    .listSessions(requestID: $0, includeArchived: false, limit: 10)
                })
            else {
                await say("⚠️ Could not list conversations.")
                return
            }
            let lines = sessions.map { info -> String in
                let mark = info.sessionID == session ? "▶︎ " : "• "
                return mark + "<code>\(TelegramText.escape(String(info.sessionID.rawValue.prefix(12))))</code> "
                    + TelegramText.escape(info.displayName ?? "untitled")
                    + " (\(TelegramText.escape(info.channelOrigin)))"
            }
            let more = (total ?? sessions.count) > sessions.count ? "\n… and \((total ?? 0) - sessions.count) more" : ""
            await say(
                lines.isEmpty
                    ? "No conversations yet." : lines.joined(separator: "\n") + more + "\n\n/switch &lt;id&gt;",
                html: true)
        case "switch":
            guard !argument.isEmpty else {
                await say("Usage: /switch <id> (see /sessions)")
                return
            }
            switch await request({ .switchSession(requestID: $0, session: argument) }) {
            case .sessionSwitched(_, let ref, _)?:
                await remember(ref.sessionID)
                await say("↪︎ Now in <code>\(TelegramText.escape(ref.sessionID.rawValue))</code>", html: true)
            case .error(let info)?: await say("⚠️ " + info.message)
            default: await say("⚠️ Could not switch.")
            }
        case "cancel":
            guard let active = await activeTurn() else {
                await say("Nothing is running.")
                return
            }
            cancelled.insert(active.rawValue)
            if case .error(let info)? = await request({
                .cancelActiveTurn(requestID: $0, sessionID: nil, turnID: nil)
            }) {
                cancelled.remove(active.rawValue)
                await say("⚠️ " + info.message)
            }
        case "status":
            guard case .healthStatus(let info)? = await request({ .healthCheck(requestID: $0) }) else {
                await say("⚠️ The agent did not answer.")
                return
            }
            let turn = info.activeTurn.map { "working on a turn (\($0.state.rawValue))" } ?? "idle"
            await say(
                "Conversation <code>\(TelegramText.escape(info.session?.sessionID.rawValue ?? "-"))</code>: "
                    + TelegramText.escape(turn), html: true)
        case "usage":
            guard case .usageReport(_, let report)? = await request({ .getUsage(requestID: $0, days: 1) }) else {
                await say("⚠️ Usage is not available.")
                return
            }
            await say("<pre>\(TelegramText.escape(report.text))</pre>", html: true)
        default:
            await say(
                "I'm your agent. Write to me as to a person; photos and documents are saved to /shared/inbox.\n\n"
                    + Self.commands.map { "/\($0.name) — \($0.description)" }.joined(separator: "\n"))
        }
    }

    private func remember(_ id: SessionID) async {
        session = id
        guard config.sessionMode == .perChat else { return }
        try? await store.setChannelValue(channel: Self.channel, key: "session:\(chatID)", value: id.rawValue)
    }

    /// A short message of the bot's own (not an answer).
    private func say(_ text: String, html: Bool = false) async {
        let parameters = JSONValue.compactObject([
            "chat_id": .integer(Int(chatID)), "text": .string(String(text.prefix(4000))),
            "parse_mode": html ? "HTML" : nil,
        ])
        for attempt in 1...5 {
            do {
                _ = try await api.call("sendMessage", parameters)
                return
            } catch {
                guard case .retryAfter(let seconds, _) = error, attempt < 5 else {
                    logger.error("telegram: cannot send a message", metadata: ["error": "\(error)"])
                    return
                }
                try? await Task.sleep(for: .seconds(max(seconds, 1)))
            }
        }
    }

    private func markDone(_ update: Int64) async {
        await Self.markDone(update, store: store, logger: logger)
    }

    /// Records an update as handled and forgets what its turn kept.
    static func markDone(_ update: Int64, store: any ChannelStore, logger: Logger) async {
        do {
            try await store.markUpdate(
                channel: channel, id: update, state: "done", turnID: nil,
                values: ["started:\(update)": nil, "answer:\(update)": nil, "reply:\(update)": nil])
        } catch {
            logger.error("telegram: cannot record an update as done", metadata: ["error": "\(error)"])
        }
    }
}
