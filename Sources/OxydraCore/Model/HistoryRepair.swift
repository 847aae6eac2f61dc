/// Keeps a restored conversation valid for every provider. A guest killed while a tool ran (kill -9,
/// power loss) leaves an assistant message whose tool calls have no results; OpenAI and Anthropic
/// reject such a history on the next request. Restoring closes every unanswered call with a result
/// saying the guest stopped while it ran, right after the message that made the call — what a
/// graceful stop writes itself.
public enum HistoryRepair {
    public struct Repaired: Sendable, Hashable {
        public var messages: [Message]
        /// The results that were added, in order.
        public var added: [Message]
        /// True when every added result belongs at the very end of the history (the usual case: the
        /// guest died in the turn's last step), so they can simply be appended to the store.
        public var appendable: Bool
    }

    /// The result text of a call the guest never finished.
    public static func interruptedResult(for call: ToolCall) -> Message {
        .toolResult(
            callID: call.id,
            content: "tool \(call.name) did not finish: the guest stopped while it ran, so its effects are unknown; "
                + "check the current state before running it again")
    }

    /// `keepingOpen`: calls that wait for an approval stored with their turn; when they belong to the
    /// last message that made calls and nothing but results follows it, that message's calls stay
    /// open (the turn resumes them).
    public static func closingUnansweredCalls(_ history: [Message], keepingOpen: Set<String> = []) -> Repaired {
        var repaired: [Message] = []
        repaired.reserveCapacity(history.count)
        var added: [Message] = []
        var appendable = true
        var index = 0
        while index < history.count {
            let message = history[index]
            repaired.append(message)
            index += 1
            guard message.role == .assistant, !message.toolCalls.isEmpty else { continue }
            // The results that follow this message (providers want them directly after it).
            var answered: Set<String> = []
            while index < history.count, history[index].role == .tool {
                if let id = history[index].toolCallID { answered.insert(id) }
                repaired.append(history[index])
                index += 1
            }
            let missing = message.toolCalls.filter { !answered.contains($0.id) }
            guard !missing.isEmpty else { continue }
            if index == history.count, missing.contains(where: { keepingOpen.contains($0.id) }) { continue }
            if index < history.count { appendable = false }
            for call in missing {
                let result = interruptedResult(for: call)
                repaired.append(result)
                added.append(result)
            }
        }
        return Repaired(messages: repaired, added: added, appendable: appendable)
    }
}
