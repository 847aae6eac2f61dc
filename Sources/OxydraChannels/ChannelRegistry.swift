import Logging
import OxydraCore

/// The chat channels a user's guest runs, built from the bootstrap envelope's `channels`.
public struct ChannelRegistry: ChannelFileSender {
    public let channels: [any Channel]
    /// Why a configured channel cannot run, for the guest's startup status.
    public let problems: [DegradedReason]

    public init(channels: [any Channel], problems: [DegradedReason] = []) {
        self.channels = channels
        self.problems = problems
    }

    /// `telegram`: the user's enabled `[channels.telegram]`; its token is read from `environment`.
    /// `store` keeps the channels' offsets and updates (the user's memory store).
    public static func make(
        telegram: TelegramConfig?, environment: [String: String], store: any MemoryStore, logger: Logger,
        options: TelegramChannel.Options = .init(), audit: @escaping @Sendable (String, [String: String]) -> Void
    ) -> ChannelRegistry {
        guard let telegram, telegram.enabled else { return ChannelRegistry(channels: []) }
        guard let channelStore = store as? any ChannelStore else {
            return ChannelRegistry(
                channels: [],
                problems: [
                    DegradedReason(
                        code: DegradedReason.channelUnavailable,
                        detail: "channels.telegram: the memory store cannot keep channel state; the bot is off")
                ])
        }
        let token = telegram.botTokenEnv.flatMap { environment[$0] }
        let channel = TelegramChannel(
            config: telegram, token: token, store: channelStore, logger: logger, options: options, audit: audit)
        var problems: [DegradedReason] = []
        if token?.trimmed.isEmpty ?? true {
            problems.append(
                DegradedReason(
                    code: DegradedReason.channelUnavailable,
                    detail: "channels.telegram: " + TelegramChannel.missingToken(telegram)))
        }
        return ChannelRegistry(channels: [channel], problems: problems)
    }

    /// Runs every channel until the task is cancelled.
    public func run(connector: any ChannelConnector) async {
        await withDiscardingTaskGroup { group in
            for channel in channels { group.addTask { await channel.run(connector: connector) } }
        }
    }

    /// Whether a channel can deliver files (`send_file` is offered only then: not for a bot that is
    /// off for want of its token).
    public var sendsFiles: Bool { channels.contains { ($0 as? TelegramChannel)?.api != nil } }

    public func sendFile(session: SessionID, name: String, mimeType: String, data: [UInt8], caption: String?) async
        -> Result<String, ChannelSendError>
    {
        for case let telegram as TelegramChannel in channels {
            return await telegram.sendFile(
                session: session, name: name, mimeType: mimeType, data: data, caption: caption)
        }
        return .failure(ChannelSendError("no chat channel is configured for this user"))
    }

    public func health() async -> [String: ChannelHealth] {
        var result: [String: ChannelHealth] = [:]
        for channel in channels { result[channel.id] = await channel.health() }
        return result
    }
}
