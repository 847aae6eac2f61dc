import OxydraConfig
import OxydraCore
import OxydraProviders
import OxydraTesting
import OxydraTools
import Testing

@testable import OxydraRuntime

@Suite("Agent runtime against the scripted model server")
struct AgentRuntimeTests {
    @Test func plainAnswerStreamsAndIsPriced() async throws {
        let fixture = try await RuntimeFixture.start()
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue(
            .text(
                "Hello Alice, how can I help?",
                usage: Usage(promptTokens: 1000, completionTokens: 500, totalTokens: 1500)))
        let events = EventLog()
        let result = try await fixture.run("hi", events: events)
        #expect(result.answer.content == "Hello Alice, how can I help?")
        #expect(events.text == "Hello Alice, how can I help?")
        #expect(result.providerCalls == 1)
        #expect(result.usage.totalTokens == 1500)
        // gpt-4o-mini: $0.15 / $0.60 per million tokens.
        #expect(abs((result.cost ?? 0) - 0.00045) < 1e-12)
        let stored = try await fixture.store.restore("s1").map(\.message)
        #expect(stored == [.user("hi"), result.answer])
        let sent = fixture.sentMessages(0)
        #expect(sent.first?["role"] == "system")
        #expect(sent.last == ["role": "user", "content": "hi"])
    }

    @Test func deltasThatArriveTogetherAreForwardedTogetherAndNoneWaits() async throws {
        let fixture = try await RuntimeFixture.start()
        defer { Teardown.run { await fixture.stop() } }
        // The whole stream in one HTTP chunk (one write): its eight deltas are read at once.
        var together = ScriptedReply.text("one two three four five six seven eight")
        together.fragmentBytes = 1 << 20
        // One word every 30 ms: each is forwarded as soon as it arrives, never held for the next.
        var apart = ScriptedReply.text("alpha beta gamma delta")
        apart.chunkDelay = .milliseconds(30)
        fixture.server.enqueue([together, apart])

        let first = EventLog()
        _ = try await fixture.run("hi", session: "t1", events: first)
        let merged = first.all.compactMap { if case .textDelta(let text) = $0 { text } else { nil } }
        #expect(first.text == "one two three four five six seven eight")
        #expect(merged.count < 8, "\(merged)")

        let second = EventLog()
        _ = try await fixture.run("hi", session: "t2", events: second)
        let separate = second.all.compactMap { if case .textDelta(let text) = $0 { text } else { nil } }
        #expect(separate == ["alpha ", "beta ", "gamma ", "delta"])
    }

