import OxydraConfig
import OxydraCore
import OxydraProviders
import OxydraTesting
import OxydraTools
import Testing

@testable import OxydraRuntime

/// `selection.fallbacks` through real HTTP: an OpenAI-format primary and an Anthropic-format
/// fallback on scripted servers.
@Suite("Provider failover", .serialized)
struct FailoverTests {
    struct Fixture {
        let primary: ScriptedModelServer
        let backup: ScriptedModelServer
        let runtime: AgentRuntime
        let store: EphemeralMemoryStore

        static func start(primaryURL: String? = nil, maxAttempts: Int = 1, cooldown: Duration = .seconds(60))
            async throws -> Fixture
        {
            let primary = try await ScriptedModelServer.start()
            let backup = try await ScriptedModelServer.start()
            var config = AgentConfig()
            var openai = ProviderEntry(type: .openai)
            openai.baseURL = primaryURL ?? primary.baseURL
            openai.apiKey = "sk-primary"
            var anthropic = ProviderEntry(type: .anthropic)
            anthropic.baseURL = backup.baseURL
            anthropic.apiKey = "sk-backup"
            config.providers.registry = ["main": openai, "backup": anthropic]
            config.selection.provider = "main"
            config.selection.model = "gpt-4o-mini"
            config.selection.fallbacks = [Fallback(provider: "backup", model: "claude-haiku-4-5")]
            config.reliability.maxAttempts = maxAttempts
            config.reliability.backoffBaseMs = 5
            config.reliability.backoffMaxMs = 20
            let provider = try ProviderFactory.selected(config, catalog: .builtIn, environment: [:])
            let (backupProvider, backupModel) = try ProviderFactory.reach(
                config, provider: "backup", model: "claude-haiku-4-5", catalog: .builtIn, environment: [:])
            let fallback = FallbackModel(provider: backupProvider, model: backupModel)
            let store = EphemeralMemoryStore()
            let runtime = AgentRuntime(
                provider: provider, tools: ToolRegistry([]),
                model: try ModelSelection.resolve(config, catalog: .builtIn),
                settings: RuntimeSettings(config.runtime), systemPrompt: "You are a test.", store: store,
                fallbacks: [fallback], failover: FailoverState(cooldown: cooldown))
            return Fixture(primary: primary, backup: backup, runtime: runtime, store: store)
        }

        func run(_ prompt: String, history: [Message] = [], events: EventLog = EventLog()) async throws -> TurnResult {
            try await runtime.run(session: "s", history: history, input: .user(prompt)) { events.add($0) }
        }

        func stop() async {
            try? await primary.shutdown()
            try? await backup.shutdown()
        }
    }

    static func failovers(_ events: EventLog) -> [String] {
        events.all.compactMap {
            if case .progress(let progress) = $0, case .providerFailover = progress.kind {
                progress.message
            } else {
                nil
            }
        }
    }

    @Test(arguments: [ScriptedReply.status(500), ScriptedReply.status(503, message: "overloaded")])
    func aServerErrorContinuesOnTheFallback(_ failure: ScriptedReply) async throws {
        let fixture = try await Fixture.start()
        defer { Teardown.run { await fixture.stop() } }
        fixture.primary.enqueue(failure)
        fixture.backup.enqueue(.text("from the backup"))
        let events = EventLog()
        let result = try await fixture.run("hi", events: events)
        #expect(result.answer.content == "from the backup")
        #expect(result.provider == "backup" && result.model == "claude-haiku-4-5")
        #expect(result.contextWindow == 200_000)
        #expect(fixture.backup.requests.last?.path.hasSuffix("/messages") == true)
        let notes = Self.failovers(events)
        #expect(notes.count == 1 && notes[0].contains("main/gpt-4o-mini failed"), "\(notes)")
        #expect(notes.first?.hasSuffix("continuing on backup/claude-haiku-4-5") == true)
        // claude-haiku-4-5's prices, not gpt-4o-mini's: 11 prompt and 7 completion tokens.
        let pricing = try #require(fixture.runtime.fallbacks.first?.model.pricing)
        #expect(result.cost == pricing.cost(of: Usage(promptTokens: 11, completionTokens: 7, totalTokens: 18)))
    }

