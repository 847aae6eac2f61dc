import OxydraCore
import Testing

@Suite("History repair")
struct HistoryRepairTests {
    let call = ToolCall(id: "a", name: "shell_exec", arguments: .object([:]))
    let other = ToolCall(id: "b", name: "file_read", arguments: .object([:]))

    @Test func aValidHistoryIsLeftAlone() {
        let history: [Message] = [
            .user("hi"), .assistant(nil, toolCalls: [call]), .toolResult(callID: "a", content: "ok"),
            .assistant("done"),
        ]
        let repaired = HistoryRepair.closingUnansweredCalls(history)
        #expect(repaired.messages == history && repaired.added.isEmpty && repaired.appendable)
    }

    @Test func unansweredCallsAtTheEndAreClosedAndAppendable() {
        let history: [Message] = [
            .user("hi"), .assistant(nil, toolCalls: [call, other]), .toolResult(callID: "b", content: "text"),
        ]
        let repaired = HistoryRepair.closingUnansweredCalls(history)
        #expect(repaired.appendable)
        #expect(repaired.added.map(\.toolCallID) == ["a"])
        #expect(repaired.messages.count == 4 && repaired.messages[3].toolCallID == "a")
        #expect(repaired.messages[3].content?.contains("the guest stopped while it ran") == true)
    }

    @Test func unansweredCallsInsideTheHistoryAreClosedInPlace() {
        let history: [Message] = [
            .user("hi"), .assistant(nil, toolCalls: [call]), .user("again"), .assistant("fine"),
        ]
        let repaired = HistoryRepair.closingUnansweredCalls(history)
        #expect(!repaired.appendable)
        #expect(repaired.messages.map(\.role) == [.user, .assistant, .tool, .user, .assistant])
        #expect(repaired.messages[2].toolCallID == "a")
    }
}
