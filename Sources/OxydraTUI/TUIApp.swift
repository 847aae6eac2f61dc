import Dispatch
import Logging
import OxydraClient
import OxydraCore

#if canImport(Glibc)
    import Glibc
#endif

/// The interactive terminal client: one event loop over keys, gateway frames, connection changes,
/// resizes and a tick; reconnects with jittered exponential backoff and resumes the same session.
public final class TUIApp: @unchecked Sendable {
    public struct Options: Sendable {
        public var endpoint: String
        public var user: String
        public var session: String?
        public var token: String?
        public var color: Bool
        /// The guest's endpoint marker; re-read before every reconnect, because a restarted guest
        /// listens on a new port.
        public var endpointFile: String?
        /// The guest's token file; re-read before every reconnect, because a restarted guest has a
        /// new token. Wins over `token` when readable.
        public var tokenFile: String?
        /// Where prompts are kept across runs (nil: only for this run).
        public var history: PromptHistory?

        public init(
            endpoint: String, user: String, session: String? = nil, token: String? = nil, color: Bool = true,
            endpointFile: String? = nil, tokenFile: String? = nil
        ) {
            self.endpointFile = endpointFile
            self.tokenFile = tokenFile
            self.endpoint = endpoint
            self.user = user
            self.session = session
            self.token = token
            self.color = color
        }
    }

    enum Event: Sendable {
        case keys([Key])
        case frame(ServerFrame, generation: Int)
        case closed(reason: String?, generation: Int)
        case reconnect
        case resize
        case tick
    }

    static let help = """
        Enter sends · Alt+Enter, Shift+Enter, Ctrl+J or a trailing \\ new line · PgUp/PgDn scroll
        ↑/↓ earlier prompts · Ctrl+R searches them · Ctrl+O shows/hides a tool call (Alt+↑/↓ picks one)
        Ctrl+C cancels the running turn or clears the prompt; twice quits · Ctrl+D/Ctrl+Q quit
        /new [name]     start a new session
        /sessions       the 20 most recent sessions · /sessions more: older ones
        /switch <id>    switch to a session (id or unique prefix)
        /clear          start a new session · /retry sends your last prompt again
        /copy           copy the last answer to the clipboard (OSC 52)
        /model [name]   this session's model and the choices; with a name (or provider/name), switch
        /usage [days]   tokens and dollars per day, model and session (default 7 days), and the budget
        y / n / a       answer an approval request: allow once, deny, allow that kind for the session
        /approvals      standing approvals · /revoke <id> removes one
        /attach <path>  send a file or image with your next message (or drop an image on the terminal)
        /detach         remove the attachments
        /rename <title> retitle this session · /archive [id], /unarchive <id> hide or show one
        /delete <id>    delete a session with its history and memory (asks again)
        A message typed while a turn runs is queued and sent when it ends (Esc removes it)
        /cancel         cancel the running turn
        /cancelall      cancel every running turn of yours
        /status         gateway health and startup status
        /help           this help · /quit exits
        """

    let options: Options
    let terminal = Terminal()
    var state: ChatState
    var renderer = Renderer()
    /// A `/delete` waiting for its confirmation.
    var pendingDelete: (target: String, at: ContinuousClock.Instant)?
    let events: AsyncStream<Event>
    let emit: AsyncStream<Event>.Continuation
    var client: GatewayClient?
    var generation = 0
    var attempts = 0
    var connectStarted = ContinuousClock.now
    var lastInterrupt: ContinuousClock.Instant?
    var quitting = false
    var sources: [any DispatchSourceProtocol] = []

    public init(_ options: Options) {
        self.options = options
        state = ChatState(user: options.user, color: options.color)
        if let history = options.history { state.editor = InputEditor(history: history.load()) }
        (events, emit) = AsyncStream.makeStream(of: Event.self)
    }

