import OxydraCore

/// Token estimates: UTF-8 bytes / 4 plus a per-message overhead, scaled by a per-session factor
/// learned from the prompt tokens the provider reports (so a model whose tokenizer counts denser
/// or sparser text is estimated in its own terms).
public struct TokenEstimator: Sendable, Hashable {
    /// Reported ÷ estimated prompt tokens, clamped to [0.5, 3].
    public var calibration: Double = 1

    public init(calibration: Double = 1) { self.calibration = calibration }

    public func tokens(_ message: Message) -> Int {
        var bytes = message.content?.utf8.count ?? 0
        for call in message.toolCalls { bytes += call.name.utf8.count + call.arguments.text.utf8.count + 16 }
        bytes += message.attachments.reduce(0) { $0 + min($1.data.count, 4 * 1024) }
        return Int((Double(bytes) / 4 * calibration).rounded(.up)) + 4
    }

    public func tokens(_ messages: some Sequence<Message>) -> Int { messages.reduce(0) { $0 + tokens($1) } }

    public func tokens(_ tools: [ToolDeclaration]) -> Int {
        tokens(toolBytes: tools.reduce(0) { $0 + $1.estimatedBytes })
    }

    /// Tools whose ``ToolDeclaration/estimatedBytes`` sum to `toolBytes`.
    public func tokens(toolBytes: Int) -> Int { Int((Double(toolBytes) / 4 * calibration).rounded(.up)) }

    /// Learns from one provider call: `estimated` tokens were sent, the provider counted `reported`.
    public mutating func learn(estimated: Int, reported: Int) {
        guard estimated > 64, reported > 0 else { return }
        let ratio = min(3, max(0.5, Double(reported) / Double(estimated) * calibration))
        calibration = calibration * 0.5 + ratio * 0.5
    }
}

/// Chooses what history fits the context window.
enum ContextBudget {
    /// Index ranges of `messages` that must stay together: an assistant message with tool calls and
    /// the tool results that follow it; every other message alone.
    static func groups(_ messages: [Message]) -> [Range<Int>] {
        var groups: [Range<Int>] = []
        var index = 0
        while index < messages.count {
            var end = index + 1
            if messages[index].role == .assistant && !messages[index].toolCalls.isEmpty {
                while end < messages.count && messages[end].role == .tool { end += 1 }
            }
            groups.append(index..<end)
            index = end
        }
        return groups
    }

    /// The newest whole groups of `history` that fit in `budget` tokens, oldest first, and their
    /// tokens. The group holding the latest user message is always kept; nil when even that does
    /// not fit. `tokens` is the estimate of the whole `history`.
    static func select(_ history: [Message], tokens: Int, budget: Int, estimator: TokenEstimator) -> (
        [Message], Int
    )? {
        // Everything fits (the usual case): the history itself, without a pass group by group.
        if tokens <= budget { return (history, tokens) }
        let groups = groups(history)
        let lastUser = history.lastIndex { $0.role == .user } ?? history.count - 1
        var chosen: [Range<Int>] = []
        var used = 0
        for group in groups.reversed() {
            let cost = estimator.tokens(history[group])
            let mandatory = group.contains(lastUser) || group.lowerBound > lastUser
            if used + cost > budget {
                if mandatory { return nil }
                break
            }
            used += cost
            chosen.append(group)
        }
        if chosen.count == groups.count { return (history, used) }
        return (chosen.reversed().flatMap { Array(history[$0]) }, used)
    }
}

/// Extractive rolling summaries (no extra model call): the oldest messages are condensed into a
/// list of one-line entries, written with an epoch compare-and-swap.
enum RollingSummary {
    static let entryLimit = 180
    static let textLimit = 4000

    /// The previous summary's entries followed by one line per newly condensed message; when the
    /// whole exceeds 4000 characters the oldest entries are dropped (the newest matter most).
    static func text(previous: String?, messages: ArraySlice<Message>, firstSequence: Int) -> String {
        var entries = (previous ?? "").split(separator: "\n").map(String.init).filter { $0.hasPrefix("- [") }
        var sequence = firstSequence
        for message in messages {
            let body: String
            if let content = message.content?.split(whereSeparator: \.isWhitespace).joined(separator: " "),
                !content.isEmpty
            {
                body = content.count > entryLimit ? String(content.prefix(entryLimit)) + "..." : content
            } else if !message.toolCalls.isEmpty {
                body = "[tool calls: \(message.toolCalls.map(\.name).joined(separator: ", "))]"
            } else {
                body = "[no text]"
            }
            entries.append("- [\(sequence)] \(message.role.rawValue): \(body)")
            sequence += 1
        }
        var header = "Recent condensed turns:"
        var length = entries.reduce(header.count) { $0 + $1.count + 1 }
        var dropped = 0
        while length > textLimit && entries.count > 1 {
            length -= entries.removeFirst().count + 1
            dropped += 1
        }
        if dropped > 0 { header = "Recent condensed turns (\(dropped) older entries omitted):" }
        return ([header] + entries).joined(separator: "\n")
    }
}
