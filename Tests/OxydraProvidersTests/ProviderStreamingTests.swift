import OxydraConfig
import OxydraCore
import OxydraTesting
import Testing

@testable import OxydraProviders

@Suite("Every wire format, streamed and complete")
struct ProviderStreamingTests {
    @Test(arguments: ProviderType.every)
    func streamedText(_ type: ProviderType) async throws {
        let fixture = try await ProviderFixture.start(type)
        defer { Teardown.run { await fixture.stop() } }
        var reply = ScriptedReply.text("Hello there, wörld 🎉")
        reply.reasoning = ["Thinking ", "hard."]
        fixture.server.enqueue(reply)
        let response = try await fixture.stream()
        #expect(response.message.content == "Hello there, wörld 🎉")
        #expect(response.reasoning == "Thinking hard.")
        #expect(response.finishReason == .stop)
        #expect(response.usage?.promptTokens == 11)
        #expect(response.usage?.completionTokens == 7)
        #expect(fixture.server.requests.count == 1)
    }

    /// Events whose chunks already arrived are taken without waiting (`nextBuffered()`), in order,
    /// and are what `next()` would have returned: once a short answer is all in, everything after
    /// its first event comes without an `await`, and the stream then ends.
    @Test(arguments: ProviderType.every)
    func eventsThatArrivedAreTakenWithoutWaiting(_ type: ProviderType) async throws {
        let fixture = try await ProviderFixture.start(type)
        defer { Teardown.run { await fixture.stop() } }
        let text = (0..<40).map { "word\($0) " }.joined()
        fixture.server.enqueue([.text(text), .text(text)])
        let expected = try await fixture.events()
        #expect(expected.count > 40)

        var iterator = fixture.provider.stream(fixture.request([.user("Hi")])).makeAsyncIterator()
        var events = [try #require(try await iterator.next())]
        try await Task.sleep(for: .milliseconds(300))
        while let event = try iterator.nextBuffered() { events.append(event) }
        #expect(events == expected)
        #expect(try await iterator.next() == nil)
    }

    /// A chunk that cannot be read ends the stream with an error naming it, after the events that
    /// came before it in the same read: the consumer still gets those.
    @Test func eventsBeforeAnUnreadableChunkComeFirst() async throws {
        let fixture = try await ProviderFixture.start(.openai, maxAttempts: 1)
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue(
            .raw(
                #"data: {"choices":[{"index":0,"delta":{"content":"Hello"}}]}"# + "\n\n"
                    + #"data: {"choices":[{"index":0,"delta":"# + "\n\n"))
        var text = ""
        await #expect {
            for try await event in fixture.provider.stream(fixture.request([.user("Hi")])) {
                if case .textDelta(let delta) = event { text += delta }
            }
        } throws: { error in
            guard case ProviderError.responseParse(_, let message) = error else { return false }
            return message.contains("not valid JSON")
        }
        #expect(text == "Hello")
    }

    @Test(arguments: ProviderType.every)
    func streamedParallelToolCallsSplitAcrossManyChunks(_ type: ProviderType) async throws {
        let fixture = try await ProviderFixture.start(type)
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue(
            .toolCalls(
                [
                    ScriptedToolCall(
                        id: "call_a", name: "file_read", arguments: #"{"path":"/shared/notes é.txt"}"#, fragments: 9),
                    ScriptedToolCall(
                        id: "call_b", name: "file_list", arguments: #"{"path":"/tmp","depth":2}"#, fragments: 5),
                ], text: "Let me look."))
        let response = try await fixture.stream(tools: [readTool])
        #expect(response.message.content == "Let me look.")
        #expect(response.finishReason == .toolCalls)
        let calls = response.message.toolCalls
        #expect(calls.map(\.name) == ["file_read", "file_list"])
        #expect(calls[0].arguments == .json(["path": "/shared/notes é.txt"]))
        #expect(calls[1].arguments == .json(["path": "/tmp", "depth": 2]))
        if type != .gemini { #expect(calls.map(\.id) == ["call_a", "call_b"]) }
    }

    @Test(arguments: ProviderType.every)
    func completeEndpoint(_ type: ProviderType) async throws {
        let fixture = try await ProviderFixture.start(type)
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue(
            .toolCalls([ScriptedToolCall(id: "call_x", name: "file_read", arguments: #"{"path":"/a"}"#)], text: "Sure.")
        )
        let response = try await fixture.provider.complete(fixture.request([.user("Hi")], tools: [readTool]))
        #expect(response.message.content == "Sure.")
        #expect(response.message.toolCalls.map(\.name) == ["file_read"])
        #expect(response.message.toolCalls.first?.arguments == .json(["path": "/a"]))
        #expect(response.usage?.promptTokens == 11)
        #expect(fixture.server.requests.first?.json?["stream"] != .bool(true))
        if type == .gemini { #expect(fixture.server.requests.first?.path.hasSuffix(":generateContent") == true) }
    }

    @Test(arguments: ProviderType.every, [1, 3, 7])
    func fragmentationAtArbitraryBytes(_ type: ProviderType, _ size: Int) async throws {
        let fixture = try await ProviderFixture.start(type)
        defer { Teardown.run { await fixture.stop() } }
        var reply = ScriptedReply.toolCalls(
            [ScriptedToolCall(id: "call_u", name: "file_read", arguments: #"{"path":"/shared/日本語/🎉.txt"}"#)],
            text: "naïve 日本語 🎉 text")
        reply.fragmentBytes = size
        fixture.server.enqueue(reply)
        let response = try await fixture.stream()
        #expect(response.message.content == "naïve 日本語 🎉 text")
        #expect(response.message.toolCalls.first?.arguments == .json(["path": "/shared/日本語/🎉.txt"]))
    }

    @Test(arguments: ProviderType.every)
    func slowStreamsArriveAsTheyAreProduced(_ type: ProviderType) async throws {
        let fixture = try await ProviderFixture.start(type)
        defer { Teardown.run { await fixture.stop() } }
        var reply = ScriptedReply.text("one two three four")
        reply.chunkDelay = .milliseconds(120)
        fixture.server.enqueue(reply)
        let clock = ContinuousClock()
        let start = clock.now
        var firstText: Duration?
        for try await event in fixture.provider.stream(fixture.request([.user("Hi")])) {
            if case .textDelta = event, firstText == nil { firstText = clock.now - start }
        }
        let total = clock.now - start
        // The first words are delivered while the server is still sending the rest (several chunk
        // delays remain after the first word, whatever the machine's load).
        #expect(try #require(firstText) < total - .milliseconds(240))
    }
}
