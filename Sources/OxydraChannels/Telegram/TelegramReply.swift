import OxydraCore

/// One streamed answer in a chat: a message sent at the first text, edited as more arrives (at most
/// one edit per `interval`, later when Telegram asks to wait), split into several messages past
/// 4096 characters, and rendered once complete as Telegram HTML (plain text when Telegram refuses
/// the markup). A typing indicator shows while the agent works without visible text.
actor TelegramReply {
    let api: TelegramBotAPI
    let chat: Int64
    let interval: Duration
    private(set) var text = ""
    /// The messages of this answer and the text each shows now.
    private var shown: [(id: Int, text: String)] = []
    private var nextEdit = ContinuousClock.now
    private var lastTyping: ContinuousClock.Instant?
    /// Tools are running: keep the typing indicator on.
    var working = true
    /// Calls made for this answer (the benchmark counts edits).
    private(set) var edits = 0
    private(set) var sends = 0

    /// Told the answer's message ids whenever one is added (kept in the store, so an answer a
    /// restart interrupted continues in the same message).
    let remember: @Sendable ([Int]) async -> Void

    /// `existing`: messages of this answer sent before a restart (they are edited, not sent again).
    init(
        api: TelegramBotAPI, chat: Int64, interval: Duration, existing: [Int] = [],
        remember: @escaping @Sendable ([Int]) async -> Void = { _ in }
    ) {
        self.api = api
        self.chat = chat
        self.interval = interval
        self.remember = remember
        shown = existing.map { ($0, "") }
    }

    func setWorking(_ value: Bool) async {
        working = value
        if value { await typing() }
    }

    /// New text from the model: the first text is sent at once, later text waits for ``tick()``.
    func append(_ delta: String) async {
        text += delta
        working = false
        if shown.isEmpty { await stream() }
    }

    /// Called every `interval` while the turn runs.
    func tick() async {
        if working || shown.isEmpty { await typing() }
        await stream()
    }

    /// Shows the text so far as plain text (Markdown is rendered when the answer is complete).
    private func stream() async {
        guard !text.isEmpty, ContinuousClock.now >= nextEdit else { return }
        let parts = TelegramText.split(text, limit: Self.partLimit)
        for (index, part) in parts.enumerated() {
            if index < shown.count {
                guard shown[index].text != part else { continue }
                guard ContinuousClock.now >= nextEdit else { return }
                do {
                    try await edit(index, part, html: false)
                } catch {
                    return
                }
            } else {
                do {
                    try await send(part, html: false)
                } catch {
                    return
                }
            }
        }
    }

    /// The most of an answer one message holds: Telegram's limit, less room for a closing note.
    static let partLimit = TelegramText.limit - 256

    /// The complete answer: every part rendered as HTML (as written where Telegram refuses the
    /// markup), delivered even when Telegram asks to wait. `note` (plain text) closes the last part.
    func finish(_ answer: String, note: String? = nil) async throws(TelegramError) {
        var markdown = answer.trimmed.isEmpty ? text : answer
        if markdown.trimmed.isEmpty && note == nil { markdown = "(no answer text)" }
        var parts = markdown.trimmed.isEmpty ? [] : TelegramText.split(markdown.trimmed, limit: Self.partLimit)
        var rendered = parts.map(TelegramText.html)
        if let note {
            if rendered.isEmpty {
                rendered = [TelegramText.escape(note)]
                parts = [note]
            } else {
                rendered[rendered.count - 1] += "\n\n" + TelegramText.escape(note)
                parts[parts.count - 1] += "\n\n" + note
            }
        }
        for index in rendered.indices {
            try await deliver(index, html: rendered[index], plain: parts[index])
        }
        // The final split can be shorter than the streamed one (the answer's own text differs).
        while shown.count > rendered.count {
            let extra = shown.removeLast()
            _ = try? await api.call(
                "deleteMessage", ["chat_id": .integer(Int(chat)), "message_id": .integer(extra.id)])
        }
    }

    /// A failed turn: what there is of the answer, then why it failed.
    func fail(_ message: String) async throws(TelegramError) {
        try await finish(text, note: "⚠️ " + message)
    }

    private func deliver(_ index: Int, html: String, plain: String) async throws(TelegramError) {
        var attempts = 0
        var useHTML = true
        while true {
            attempts += 1
            do {
                if index < shown.count {
                    try await edit(index, useHTML ? html : plain, html: useHTML)
                } else {
                    try await send(useHTML ? html : plain, html: useHTML)
                }
                return
            } catch {
                switch error {
                case .refused(_, let description) where description.contains("not modified"):
                    return
                case .refused(_, let description) where description.contains("message to edit not found"):
                    // Deleted meanwhile: the rest of the answer goes into new messages.
                    shown.removeSubrange(index...)
                case .refused(let status, _) where status == 400 && useHTML:
                    useHTML = false
                case .retryAfter(let seconds, _) where attempts < 8:
                    try? await Task.sleep(for: .seconds(max(seconds, 1)))
                case .unavailable where attempts < 8:
                    try? await Task.sleep(for: .seconds(min(attempts, 5)))
                default:
                    throw error
                }
            }
        }
    }

    private func send(_ text: String, html: Bool) async throws(TelegramError) {
        let parameters = JSONValue.compactObject([
            "chat_id": .integer(Int(chat)), "text": .string(text), "parse_mode": html ? "HTML" : nil,
        ])
        do {
            let message = try await api.call("sendMessage", parameters)
            sends += 1
            shown.append((message["message_id"]?.intValue ?? 0, text))
            await remember(shown.map(\.id))
        } catch {
            if case .retryAfter(let seconds, _) = error { nextEdit = .now + .seconds(seconds) }
            throw error
        }
    }

    private func edit(_ index: Int, _ text: String, html: Bool) async throws(TelegramError) {
        let parameters = JSONValue.compactObject([
            "chat_id": .integer(Int(chat)), "message_id": .integer(shown[index].id), "text": .string(text),
            "parse_mode": html ? "HTML" : nil,
        ])
        do {
            _ = try await api.call("editMessageText", parameters)
            edits += 1
            shown[index].text = text
            nextEdit = .now + interval
        } catch {
            if case .retryAfter(let seconds, _) = error { nextEdit = .now + .seconds(seconds) }
            throw error
        }
    }

    private func typing() async {
        let now = ContinuousClock.now
        if let lastTyping, now - lastTyping < .seconds(4) { return }
        lastTyping = now
        _ = try? await api.call("sendChatAction", ["chat_id": .integer(Int(chat)), "action": "typing"])
    }
}