    /// Runs until the user quits; returns the exit code.
    public func run() async -> Int32 {
        guard terminal.isInteractive else {
            StandardStreams.write("oxydra-tui error: standard input and output must be a terminal\n", to: 2)
            return 1
        }
        do {
            try terminal.enter()
        } catch {
            StandardStreams.write("oxydra-tui error: \(error)\n", to: 2)
            return 1
        }
        defer { terminal.restore() }
        terminal.write("\u{1B}[?2004h")
        defer { terminal.write("\u{1B}[?2004l") }
        installSources()
        state.append(.system, "Oxydra — /help for commands. Connecting to \(options.endpoint)…")
        connect()
        redraw()
        for await event in events {
            if case .tick = event {
                handle(event)
                // Between events only the spinners and elapsed times change, all of them during a turn.
                if state.isStreaming { redraw() }
                continue
            }
            handle(event)
            if quitting { break }
            redraw()
        }
        client?.close()
        for source in sources { source.cancel() }
        return 0
    }

    private func installSources() {
        var decoder = KeyDecoder()
        let input = DispatchSource.makeReadSource(fileDescriptor: terminal.input, queue: .global())
        let emit = self.emit
        input.setEventHandler {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if count > 0 {
                let keys = decoder.decode(buffer[0..<count])
                if !keys.isEmpty { emit.yield(.keys(keys)) }
            } else if count == 0 {
                emit.yield(.keys([.control("d")]))
            }
        }
        input.resume()
        signal(SIGWINCH, SIG_IGN)
        let resize = DispatchSource.makeSignalSource(signal: SIGWINCH, queue: .global())
        resize.setEventHandler { emit.yield(.resize) }
        resize.resume()
        signal(SIGTERM, SIG_IGN)
        let terminate = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .global())
        terminate.setEventHandler { emit.yield(.keys([.control("q")])) }
        terminate.resume()
        let tick = DispatchSource.makeTimerSource(queue: .global())
        tick.schedule(deadline: .now() + .milliseconds(200), repeating: .milliseconds(200))
        tick.setEventHandler { emit.yield(.tick) }
        tick.resume()
        sources = [input, resize, terminate, tick]
    }

    private func redraw() {
        let size = terminal.size()
        terminal.write(renderer.draw(state, columns: size.columns, rows: size.rows))
    }

    // MARK: connection

    private func connect() {
        generation += 1
        let current = generation
        state.connection = .connecting
        connectStarted = .now
        var endpoint = options.endpoint
        if let file = options.endpointFile, let data = FileManager.default.contents(atPath: file) {
            let current = String(decoding: data, as: UTF8.self).trimmed
            if current.hasPrefix("ws://") || current.hasPrefix("wss://") { endpoint = current }
        }
        var token = options.token
        if let file = options.tokenFile, let current = try? GatewayAccess.readToken(at: file) { token = current }
        let client = GatewayClient(endpoint: endpoint, token: token)
        self.client = client
        client.send(
            .hello(
                ClientFrame.Hello(
                    requestID: FrameIDs.request(), userID: options.user,
                    sessionID: state.session?.rawValue ?? options.session, client: "tui")))
        let emit = self.emit
        Task {
            for await frame in client.frames { emit.yield(.frame(frame, generation: current)) }
            emit.yield(.closed(reason: client.failure?.message, generation: current))
        }
    }

    private func scheduleReconnect(reason: String) {
        attempts += 1
        let cap = min(250.0 * pow(2.0, Double(attempts - 1)), 5000.0)
        let delay = Double.random(in: (cap / 2)...cap)
        state.connection = .disconnected(reason: "reconnecting in \(String(format1(delay / 1000))) s")
        let emit = self.emit
        Task {
            try? await Task.sleep(for: .milliseconds(Int(delay)))
            emit.yield(.reconnect)
        }
    }

    private func format1(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }

    // MARK: events

    private func handle(_ event: Event) {
        switch event {
        case .keys(let keys):
            for key in keys { handle(key) }
        case .frame(let frame, let generation):
            guard generation == self.generation else { return }
            if case .helloAck = frame {
                if attempts > 0 { state.append(.system, "reconnected") }
                attempts = 0
            }
            if case .error(let info) = frame, info.code == .protocolError || info.code == .notFound,
                state.connection == .connecting
            {
                // The session to resume is gone: start fresh on the default session.
                state.append(.error, info.message)
                state.session = nil
                client?.close()
                return
            }
            state.apply(frame)
            if !state.isStreaming, state.connection == .connected, let queued = state.queuedPrompt {
                state.queuedPrompt = nil
                send(prompt: queued)
            }
            if state.needsHistory {
                state.needsHistory = false
                state.historyPending = state.session
                send(.getHistory(requestID: FrameIDs.request(), limit: 50))
            }
        case .closed(let reason, let generation):
            guard generation == self.generation, !quitting else { return }
            if state.isStreaming {
                state.append(.system, "connection lost during a turn; it keeps running in the guest")
            }
            state.activeTurn = nil
            state.turnStartedAt = nil
            state.progress = nil
            if let reason, attempts == 0 { state.append(.error, reason) }
            scheduleReconnect(reason: reason ?? "disconnected")
        case .reconnect:
            connect()
        case .resize:
            renderer.invalidate()
        case .tick:
            if state.connection == .connecting, ContinuousClock.now - connectStarted > .seconds(10) {
                client?.close()
            }
        }
    }

    /// With an approval waiting and nothing typed: y allows once, n denies, a allows the kind for the session.
    static let approvalKeys: [Character: (ApprovalDecision, ApprovalScope)] = [
        "y": (.allow, .once), "Y": (.allow, .once), "n": (.deny, .once), "N": (.deny, .once),
        "a": (.allow, .session), "A": (.allow, .session),
    ]

    private func handle(_ key: Key) {
        if state.search != nil {
            handleSearch(key)
            return
        }
        if let request = state.approvals.first, state.editor.isEmpty, case .character(let character) = key,
            let (decision, scope) = Self.approvalKeys[character]
        {
            send(
                .approve(
                    requestID: FrameIDs.request(), approvalID: request.approvalID, decision: decision, scope: scope))
            return
        }
        switch key {
        case .character(let character): state.editor.insert(String(character))
        case .paste(let text):
            // An image dropped on the terminal arrives as its pasted path: attach it.
            if let path = AttachmentFile.droppedPath(text),
                InputModality(mimeType: AttachmentFile.mimeType(of: path)) == .image
            {
                attach(path)
            } else {
                state.editor.insert(TextLayout.pasted(text))
            }
        case .newline: state.editor.insertNewline()
        case .tab: state.editor.insert("    ")
        case .enter: submit()
        case .backspace: state.editor.backspace()
        case .delete: state.editor.delete()
        case .left: state.editor.moveLeft()
        case .right: state.editor.moveRight()
        case .up: state.editor.up()
        case .down: state.editor.down()
        case .home: state.editor.home()
        case .end: state.editor.end()
        case .pageUp: state.scroll += 10
        case .pageDown: state.scroll = max(state.scroll - 10, 0)
        case .altUp: state.moveToolFocus(-1)
        case .altDown: state.moveToolFocus(1)
        case .control("o"): state.toggleFocusedTool()
        case .control("r"):
            var search = HistorySearch()
            search.update(in: state.editor)
            state.search = search
        case .escape:
            if let queued = state.queuedPrompt {
                state.queuedPrompt = nil
                state.append(.system, "removed the queued message: \(queued)")
            }
        case .control("a"): state.editor.home()
        case .control("e"): state.editor.end()
        case .control("u"): state.editor.clear()
        case .control("w"): state.editor.deleteWordBackward()
        case .control("l"): renderer.invalidate()
        case .control("d"):
            if state.editor.isEmpty { quitting = true } else { state.editor.delete() }
        case .control("q"): quitting = true
        case .control("c"): interrupt()
        case .control: break
        }
    }

    /// Keys while Ctrl+R's search is open.
    private func handleSearch(_ key: Key) {
        guard var search = state.search else { return }
        switch key {
        case .character(let character):
            search.query.append(character)
            search.update(in: state.editor)
        case .paste(let text):
            search.query += TextLayout.pasted(text).replacing("\n", with: " ")
            search.update(in: state.editor)
        case .backspace:
            if !search.query.isEmpty { search.query.removeLast() }
            search.update(in: state.editor)
        case .control("r"):
            search.older(in: state.editor)
        case .escape, .control("g"), .control("c"):
            state.search = nil
            return
        case .enter, .left, .right, .up, .down, .home, .end, .tab, .newline:
            if let match = search.match { state.editor.load(match) }
            state.search = nil
            return
        default:
            break
        }
        state.search = search
    }

    private func interrupt() {
        let now = ContinuousClock.now
        if let last = lastInterrupt, now - last < .seconds(2) {
            quitting = true
            return
        }
        lastInterrupt = now
        if state.isStreaming {
            send(.cancelActiveTurn(requestID: FrameIDs.request(), sessionID: state.session, turnID: state.activeTurn))
            state.progress = "cancelling…"
        } else if !state.editor.text.isEmpty {
            // First Ctrl+C on a half-typed prompt clears it, as shells do.
            state.editor.clear()
        } else {
            state.append(.system, "press Ctrl+C again to quit (or /quit); the agent keeps running")
        }
    }

    private func send(_ frame: ClientFrame) {
        guard state.connection == .connected, let client else {
            state.append(.error, "not connected; try again when the status bar shows ● connected")
            return
        }
        client.send(frame)
    }

    private func submit() {
        let text = state.editor.text
        guard !text.trimmed.isEmpty else { return }
        if text.hasSuffix("\\"), state.editor.row == state.editor.lines.count - 1,
            state.editor.column == state.editor.lines[state.editor.row].count
        {
            // A trailing backslash continues the prompt on a new line, as in a shell.
            state.editor.backspace()
            state.editor.insertNewline()
            return
        }
        if text.hasPrefix("/") {
            _ = state.editor.submit()
            command(text.trimmed)
            return
        }
        guard state.connection == .connected else {
            state.append(.error, "not connected; your prompt is kept — press Enter again once connected")
            return
        }
        guard !state.isStreaming else {
            guard state.queuedPrompt == nil else {
                state.append(.error, "one message is already queued; Esc removes it")
                return
            }
            let queued = state.editor.submit()
            options.history?.append(queued)
            state.queuedPrompt = queued
            state.append(.system, "queued (sent when this turn ends; Esc removes it): \(queued)")
            return
        }
        let prompt = state.editor.submit()
        options.history?.append(prompt)
        send(prompt: prompt)
    }

    /// Adds the file at `path` to the next message.
    private func attach(_ path: String) {
        do {
            let file = try AttachmentFile.load(path)
            let total = state.attachments.reduce(file.data.count) { $0 + $1.data.count }
            guard total <= GatewayProtocol.maxAttachmentBytes, state.attachments.count < GatewayProtocol.maxAttachments
            else {
                state.append(
                    .error,
                    "cannot attach \(file.name): a message takes at most \(GatewayProtocol.maxAttachments) files and "
                        + "\(GatewayProtocol.maxAttachmentBytes >> 20) MiB in all")
                return
            }
            state.attachments.append(file)
            state.append(
                .system,
                "attached \(file.name) (\(file.mimeType), \(ByteCount.display(file.data.count))): sent with your next "
                    + "message (/detach removes attachments)")
        } catch {
            state.append(.error, "\(error)")
        }
    }

    /// Sends `prompt` as a new turn on the current session.
    private func send(prompt: String) {
        let attachments = state.attachments
        state.attachments = []
        state.append(
            .user, prompt + (attachments.isEmpty ? "" : "\n📎 " + attachments.map(\.name).joined(separator: ", ")))
        state.scroll = 0
        let turn = FrameIDs.turn()
        state.activeTurn = turn
        state.turnStartedAt = .now
        state.progress = "sending…"
        send(
            .sendTurn(
                ClientFrame.SendTurn(
                    requestID: FrameIDs.request(), sessionID: state.session, turnID: turn, prompt: prompt,
                    attachments: attachments)))
    }

    private func command(_ line: String) {
        let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
        let argument = parts.count > 1 ? parts[1].trimmed : ""
        switch parts[0] {
        case "/help": state.append(.system, Self.help)
        case "/quit", "/exit": quitting = true
        case "/new":
            send(
                .createSession(
                    requestID: FrameIDs.request(), displayName: argument.isEmpty ? nil : argument, agentName: nil))
        case "/sessions":
            if argument == "more" {
                guard let cursor = state.sessionsCursor else {
                    state.append(.system, "no older sessions")
                    return
                }
                state.sessionsPaging = true
                send(.listSessions(requestID: FrameIDs.request(), includeArchived: false, limit: 20, cursor: cursor))
            } else {
                send(.listSessions(requestID: FrameIDs.request(), includeArchived: false, limit: 20))
            }
        case "/switch":
            guard !argument.isEmpty else {
                state.append(.error, "usage: /switch <session_id>")
                return
            }
            send(.switchSession(requestID: FrameIDs.request(), session: argument))
        case "/clear":
            send(.createSession(requestID: FrameIDs.request(), displayName: nil, agentName: nil))
        case "/retry":
            guard !state.isStreaming else {
                state.append(.error, "a turn is running; /retry once it ends")
                return
            }
            guard let last = state.entries.last(where: { $0.kind == .user })?.text else {
                state.append(.error, "nothing to retry in this session yet")
                return
            }
            send(prompt: last)
        case "/copy":
            guard let answer = state.entries.last(where: { $0.kind == .assistant })?.text, !answer.isEmpty else {
                state.append(.error, "no answer to copy yet")
                return
            }
            // OSC 52: the terminal (also over SSH) puts the text on the clipboard.
            terminal.write("\u{1B}]52;c;\(Data(answer.utf8).base64EncodedString())\u{07}")
            state.append(.system, "copied the last answer (\(answer.count) characters) to the clipboard")
        case "/rename":
            guard let session = state.session else { return }
            send(
                .renameSession(
                    requestID: FrameIDs.request(), session: session.rawValue,
                    displayName: argument.isEmpty ? nil : argument))
        case "/archive", "/unarchive":
            guard let target = argument.isEmpty ? state.session?.rawValue : argument else { return }
            guard parts[0] == "/unarchive" || target != state.session?.rawValue || !state.isStreaming else {
                state.append(.error, "a turn is running in this session; wait for it first")
                return
            }
            send(.archiveSession(requestID: FrameIDs.request(), session: target, archived: parts[0] == "/archive"))
        case "/delete":
            guard !argument.isEmpty else {
                state.append(.error, "usage: /delete <session_id>")
                return
            }
            if let session = state.session, session.rawValue.hasPrefix(argument) {
                state.append(.error, "this is the session you are on; /switch or /new first, then /delete it")
                return
            }
            if pendingDelete?.target == argument, let asked = pendingDelete?.at,
                ContinuousClock.now - asked < .seconds(15)
            {
                pendingDelete = nil
                send(.deleteSession(requestID: FrameIDs.request(), session: argument))
            } else {
                pendingDelete = (argument, ContinuousClock.now)
                state.append(
                    .system,
                    "/delete \(argument) removes that session's history and memory for good; repeat the command within "
                        + "15 s to confirm")
            }
        case "/cancel":
            guard state.isStreaming else {
                state.append(.system, "no active turn to cancel")
                return
            }
            send(.cancelActiveTurn(requestID: FrameIDs.request(), sessionID: state.session, turnID: state.activeTurn))
        case "/cancelall": send(.cancelAllActiveTurns(requestID: FrameIDs.request()))
        case "/approvals":
            send(.listGrants(requestID: FrameIDs.request()))
        case "/revoke":
            guard !argument.isEmpty else {
                state.append(.system, "usage: /revoke <grant id> (/approvals lists them)")
                return
            }
            send(.revokeGrant(requestID: FrameIDs.request(), grantID: argument))
        case "/usage":
            let days = Int(argument.filter(\.isNumber)) ?? 7
            send(.getUsage(requestID: FrameIDs.request(), days: min(max(days, 1), 366)))
        case "/model":
            if argument.isEmpty {
                send(.listModels(requestID: FrameIDs.request()))
            } else {
                send(.setModel(requestID: FrameIDs.request(), provider: nil, model: argument))
            }
        case "/attach":
            guard !argument.isEmpty else {
                state.append(.error, "usage: /attach <path> (a file or image; it lands in /shared/inbox/)")
                return
            }
            attach(AttachmentFile.droppedPath(argument) ?? argument)
        case "/detach":
            state.append(
                .system,
                state.attachments.isEmpty ? "nothing attached" : "removed \(state.attachments.count) attachment(s)")
            state.attachments = []
        case "/status": send(.healthCheck(requestID: FrameIDs.request()))
        default: state.append(.error, "unknown command \(parts[0]); /help lists the commands")
        }
    }
}