    @Test func toolRoundTrip() async throws {
        let fixture = try await RuntimeFixture.start()
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue([
            .toolCalls([call("c1", "file_read", #"{"path":"/shared/facts.txt"}"#)], text: "Checking."),
            .text("It says 42."),
        ])
        let events = EventLog()
        let result = try await fixture.run("what does facts.txt say?", events: events)
        #expect(result.answer.content == "It says 42.")
        #expect(result.messages.map(\.role) == [.assistant, .tool, .assistant])
        #expect(result.messages[1] == .toolResult(callID: "c1", content: "the answer is 42\n"))
        let second = fixture.sentMessages(1)
        #expect(second.suffix(2).first?["tool_calls"]?.arrayValue?.first?["id"] == "c1")
        #expect(second.last == ["role": "tool", "tool_call_id": "c1", "content": "the answer is 42\n"])
        #expect(
            events.all.contains(
                .toolStarted(
                    callID: "c1", name: "file_read", summary: "file_read(path=/shared/facts.txt)",
                    arguments: #"{"path":"/shared/facts.txt"}"#, approval: "not_asked", approvedBy: nil)))
        #expect(
            events.all.contains {
                if case .toolFinished(let id, _, _, let isError, let summary, let output) = $0 {
                    id == "c1" && !isError && summary == "the answer is 42" && output == "the answer is 42\n"
                } else {
                    false
                }
            })
        #expect(try await fixture.store.restore("s1").count == 4)
        #expect(result.contextWindow != nil && (result.contextTokens ?? 0) > 0)
    }

    /// Attachment bytes are not stored; after a restart an earlier image is only its note, never an
    /// empty image part a provider would reject.
    @Test func imagesWithoutTheirBytesAreNotSentAgain() async throws {
        let fixture = try await RuntimeFixture.start()
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue(.text("ok"))
        let earlier = Message.user(
            "look [Attached file: /shared/inbox/a.png]", attachments: [Attachment(mimeType: "image/png", data: Data())])
        _ = try await fixture.run("and now?", history: [earlier, .assistant("a cat")])
        let sent = fixture.sentMessages(0)
        #expect(sent[1]["content"] == "look [Attached file: /shared/inbox/a.png]", "\(sent)")
        #expect(sent.allSatisfy { $0["content"]?.arrayValue == nil })
    }

    @Test func longArgumentsAreCutOnACharacterBoundaryAndSaySo() {
        let text = String(repeating: "é", count: 5000)
        let cut = AgentRuntime.cut(text, to: 8192)
        #expect(cut.utf8.count <= 8192)
        #expect(cut.hasSuffix("… (10000 bytes)"))
        #expect(cut.hasPrefix("ééé"))
        #expect(AgentRuntime.cut("short", to: 8192) == "short")
    }

    @Test func readOnlyCallsRunConcurrentlyInCallOrder() async throws {
        let fixture = try await RuntimeFixture.start()
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue([
            .toolCalls([
                call("a", "slow_read", #"{"millis":400}"#), call("b", "slow_read", #"{"millis":100}"#),
                call("c", "slow_read", #"{"millis":250}"#),
            ]),
            .text("done"),
        ])
        let result = try await fixture.run("go")
        let entries = fixture.log.all
        #expect(entries.count == 3)
        let latestStart = entries.map(\.start).max()!
        let earliestEnd = entries.map(\.end).min()!
        #expect(latestStart < earliestEnd, "calls did not overlap")
        #expect(result.messages.filter { $0.role == .tool }.map(\.toolCallID) == ["a", "b", "c"])
    }

    @Test func sideEffectingCallsRunOneAtATimeInOrder() async throws {
        let fixture = try await RuntimeFixture.start()
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue([
            .toolCalls([
                call("w1", "slow_write", #"{"millis":150}"#), call("r1", "slow_read", #"{"millis":50}"#),
                call("w2", "slow_write", #"{"millis":10}"#),
            ]),
            .text("done"),
        ])
        let result = try await fixture.run("go")
        let entries = fixture.log.all
        #expect(entries.map(\.name) == ["slow_write", "slow_read", "slow_write"])
        for (earlier, later) in zip(entries, entries.dropFirst()) { #expect(earlier.end <= later.start) }
        #expect(result.messages.filter { $0.role == .tool }.map(\.toolCallID) == ["w1", "r1", "w2"])
    }

    @Test func invalidArgumentsAreCorrectedNotExecuted() async throws {
        let fixture = try await RuntimeFixture.start()
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue([
            .toolCalls([call("bad", "file_write", #"{"path": "/shared/x.txt", "content": "hi"#)]),
            .toolCalls([call("missing", "file_write", #"{"path": "/shared/x.txt"}"#)]),
            .toolCalls([call("good", "file_write", #"{"path": "/shared/x.txt", "content": "hi"}"#)]),
            .text("written"),
        ])
        let result = try await fixture.run("write hi")
        let results = result.messages.filter { $0.role == .tool }
        #expect(
            results[0].content?.hasPrefix("invalid arguments for tool file_write: arguments are not valid JSON") == true
        )
        #expect(results[0].content?.contains("expected arguments (JSON Schema)") == true)
        #expect(
            results[1].content?.hasPrefix(
                "invalid arguments for tool file_write: schema validation failed:\n- \"content\" is a required property"
            ) == true)
        #expect(results[2].content == "wrote 2 bytes to /shared/x.txt")
        #expect(FileManager.default.contents(atPath: fixture.workspace.workspace.shared + "/x.txt") == Data("hi".utf8))
        #expect(result.answer.content == "written")
        // The malformed call is echoed back to the model verbatim, not replaced by {}.
        let echoed = fixture.sentMessages(1).first { $0["role"] == "assistant" }?["tool_calls"]?.arrayValue?.first?[
            "function"]?["arguments"]
        #expect(echoed == .string(#"{"path": "/shared/x.txt", "content": "hi"#))
    }

    @Test func unknownToolsAreReportedToTheModel() async throws {
        let fixture = try await RuntimeFixture.start()
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue([.toolCalls([call("u", "read_file", #"{"path":"/shared/facts.txt"}"#)]), .text("ok")])
        let result = try await fixture.run("go")
        let text = try #require(result.messages.first { $0.role == .tool }?.content)
        #expect(
            text.hasPrefix(
                "unknown tool `read_file`; did you mean `file_read`?; available tools: file_delete, file_edit, file_list, file_read"
            ))
    }

    @Test func loopGuardStopsRepeatedCalls() async throws {
        let fixture = try await RuntimeFixture.start()
        defer { Teardown.run { await fixture.stop() } }
        let same = ScriptedReply.toolCalls([call("l", "file_list", #"{"path":"/shared"}"#)])
        fixture.server.enqueue([same, same, same, .text("never")])
        await #expect {
            try await fixture.run("loop")
        } throws: { error in
            "\(error)"
                == "turn stopped: file_list was called 3 times in a row with the same arguments (runtime.loop_guard_repeats = 3)"
        }
        #expect(fixture.server.requests.count == 3)
        let stored = try await fixture.store.restore("s1").map(\.message)
        #expect(stored.last?.role == .tool)
        #expect(stored.last?.content == "tool file_list was not run: the same call was repeated 3 times")
    }

    @Test func maxTurnsBoundsProviderCalls() async throws {
        let fixture = try await RuntimeFixture.start { $0.runtime.maxTurns = 2 }
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue([
            .toolCalls([call("1", "file_list", #"{"path":"/shared"}"#)]),
            .toolCalls([call("2", "file_list", #"{"path":"/tmp"}"#)]),
            .text("never"),
        ])
        await #expect {
            try await fixture.run("go")
        } throws: { error in
            "\(error)" == "turn budget exceeded: runtime.max_turns (2) provider calls reached"
        }
        #expect(fixture.server.requests.count == 2)
    }

    /// A prompt too long for a local server: the error says the likely cause and the key to set.
    @Test func aLikelyContextOverflowSaysWhatToSet() {
        let ended = ProviderError.transport(provider: "local", message: "OpenAI-compatible stream ended before [DONE]")
        let explained = AgentRuntime.explained(
            ended, promptTokens: 5000, window: 128_000, provider: "local", unlisted: true)
        #expect(
            explained.description.hasSuffix(
                "the prompt was about 5000 tokens and the model's context window is assumed to be 128000; if the "
                    + "server runs with a smaller one (llama.cpp -c, Ollama num_ctx, vLLM --max-model-len), set "
                    + "providers.registry.local.max_context_tokens to it"))
        // A listed (cloud) model's dropped stream, or a short prompt, is just the error.
        #expect(
            AgentRuntime.explained(ended, promptTokens: 5000, window: 128_000, provider: "openai", unlisted: false)
                == .provider(ended))
        #expect(
            AgentRuntime.explained(ended, promptTokens: 100, window: 128_000, provider: "local", unlisted: true)
                == .provider(ended))
        // The server saying so is enough.
        let said = ProviderError.httpStatus(
            provider: "local", status: 400, message: "the request exceeds the available context size")
        guard
            case .contextOverflow = AgentRuntime.explained(
                said, promptTokens: 10, window: 4096, provider: "local", unlisted: false)
        else {
            Issue.record("expected contextOverflow")
            return
        }
    }

    /// A provider retry is visible as a progress line, so a slow turn says why it is slow.
    @Test func retriesShowAsProgress() async throws {
        let fixture = try await RuntimeFixture.start { $0.reliability.maxAttempts = 3 }
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue([.status(503, message: "busy"), .text("fine")])
        let events = EventLog()
        _ = try await fixture.run("go", events: events)
        let lines = events.all.compactMap {
            if case .progress(let progress) = $0, case .providerRetry = progress.kind { progress.message } else { nil }
        }
        #expect(lines == ["[1/100] HTTP 503; retrying in 5 ms (attempt 2/3)"])
    }

    @Test func maxCostIsMoney() async throws {
        let fixture = try await RuntimeFixture.start { $0.runtime.maxCost = 0.001 }
        defer { Teardown.run { await fixture.stop() } }
        var expensive = ScriptedReply.toolCalls([call("x", "file_list", #"{"path":"/shared"}"#)])
        expensive.usage = Usage(promptTokens: 10_000, completionTokens: 1_000, totalTokens: 11_000)
        fixture.server.enqueue([expensive, .text("never")])
        await #expect {
            try await fixture.run("go")
        } throws: { error in
            "\(error)" == "turn budget exceeded: runtime.max_cost ($0.0010) reached: $0.0021 spent"
        }
        let stored = try await fixture.store.restore("s1").map(\.message)
        #expect(stored.last?.content == "tool file_list was not run: the turn's cost limit was reached")
    }

    @Test func slowToolsTimeOutAndTheTurnGoesOn() async throws {
        let fixture = try await RuntimeFixture.start { $0.runtime.turnTimeoutSecs = 1 }
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue([.toolCalls([call("s", "slow_read", #"{"millis":5000}"#)]), .text("gave up on it")])
        let clock = ContinuousClock()
        let start = clock.now
        let result = try await fixture.run("go")
        #expect(clock.now - start < .seconds(3))
        #expect(result.messages[1].content == "tool slow_read timed out after 1s")
        #expect(result.answer.content == "gave up on it")
    }

    @Test func heartbeatsReportLongToolRuns() async throws {
        let fixture = try await RuntimeFixture.start(heartbeat: .milliseconds(100))
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue([.toolCalls([call("s", "slow_read", #"{"millis":350}"#)]), .text("ok")])
        let events = EventLog()
        _ = try await fixture.run("go", events: events)
        let beats = events.all.compactMap {
            if case .progress(let progress) = $0, case .toolHeartbeat = progress.kind { progress.message } else { nil }
        }
        #expect(beats.count >= 2)
        #expect(beats.first == "[1/100] Still executing: slow_read (0s)")
    }
}

@Suite("Cancellation")
struct CancellationTests {
    @Test func cancellingDuringTheStreamStopsWithin100msAndKeepsPartialText() async throws {
        let fixture = try await RuntimeFixture.start()
        defer { Teardown.run { await fixture.stop() } }
        var slow = ScriptedReply.text(String(repeating: "word ", count: 100))
        slow.chunkDelay = .milliseconds(40)
        fixture.server.enqueue(slow)
        let events = EventLog()
        let firstDelta = AsyncStream<Void>.makeStream()
        let turn = Task {
            try await fixture.runtime.run(session: "c1", history: [], input: .user("talk")) { event in
                events.add(event)
                if case .textDelta = event { firstDelta.continuation.yield() }
            }
        }
        for await _ in firstDelta.stream { break }
        let clock = ContinuousClock()
        let cancelled = clock.now
        turn.cancel()
        let result = await turn.result
        #expect(clock.now - cancelled < .milliseconds(100))
        #expect(throws: RuntimeError.self) { try result.get() }
        #expect(await fixture.server.waitForDisconnects(1))
        let stored = try await fixture.store.restore("c1").map(\.message)
        #expect(stored.count == 2)
        #expect(stored[1].role == .assistant && stored[1].content?.hasPrefix("word ") == true)
    }

    @Test func cancellingDuringAToolStopsItAndGivesEveryCallAResult() async throws {
        let fixture = try await RuntimeFixture.start()
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue([
            .toolCalls([
                call("long", "slow_write", #"{"millis":30000}"#), call("next", "file_list", #"{"path":"/shared"}"#),
            ]), .text("never"),
        ])
        let started = AsyncStream<Void>.makeStream()
        let turn = Task {
            try await fixture.runtime.run(session: "c2", history: [], input: .user("go")) { event in
                if case .toolStarted = event { started.continuation.yield() }
            }
        }
        for await _ in started.stream { break }
        try await Task.sleep(for: .milliseconds(20))
        let clock = ContinuousClock()
        let cancelled = clock.now
        turn.cancel()
        _ = await turn.result
        // The tool itself stopped within 100 ms of the cancellation (the turn then records results).
        let stopped = try #require(fixture.log.all.first { $0.name == "slow_write" }?.end)
        #expect(stopped - cancelled < .milliseconds(100))
        #expect(clock.now - cancelled < .seconds(1))
        let stored = try await fixture.store.restore("c2").map(\.message)
        #expect(stored.map(\.role) == [.user, .assistant, .tool, .tool])
        #expect(stored[2].content == "tool slow_write was cancelled before it finished")
        #expect(stored[3].toolCallID == "next")
    }
}
