import OxydraConfig
import OxydraCore
import OxydraTesting
import Testing

@testable import OxydraProviders

/// A provider of `type` pointed at a scripted server.
struct ProviderFixture {
    let server: ScriptedModelServer
    let provider: ReliableProvider
    let model: ModelID
    let chains: ResponseChains

    static func start(
        _ type: ProviderType, model: String? = nil, baseSuffix: String = "", apiKey: String? = "sk-test-KEY-123",
        maxAttempts: Int = 3, backoffMs: Int = 10, timeoutSecs: Int = 5, skipCatalog: Bool = false,
        extraHeaders: [String: String] = [:]
    ) async throws -> ProviderFixture {
        let server = try await ScriptedModelServer.start()
        var config = AgentConfig()
        var entry = ProviderEntry(type: type)
        entry.baseURL = server.baseURL + baseSuffix
        entry.apiKey = apiKey
        entry.skipCatalogValidation = skipCatalog
        entry.extraHeaders = HeaderMap(extraHeaders)
        config.providers.registry = ["scripted": entry]
        config.selection.provider = "scripted"
        config.selection.model = model ?? Self.defaultModel(type)
        config.reliability.maxAttempts = maxAttempts
        config.reliability.backoffBaseMs = backoffMs
        config.reliability.backoffMaxMs = backoffMs * 4
        config.runtime.turnTimeoutSecs = timeoutSecs
        let chains = ResponseChains()
        let provider = try ProviderFactory.selected(config, catalog: .builtIn, environment: [:], chains: chains)
        return ProviderFixture(
            server: server, provider: provider, model: ModelID(config.selection.model), chains: chains)
    }

    static func defaultModel(_ type: ProviderType) -> String {
        switch type {
        case .openai: "gpt-4o-mini"
        case .openaiResponses: "gpt-5"
        case .anthropic: "claude-haiku-4-5"
        case .gemini: "gemini-2.5-flash"
        }
    }

    func request(_ messages: [Message], tools: [ToolDeclaration] = [], session: SessionID? = nil) -> ModelRequest {
        ModelRequest(model: model, messages: messages, tools: tools, session: session)
    }

    func stream(_ messages: [Message] = [.user("Hi")], tools: [ToolDeclaration] = [], session: SessionID? = nil)
        async throws -> ModelResponse
    {
        try await provider.stream(request(messages, tools: tools, session: session)).collect(provider: provider.id)
    }

    func events(_ messages: [Message] = [.user("Hi")]) async throws -> [ModelEvent] {
        var events: [ModelEvent] = []
        for try await event in provider.stream(request(messages)) { events.append(event) }
        return events
    }

    func stop() async { try? await server.shutdown() }
}

let readTool = ToolDeclaration(
    name: "file_read", description: "Read a file",
    parameters: ["type": "object", "properties": ["path": ["type": "string"]], "required": ["path"]])

/// A conversation with every message kind, for request-body snapshots.
let fullConversation: [Message] = [
    .system("You are Oxydra."),
    .user("Read /shared/a.txt"),
    .assistant(
        "Reading it.",
        toolCalls: [ToolCall(id: "call_1", name: "file_read", arguments: ["path": "/shared/a.txt"])]),
    .toolResult(callID: "call_1", content: "hello"),
    .user("Thanks"),
]

extension ProviderType {
    static let every: [ProviderType] = [.openai, .anthropic, .gemini, .openaiResponses]
}
