import OxydraConfig
import OxydraCore
import OxydraTesting
import Testing

@testable import OxydraProviders

@Suite("Faults and retries")
struct ProviderFaultTests {
    @Test(arguments: ProviderType.every)
    func dropBeforeOutputIsRetried(_ type: ProviderType) async throws {
        let fixture = try await ProviderFixture.start(type)
        defer { Teardown.run { await fixture.stop() } }
        var broken = ScriptedReply.text("never seen")
        broken.dropAfterBytes = 20
        fixture.server.enqueue([broken, .text("Recovered fine")])
        let response = try await fixture.stream()
        #expect(response.message.content == "Recovered fine")
        #expect(fixture.server.requests.count == 2)
    }

    @Test(arguments: ProviderType.every)
    func dropAfterOutputEndsWithAClearErrorInsteadOfDuplicates(_ type: ProviderType) async throws {
        let fixture = try await ProviderFixture.start(type)
        defer { Teardown.run { await fixture.stop() } }
        var reply = ScriptedReply.text(String(repeating: "word ", count: 60))
        reply.fragmentBytes = 64
        reply.dropAfterBytes = 900
        // Paced, so the words before the break reach the consumer before the break does.
        reply.chunkDelay = .milliseconds(5)
        fixture.server.enqueue([reply, .text("must not be requested")])
        var text = ""
        await #expect {
            for try await event in fixture.provider.stream(fixture.request([.user("Hi")])) {
                if case .textDelta(let delta) = event { text += delta }
            }
        } throws: { error in
            guard case ProviderError.streamInterrupted(let provider, _) = error else { return false }
            return provider == "scripted"
        }
        #expect(!text.isEmpty)
        #expect(fixture.server.requests.count == 1)
    }

    @Test(arguments: ProviderType.every)
    func missingEndMarkerIsALostConnection(_ type: ProviderType) async throws {
        let fixture = try await ProviderFixture.start(type, maxAttempts: 1)
        defer { Teardown.run { await fixture.stop() } }
        var reply = ScriptedReply()
        reply.omitEndMarker = true
        reply.usage = nil
        fixture.server.enqueue(reply)
        await #expect {
            try await fixture.stream()
        } throws: { error in
            "\(error)".contains("ended") && "\(error)".contains("gave up after 1 attempt")
        }
    }

    /// Requests ask for bodies as they are; a server (or proxy) that compresses anyway is refused
    /// with an error that says so, not a parse error about binary data.
    @Test(arguments: ProviderType.every)
    func bodiesAreAskedForAsTheyAreAndACompressedOneIsRefused(_ type: ProviderType) async throws {
        let fixture = try await ProviderFixture.start(type, maxAttempts: 1)
        defer { Teardown.run { await fixture.stop() } }
        var compressed = ScriptedReply.text("never read")
        compressed.headers.append(("Content-Encoding", "gzip"))
        fixture.server.enqueue([.text("plain"), compressed])
        #expect(try await fixture.stream().message.content == "plain")
        let asked = fixture.server.requests[0].headers.filter { $0.0.lowercased() == "accept-encoding" }.map(\.1)
        #expect(asked == ["identity"])
        await #expect {
            try await fixture.stream()
        } throws: { error in
            "\(error)".contains("`gzip`-encoded body") && "\(error)".contains("asked for `identity`")
        }
    }

    @Test func rateLimitHonoursRetryAfter() async throws {
        let fixture = try await ProviderFixture.start(.openai)
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue([.status(429, message: "slow down", retryAfter: "1"), .text("ok")])
        let clock = ContinuousClock()
        let start = clock.now
        let response = try await fixture.stream()
        #expect(response.message.content == "ok")
        #expect(clock.now - start >= .milliseconds(950))
        #expect(fixture.server.requests.count == 2)
    }

    @Test(arguments: [408, 409, 429, 500, 502, 503, 529])
    func retryableStatusesAreRetriedUpToMaxAttempts(_ status: Int) async throws {
        let fixture = try await ProviderFixture.start(.anthropic, maxAttempts: 3)
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue([
            .status(status, message: "busy"), .status(status, message: "busy"), .status(status, message: "still busy"),
        ])
        await #expect {
            try await fixture.stream()
        } throws: { error in
            "\(error)" == "provider `scripted` returned HTTP \(status): still busy"
        }
        #expect(fixture.server.requests.count == 3)
    }

    /// A prompt too long for the model fails the same way every time: no retry.
    @Test func aContextOverflowIsNotRetried() async throws {
        let fixture = try await ProviderFixture.start(.openai, maxAttempts: 3)
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue([
            .status(500, message: "the request exceeds the available context size, try increasing it"), .text("unused"),
        ])
        await #expect(throws: ProviderError.self) { try await fixture.stream() }
        #expect(fixture.server.requests.count == 1)
    }

    /// Each retry is announced before the wait (what UIs show as "retrying in 10 ms (attempt 2/3)").
    @Test func retriesAreAnnounced() async throws {
        let fixture = try await ProviderFixture.start(.openai, maxAttempts: 3)
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue([.status(503, message: "busy"), .status(502, message: "busy"), .text("ok")])
        let events = try await fixture.events()
        let notices = events.compactMap { event -> String? in
            guard case .retrying(let attempt, let maximum, let wait, let reason) = event else { return nil }
            return "\(reason) \(attempt)/\(maximum) after \(wait) ms"
        }
        #expect(notices == ["HTTP 503 2/3 after 10 ms", "HTTP 502 3/3 after 20 ms"])
        #expect(events.contains(.textDelta("ok")))
    }

    @Test(arguments: [400, 401, 403, 404, 422])
    func otherClientErrorsFailFastWithTheProvidersMessage(_ status: Int) async throws {
        let fixture = try await ProviderFixture.start(.openai)
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue([
            .status(status, message: "Incorrect API key provided: sk-test-KEY-123"), .text("unused"),
        ])
        await #expect {
            try await fixture.stream()
        } throws: { error in
            "\(error)" == "provider `scripted` returned HTTP \(status): Incorrect API key provided: [REDACTED]"
        }
        #expect(fixture.server.requests.count == 1)
    }

    @Test func longRetryAfterFailsAtOnce() async throws {
        let fixture = try await ProviderFixture.start(.openai, timeoutSecs: 2)
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue([.status(429, message: "quota", retryAfter: "3600"), .text("unused")])
        await #expect {
            try await fixture.stream()
        } throws: { error in
            "\(error)" == "provider `scripted` returned HTTP 429: quota"
        }
        #expect(fixture.server.requests.count == 1)
    }

    @Test(arguments: ProviderType.every)
    func malformedJSONInTheStream(_ type: ProviderType) async throws {
        let fixture = try await ProviderFixture.start(type)
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue(.raw("data: {\"choices\": [\n\n"))
        await #expect {
            try await fixture.stream()
        } throws: { error in
            "\(error)".hasPrefix("provider `scripted` sent a response that could not be parsed:")
        }
        #expect(fixture.server.requests.count == 1)
    }

    @Test func wrongContentTypeIsNamed() async throws {
        let fixture = try await ProviderFixture.start(.openai)
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue(.raw("<html><body>Gateway login</body></html>", contentType: "text/html"))
        await #expect {
            try await fixture.stream()
        } throws: { error in
            "\(error)"
                == "provider `scripted` sent a response that could not be parsed: expected an event stream but got "
                + "content type `text/html`: <html><body>Gateway login</body></html>"
        }
    }

    @Test func serversThatAnswerAStreamWithJSONStillWork() async throws {
        let fixture = try await ProviderFixture.start(.openai)
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue(
            .raw(
                #"{"choices":[{"index":0,"message":{"role":"assistant","content":"whole answer"},"finish_reason":"stop"}]}"#,
                contentType: "application/json"))
        #expect(try await fixture.stream().message.content == "whole answer")
    }

    @Test func idleTimeoutWhileWaitingForTheHead() async throws {
        let fixture = try await ProviderFixture.start(.openai, maxAttempts: 1, timeoutSecs: 1)
        defer { Teardown.run { await fixture.stop() } }
        var slow = ScriptedReply.text("late")
        slow.headDelay = .seconds(3)
        fixture.server.enqueue(slow)
        await #expect {
            try await fixture.stream()
        } throws: { error in
            "\(error)" == "provider `scripted` did not respond within 1s (runtime.turn_timeout_secs)"
        }
    }

    @Test func idleTimeoutBetweenChunks() async throws {
        let fixture = try await ProviderFixture.start(.anthropic, maxAttempts: 1, timeoutSecs: 1)
        defer { Teardown.run { await fixture.stop() } }
        var stalled = ScriptedReply.text("a b c")
        stalled.chunkDelay = .milliseconds(1500)
        fixture.server.enqueue(stalled)
        await #expect {
            try await fixture.stream()
        } throws: { error in
            "\(error)".contains("did not respond within 1s")
        }
    }

    /// The timeout is the longest silence, not the longest answer: a stream that keeps coming for
    /// three times the timeout is read to the end.
    @Test func aStreamThatKeepsComingOutlivesTheTimeout() async throws {
        let fixture = try await ProviderFixture.start(.openai, maxAttempts: 1, timeoutSecs: 1)
        defer { Teardown.run { await fixture.stop() } }
        var steady = ScriptedReply.text("one two three four five six seven eight")
        steady.chunkDelay = .milliseconds(400)
        fixture.server.enqueue(steady)
        let clock = ContinuousClock()
        let started = clock.now
        let response = try await fixture.stream()
        #expect(response.message.content == "one two three four five six seven eight")
        #expect(clock.now - started > .seconds(2))
    }

    /// A stream read to the provider's end marker gives its connection back for the next call,
    /// also when the body's own end comes a moment after the marker (the reader has let go by then).
    @Test func theConnectionIsReusedAfterTheEndMarker() async throws {
        let fixture = try await ProviderFixture.start(.openai, maxAttempts: 1)
        defer { Teardown.run { await fixture.stop() } }
        var opened: [Int] = []
        for _ in 0..<4 {
            var reply = ScriptedReply.text("kept alive")
            reply.keepAlive = true
            reply.chunkDelay = .milliseconds(20)
            fixture.server.enqueue(reply)
            #expect(try await fixture.stream().message.content == "kept alive")
            try await Task.sleep(for: .milliseconds(60))
            opened.append(fixture.server.connections)
        }
        #expect(fixture.server.requests.count == 4)
        // The first call opens the pool's connection; the others take it again.
        #expect(opened.dropFirst().allSatisfy { $0 == opened[0] })
    }

    /// A reader that does not read holds the connection back (the body is not all kept in memory)
    /// and is not timed out for it; what it reads later is the whole body, byte for byte.
    @Test func aSlowReaderPausesTheConnectionWithoutTimingOut() async throws {
        let server = try await ScriptedModelServer.start()
        defer { Teardown.run { try? await server.shutdown() } }
        let line = String(repeating: "0123456789abcdef", count: 64)
        let body = "[" + Array(repeating: "\"\(line)\"", count: 6 * 1024).joined(separator: ",") + "]"
        server.enqueue(.raw(body, contentType: "application/json"))
        let transport = ProviderTransport(
            provider: ProviderID("scripted"), baseURL: server.baseURL, headers: [], secrets: [], timeout: .seconds(1))
        let response = try await transport.post(
            "/v1/chat/completions", json: Data("{}".utf8), accept: "application/json")
        try await Task.sleep(for: .milliseconds(2500))
        let read = try await transport.readBody(response)
        #expect(read.count == body.utf8.count)
        #expect(read == Data(body.utf8))
    }

    @Test(arguments: ProviderType.every)
    func cancellingTheConsumerClosesTheConnection(_ type: ProviderType) async throws {
        let fixture = try await ProviderFixture.start(type)
        defer { Teardown.run { await fixture.stop() } }
        var slow = ScriptedReply.text(String(repeating: "tick ", count: 50))
        slow.chunkDelay = .milliseconds(50)
        fixture.server.enqueue(slow)
        let stream = fixture.provider.stream(fixture.request([.user("Hi")]))
        let started = AsyncStream<Void>.makeStream()
        let consumer = Task {
            var count = 0
            for try await event in stream {
                if case .textDelta = event {
                    count += 1
                    if count == 1 { started.continuation.yield() }
                }
            }
            return count
        }
        for await _ in started.stream { break }
        consumer.cancel()
        #expect(await fixture.server.waitForDisconnects(1, timeout: .seconds(3)))
        let result = await consumer.result
        #expect((try? result.get()) ?? 0 < 50)
    }

    @Test func anUnresolvableHostIsNamed() async throws {
        let error = try await streamError(name: "lan", baseURL: "http://no-such-host.invalid:8080", apiKey: "sk-test")
        #expect(
            error
                == "provider transport failed for `lan`: cannot resolve the host `no-such-host.invalid`; check "
                + "`base_url` (http://no-such-host.invalid:8080)")
    }

    @Test func connectionRefusedIsATransportError() async throws {
        // Retried once (a refused connect is transient), then reported.
        let error = try await streamError(name: "dead", baseURL: "http://127.0.0.1:1", attempts: 2)
        #expect(
            error
                == "provider transport failed for `dead`: connection refused: nothing is listening there; is the "
                + "server running, and is `base_url` (http://127.0.0.1:1) right? (gave up after 2 attempts, 1 ms of "
                + "waiting between them)")
    }

    /// The error a stream from provider `name` at `baseURL` fails with (nil if it does not).
    private func streamError(name: String, baseURL: String, apiKey: String? = nil, attempts: Int = 1) async throws
        -> String?
    {
        var config = AgentConfig()
        var entry = ProviderEntry(type: .openai)
        entry.baseURL = baseURL
        entry.apiKey = apiKey
        config.providers.registry = [name: entry]
        config.selection.provider = name
        config.reliability.maxAttempts = attempts
        config.reliability.backoffBaseMs = 1
        let provider = try ProviderFactory.selected(config, catalog: .builtIn, environment: [:])
        do {
            _ = try await provider.stream(ModelRequest(model: "gpt-4o-mini", messages: [.user("x")])).collect(
                provider: ProviderID(name))
            return nil
        } catch {
            return "\(error)"
        }
    }
}
