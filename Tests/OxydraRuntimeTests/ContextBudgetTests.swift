import OxydraConfig
import OxydraCore
import OxydraProviders
import OxydraRuntime
import OxydraTesting
import OxydraTools
import Testing

/// A long history: alternating questions, tool rounds and answers of ~400 characters each.
private func longHistory(rounds: Int) -> [Message] {
    var messages: [Message] = []
    let filler = String(repeating: "lorem ipsum dolor ", count: 22)
    for round in 0..<rounds {
        messages.append(.user("question \(round): \(filler)"))
        messages.append(
            .assistant(
                "looking", toolCalls: [ToolCall(id: "t\(round)", name: "file_list", arguments: ["path": "/shared"])]))
        messages.append(.toolResult(callID: "t\(round)", content: "result \(round): \(filler)"))
        messages.append(.assistant("answer \(round): \(filler)"))
    }
    return messages
}

@Suite("Context budget and summaries")
struct ContextBudgetTests {
    private func tinyModel(_ config: inout AgentConfig) {
        config.providers.registry["openai"]?.maxContextTokens = 5000
        config.runtime.contextBudget.safetyBufferTokens = 200
    }

    @Test func trimmingKeepsToolCallsWithTheirResultsAndTheLatestQuestion() async throws {
        let fixture = try await RuntimeFixture.start(configure: tinyModel, model: "tiny-local-model", skipCatalog: true)
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue(.text("ok"))
        _ = try await fixture.run("the latest question", history: longHistory(rounds: 20))
        let sent = fixture.sentMessages(0)
        #expect(sent.count < 40, "nothing was trimmed (\(sent.count) messages)")
        #expect(sent.first?["role"] == "system")
        #expect(sent.last == ["role": "user", "content": "the latest question"])
        let callIDs = Set(sent.flatMap { $0["tool_calls"]?.arrayValue ?? [] }.compactMap { $0["id"]?.stringValue })
        for message in sent where message["role"] == "tool" {
            #expect(callIDs.contains(message["tool_call_id"]?.stringValue ?? ""), "orphaned tool result \(message)")
        }
        for id in callIDs {
            #expect(
                sent.contains { $0["role"] == "tool" && $0["tool_call_id"]?.stringValue == id },
                "call \(id) lost its result")
        }
    }

    @Test func aTooLongLatestMessageIsAClearError() async throws {
        let fixture = try await RuntimeFixture.start(configure: tinyModel, model: "tiny-local-model", skipCatalog: true)
        defer { Teardown.run { await fixture.stop() } }
        await #expect {
            try await fixture.run(String(repeating: "x", count: 40_000))
        } throws: { error in
            "\(error)" == "turn budget exceeded: the latest message does not fit the 5000-token context window"
        }
        #expect(fixture.server.requests.isEmpty)
    }

    @Test func summariesRollOldMessagesWithEpochCompareAndSwap() async throws {
        let fixture = try await RuntimeFixture.start(
            configure: { config in
                config.providers.registry["openai"]?.maxContextTokens = 8000
                config.runtime.contextBudget.safetyBufferTokens = 200
                config.runtime.contextBudget.triggerRatio = 0.6
                config.runtime.summarization.targetRatio = 0.4
                config.runtime.summarization.minTurns = 4
            }, model: "tiny-local-model", skipCatalog: true)
        defer { Teardown.run { await fixture.stop() } }
        let history = longHistory(rounds: 12)
        _ = try await fixture.store.append(history, to: "s1")
        fixture.server.enqueue([.text("first"), .text("second")])
        let events = EventLog()
        let first = try await fixture.run("next question", history: history, events: events)
        let summary = try #require(try await fixture.store.summary(of: "s1"))
        #expect(summary.epoch == 1)
        #expect(summary.upperSequence > 8 && summary.upperSequence < history.count)
        // The cut falls between groups: a tool result never loses its call.
        #expect(history[summary.upperSequence].role != .tool)
        #expect(summary.text.hasPrefix("Recent condensed turns"))
        #expect(summary.text.count <= 4100)
        #expect(summary.text.contains("- [\(summary.upperSequence)] "))
        #expect(
            summary.text.contains("assistant: [tool calls: file_list]") || summary.text.contains("assistant: looking"))
        let sent = fixture.sentMessages(0)
        #expect(sent[1]["content"]?.stringValue?.hasPrefix("Rolling session summary:\nRecent condensed turns") == true)
        #expect(!sent.contains { $0["content"]?.stringValue?.hasPrefix("question 0:") == true })
        #expect(
            events.all.contains {
                if case .progress(let progress) = $0, progress.kind == .summarizing { true } else { false }
            })

        // The next turn builds on the stored summary instead of starting over.
        _ = try await fixture.run("and another", history: history + [.user("next question")] + first.messages)
        let later = try #require(try await fixture.store.summary(of: "s1"))
        #expect(later.epoch >= 1 && later.upperSequence >= summary.upperSequence)
    }

    @Test func aStaleSummaryWriteIsDiscarded() async throws {
        let store = EphemeralMemoryStore()
        _ = try await store.replaceSummary(
            of: "s", expectedEpoch: 0, with: SessionSummary(epoch: 1, upperSequence: 8, text: "newer"))
        #expect(
            try await store.replaceSummary(
                of: "s", expectedEpoch: 0, with: SessionSummary(epoch: 1, upperSequence: 4, text: "stale")) == false)
        #expect(try await store.summary(of: "s")?.text == "newer")
        await #expect(throws: MemoryError.self) {
            try await store.replaceSummary(
                of: "s", expectedEpoch: 1, with: SessionSummary(epoch: 2, upperSequence: 2, text: "backwards"))
        }
        await #expect(throws: MemoryError.self) {
            try await store.replaceSummary(
                of: "s", expectedEpoch: 1, with: SessionSummary(epoch: 1, upperSequence: 9, text: "same epoch"))
        }
        #expect(
            try await store.replaceSummary(
                of: "s", expectedEpoch: 1, with: SessionSummary(epoch: 2, upperSequence: 12, text: "next")))
    }

    @Test func estimatesLearnFromReportedUsage() {
        var estimator = TokenEstimator()
        let message = Message.user(String(repeating: "a", count: 4000))
        #expect(estimator.tokens(message) == 1004)
        estimator.learn(estimated: 1000, reported: 2000)
        #expect(estimator.calibration == 1.5)
        estimator.learn(estimated: 1000, reported: 100_000)
        #expect(estimator.calibration <= 3)
    }
}
