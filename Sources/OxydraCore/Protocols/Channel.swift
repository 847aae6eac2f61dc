/// A message arriving from a user through a channel (terminal UI, Telegram, web page).
public struct InboundMessage: Sendable, Hashable {
    public var channel: String
    /// The conversation within the channel (a chat id, a chat id plus thread).
    public var conversation: String
    public var sender: String
    public var text: String
    public var attachments: [Attachment]

    public init(channel: String, conversation: String, sender: String, text: String, attachments: [Attachment] = []) {
        self.channel = channel
        self.conversation = conversation
        self.sender = sender
        self.text = text
        self.attachments = attachments
    }
}

/// A message going out to a user through a channel.
public struct OutboundMessage: Sendable, Hashable {
    public var conversation: String
    public var text: String

    public init(conversation: String, text: String) {
        self.conversation = conversation
        self.text = text
    }
}

/// Whether a channel is working, and why not.
public struct ChannelHealth: Sendable, Hashable {
    public var healthy: Bool
    public var message: String?

    public init(healthy: Bool, message: String? = nil) {
        self.healthy = healthy
        self.message = message
    }
}

/// A way for users to reach their agent besides the gateway's own WebSocket clients.
public protocol Channel: Sendable {
    var id: String { get }
    /// Runs until cancelled, delivering each inbound message to `inbound`.
    func start(inbound: @escaping @Sendable (InboundMessage) async -> Void) async throws
    func send(_ message: OutboundMessage) async throws
    func health() async -> ChannelHealth
}