    @Test func aRefusedConnectionContinuesAndTheFailedProviderCoolsDown() async throws {
        let dead = try await ScriptedModelServer.start()
        let deadURL = dead.baseURL
        try await dead.shutdown()
        let fixture = try await Fixture.start(primaryURL: deadURL)
        defer { Teardown.run { await fixture.stop() } }
        fixture.backup.enqueue([.text("one"), .text("two")])
        let first = EventLog()
        #expect(try await fixture.run("a", events: first).answer.content == "one")
        #expect(Self.failovers(first).first?.contains("failed (") == true)
        // In its cool-down the primary is not tried again: straight to the backup, no failover.
        let second = EventLog()
        #expect(try await fixture.run("b", events: second).answer.content == "two")
        #expect(Self.failovers(second).isEmpty)
        #expect(fixture.backup.requests.count == 2)
    }

    @Test func aRateLimitAfterItsOwnRetriesContinuesOnTheFallback() async throws {
        let fixture = try await Fixture.start(maxAttempts: 2)
        defer { Teardown.run { await fixture.stop() } }
        fixture.primary.enqueue([.status(429, retryAfter: "0"), .status(429, retryAfter: "0")])
        fixture.backup.enqueue(.text("rescued"))
        let events = EventLog()
        #expect(try await fixture.run("hi", events: events).answer.content == "rescued")
        #expect(fixture.primary.requests.count == 2, "the primary's own retry comes first")
        #expect(Self.failovers(events).count == 1)
    }

    @Test func afterTheFirstTokenTheTurnFailsInsteadOfRepeatingText() async throws {
        let fixture = try await Fixture.start()
        defer { Teardown.run { await fixture.stop() } }
        var broken = ScriptedReply.text("partial answer that will be cut off here and never ends at all")
        // Chunks 20 ms apart: the text reaches the runtime before the connection drops.
        broken.chunkDelay = .milliseconds(20)
        broken.dropAfterBytes = 900
        fixture.primary.enqueue(broken)
        let events = EventLog()
        await #expect(throws: (any Error).self) { try await fixture.run("hi", events: events) }
        #expect(events.text.hasPrefix("partial"), "the primary streamed text before it broke: \(events.text)")
        #expect(fixture.backup.requests.isEmpty)
    }

    /// A conversation with tool calls made in OpenAI's format continues in Anthropic's: every
    /// call and its result are translated, in order, with matching ids.
    @Test func historyWithToolCallsCrossesFormats() async throws {
        let fixture = try await Fixture.start()
        defer { Teardown.run { await fixture.stop() } }
        let history: [Message] = [
            .user("list my files"),
            .assistant(
                "Looking.",
                toolCalls: [ToolCall(id: "call_a1.b/2", name: "file_list", arguments: .json(["path": "/shared"]))]),
            .toolResult(callID: "call_a1.b/2", content: "notes.md"),
            .assistant("There is notes.md."),
        ]
        fixture.primary.enqueue(.status(500))
        fixture.backup.enqueue(.text("still notes.md"))
        _ = try await fixture.run("and now?", history: history)
        let body = try #require(fixture.backup.requests.last?.json)
        let messages = try #require(body["messages"]?.arrayValue)
        let use = messages.compactMap { $0["content"]?.arrayValue?.first { $0["type"] == "tool_use" } }.first
        let result = messages.compactMap { $0["content"]?.arrayValue?.first { $0["type"] == "tool_result" } }.first
        let id = try #require(use?["id"]?.stringValue)
        #expect(result?["tool_use_id"]?.stringValue == id)
        #expect(id.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }, "\(id)")
        #expect(use?["name"] == "file_list" && use?["input"]?["path"] == "/shared")
        #expect(messages.last?["role"] == "user")
    }
}
