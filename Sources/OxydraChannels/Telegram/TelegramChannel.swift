import Logging
import OxydraCore

/// The Telegram bot of one user, inside the user's guest.
///
/// Long-polls `getUpdates`; each batch of updates is stored with the next offset in one transaction
/// of the user's store before anything acts on it, so a crash neither drops an update (Telegram
/// delivers it again: the offset was not committed) nor answers one twice (it is in the store and
/// its progress is recorded). Messages from senders outside `allowed_user_ids` start nothing: they
/// get one refusal per sender per day and an audit record. Each chat has a worker that talks to the
/// session hub like any client (see ``TelegramChat``).
public actor TelegramChannel: Channel {
    public nonisolated let id = "telegram"
    let config: TelegramConfig
    let api: TelegramBotAPI?
    let store: any ChannelStore
    let logger: Logger
    let audit: @Sendable (String, [String: String]) -> Void
    let options: Options
    private var state: ChannelHealth
    private var chats: [Int64: TelegramChat] = [:]
    private var stopping = false

    /// Timings and limits (tests shorten them).
    public struct Options: Sendable {
        /// The least time between two edits of a streamed answer.
        public var editInterval: Duration = .seconds(1)
        /// The largest file a user may send (Telegram's bots download at most 20 MB).
        public var fileLimit = 20 << 20
        /// How long a message waits for a session busy with a turn started elsewhere.
        public var busyWait: Duration = .seconds(600)

        public init() {}
    }

    /// `token`: the value of `bot_token_env`, or nil when the variable is not set (the channel is
    /// then off, and ``health()`` says why).
    public init(
        config: TelegramConfig, token: String?, store: any ChannelStore, logger: Logger,
        options: Options = Options(), audit: @escaping @Sendable (String, [String: String]) -> Void
    ) {
        self.config = config
        self.store = store
        self.logger = logger
        self.audit = audit
        self.options = options
        if let token, !token.trimmed.isEmpty {
            api = TelegramBotAPI(baseURL: config.apiBaseURL, token: token.trimmed)
            state = ChannelHealth(state: "starting")
        } else {
            api = nil
            state = ChannelHealth(state: "off", lastError: Self.missingToken(config))
        }
    }

    /// Why a bot without its token is off, and how to fix it.
    public static func missingToken(_ config: TelegramConfig) -> String {
        let variable = config.botTokenEnv ?? "(bot_token_env is not set)"
        return "the bot token variable \(variable) is not set in the guest's environment; export it where the "
            + "runner starts (the token from @BotFather), then `runner restart`"
    }

    public func health() -> ChannelHealth { state }

    public func run(connector: any ChannelConnector) async {
        guard let api else {
            logger.error("telegram channel off", metadata: ["reason": "\(state.lastError ?? "")"])
            return
        }
        logger.info("telegram channel starting", metadata: ["session_mode": "\(config.sessionMode.rawValue)"])
        await withTaskCancellationHandler {
            await registerCommands(api)
            do {
                for update in try await store.pendingUpdates(id) {
                    await dispatch(update, api: api, connector: connector, recovering: true)
                }
            } catch {
                fail("cannot read the updates stored before the restart: \(error)")
            }
            await poll(api, connector: connector)
            await stop()
        } onCancel: {
            Task { await self.stop() }
        }
    }

    /// Stops the workers without marking their turns done: a turn the guest stops resumes at the
    /// next start.
    private func stop() async {
        guard !stopping else { return }
        stopping = true
        for chat in chats.values { await chat.stop() }
        chats = [:]
        if state.state != "off" { state.state = "stopped" }
    }

    private func poll(_ api: TelegramBotAPI, connector: any ChannelConnector) async {
        var offset: Int64?
        do {
            offset = try await store.channelOffset(id)
        } catch {
            fail("cannot read the polling offset: \(error)")
        }
        var backoff = 1
        while !Task.isCancelled && !stopping {
            let parameters = JSONValue.compactObject([
                "timeout": .integer(config.pollingTimeoutSecs), "allowed_updates": ["message", "callback_query"],
                "offset": offset.map { .integer(Int($0)) },
            ])
            let updates: [ChannelUpdate]
            do throws(TelegramError) {
                let result = try await api.call(
                    "getUpdates", parameters, timeout: .seconds(config.pollingTimeoutSecs + 15))
                guard case .array(let items) = result else {
                    throw TelegramError.malformed("getUpdates did not answer a list")
                }
                updates = items.compactMap { item in
                    item["update_id"]?.intValue.map { ChannelUpdate(id: Int64($0), payload: item.compactText) }
                }
                state.state = "polling"
                state.lastUpdateAt = Timestamp.rfc3339(Date())
                backoff = 1
            } catch {
                if Task.isCancelled || stopping { return }
                let wait: Int
                switch error {
                case .conflict: wait = 15
                case .retryAfter(let seconds, _): wait = max(seconds, 1)
                default:
                    wait = backoff
                    backoff = min(backoff * 2, 30)
                }
                fail(error.description)
                try? await Task.sleep(for: .seconds(wait))
                continue
            }
            guard let last = updates.map(\.id).max() else { continue }
            do {
                // Stored with the next offset in one transaction: after this, Telegram may forget them.
                try await store.recordUpdates(channel: id, updates: updates, nextOffset: last + 1)
            } catch {
                fail("cannot store updates (they will be fetched again): \(error)")
                try? await Task.sleep(for: .seconds(backoff))
                continue
            }
            offset = last + 1
            for update in updates.sorted(by: { $0.id < $1.id }) {
                await dispatch(update, api: api, connector: connector, recovering: false)
            }
        }
    }

    private func fail(_ message: String) {
        state.state = "failing"
        state.lastError = message
        logger.error("telegram channel problem", metadata: ["error": "\(message)"])
    }

    private func dispatch(
        _ update: ChannelUpdate, api: TelegramBotAPI, connector: any ChannelConnector, recovering: Bool
    )
        async
    {
        let inbound = TelegramInbound(update)
        if case .other = inbound.kind {
            await markDone(update.id)
            return
        }
        guard config.allowedUserIDs.contains(Int(inbound.from)) else {
            await refuse(inbound, api: api)
            await markDone(update.id)
            return
        }
        let chat: TelegramChat
        if let existing = chats[inbound.chat] {
            chat = existing
        } else {
            chat = TelegramChat(
                chatID: inbound.chat, api: api, store: store, connector: connector, config: config, options: options,
                logger: logger)
            chats[inbound.chat] = chat
            await chat.start()
        }
        await chat.receive(update, inbound, recovering: recovering)
    }

    func markDone(_ update: Int64) async { await TelegramChat.markDone(update, store: store, logger: logger) }

    /// A stranger: no turn, one polite answer per sender per day, an audit record every time.
    private func refuse(_ inbound: TelegramInbound, api: TelegramBotAPI) async {
        let day = String(Timestamp.rfc3339(Date()).prefix(10))
        let key = "refused:\(inbound.from)"
        let kind: String
        switch inbound.kind {
        case .button: kind = "button"
        default: kind = "message"
        }
        audit(
            "channel_refused",
            ["channel": id, "telegram_user": "\(inbound.from)", "chat": "\(inbound.chat)", "kind": kind])
        logger.warning(
            "telegram: refused a sender outside allowed_user_ids",
            metadata: ["telegram_user": "\(inbound.from)", "chat": "\(inbound.chat)"])
        if case .button(let query, _, _) = inbound.kind {
            _ = try? await api.call(
                "answerCallbackQuery", ["callback_query_id": .string(query), "text": "Not allowed"])
            return
        }
        guard (try? await store.channelValue(channel: id, key: key)) != day else { return }
        try? await store.setChannelValue(channel: id, key: key, value: day)
        _ = try? await api.call(
            "sendMessage",
            [
                "chat_id": .integer(Int(inbound.chat)),
                "text": .string(
                    "Sorry, this is a private assistant and it only answers its owner. (Your Telegram user id is "
                        + "\(inbound.from); the owner can add it to channels.telegram.allowed_user_ids.)"),
            ])
    }

    /// `send_file`: the document goes to every chat talking in `session`.
    public func sendFile(session: SessionID, name: String, mimeType: String, data: [UInt8], caption: String?) async
        -> Result<String, ChannelSendError>
    {
        guard api != nil else { return .failure(ChannelSendError("the Telegram bot is off: \(state.lastError ?? "")")) }
        var targets: [(Int64, TelegramChat)] = []
        for (id, chat) in chats where await chat.currentSession == session { targets.append((id, chat)) }
        guard !targets.isEmpty else {
            return .failure(
                ChannelSendError(
                    "no Telegram chat talks in this session; send_file delivers to the chat a conversation comes from"))
        }
        for (id, chat) in targets {
            do {
                try await chat.sendDocument(name: name, mimeType: mimeType, data: data, caption: caption)
            } catch {
                return .failure(ChannelSendError("Telegram did not take the file: \(error)"))
            }
            logger.info("telegram: file sent", metadata: ["chat": "\(id)", "bytes": "\(data.count)"])
        }
        return .success("sent \(name) (\(ByteCount.display(data.count))) to the Telegram chat")
    }

    private func registerCommands(_ api: TelegramBotAPI) async {
        let commands: JSONValue = .array(
            TelegramChat.commands.map { ["command": .string($0.name), "description": .string($0.description)] })
        do {
            _ = try await api.call("setMyCommands", ["commands": commands])
        } catch {
            fail("setMyCommands failed: \(error)")
        }
    }
}
