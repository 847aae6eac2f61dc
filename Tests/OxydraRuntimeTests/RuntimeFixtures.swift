import OxydraConfig
import OxydraCore
import OxydraProviders
import OxydraRuntime
import OxydraTesting
import OxydraTools
import Synchronization
import Testing

/// Records what tools did and when, to assert concurrency and order.
final class ToolLog: Sendable {
    struct Entry: Sendable {
        var name: String
        var start: ContinuousClock.Instant
        var end: ContinuousClock.Instant
    }
    let entries = Mutex<[Entry]>([])
    func record(_ entry: Entry) { entries.withLock { $0.append(entry) } }
    var all: [Entry] { entries.withLock { $0 } }
}

/// A tool that sleeps for `millis` and reports when it ran.
struct TimedTool: TypedTool {
    struct Arguments: Decodable, Sendable { var millis: Int }
    let name: String
    let safety: SafetyTier
    let log: ToolLog
    var timeout: Duration = .seconds(60)
    var declaration: ToolDeclaration {
        ToolDeclaration(
            name: name, description: "sleeps",
            parameters: Schema.object(
                ["millis": Schema.integer("ms", minimum: 0, maximum: 600_000)], required: ["millis"]))
    }
    func run(_ arguments: Arguments, context: ToolContext) async throws -> ToolOutput {
        let clock = ContinuousClock()
        let start = clock.now
        defer { log.record(.init(name: name, start: start, end: clock.now)) }
        try await Task.sleep(for: .milliseconds(arguments.millis))
        return ToolOutput("\(name) slept \(arguments.millis)ms")
    }
}

struct RuntimeFixture {
    let server: ScriptedModelServer
    let workspace: WorkspaceHolder
    let runtime: AgentRuntime
    let store: EphemeralMemoryStore
    let log: ToolLog

    final class WorkspaceHolder: Sendable {
        let directory: TemporaryDirectory
        let workspace: Workspace
        init() throws {
            directory = try TemporaryDirectory(prefix: "oxydra-runtime")
            let root = try directory.createDirectory("ws/alice")
            for name in ["shared", "tmp", "vault", ".oxydra"] { _ = try directory.createDirectory("ws/alice/\(name)") }
            try directory.write("the answer is 42\n", to: "ws/alice/shared/facts.txt")
            workspace = Workspace(root: root)
        }
    }

    static func start(
        configure: (inout AgentConfig) -> Void = { _ in }, model: String = "gpt-4o-mini", skipCatalog: Bool = false,
        heartbeat: Duration = .seconds(5)
    ) async throws -> RuntimeFixture {
        let server = try await ScriptedModelServer.start()
        let holder = try WorkspaceHolder()
        var config = AgentConfig()
        config.providers.registry["openai"]?.baseURL = server.baseURL
        config.providers.registry["openai"]?.skipCatalogValidation = skipCatalog
        config.selection.model = model
        config.reliability.backoffBaseMs = 5
        config.reliability.backoffMaxMs = 20
        configure(&config)
        let provider = try ProviderFactory.selected(config, catalog: .builtIn, environment: [:])
        let log = ToolLog()
        let registry = BuiltInTools.registry(
            workspace: holder.workspace, config: config, environment: [:],
            extra: [
                TimedTool(name: "slow_read", safety: .readOnly, log: log),
                TimedTool(name: "slow_write", safety: .sideEffecting, log: log),
            ])
        let descriptor = try ModelSelection.resolve(config, catalog: .builtIn)
        let store = EphemeralMemoryStore()
        let runtime = AgentRuntime(
            provider: provider, tools: registry, model: descriptor,
            settings: RuntimeSettings(config.runtime, heartbeatInterval: heartbeat),
            systemPrompt: SystemPrompt.build(
                tools: registry.declarations, memoryEnabled: false, shellAvailable: false, operatorText: nil),
            store: store)
        return RuntimeFixture(server: server, workspace: holder, runtime: runtime, store: store, log: log)
    }

    func run(_ prompt: String, history: [Message] = [], session: SessionID = "s1", events: EventLog = EventLog())
        async throws -> TurnResult
    {
        try await runtime.run(session: session, history: history, input: .user(prompt)) { event in events.add(event) }
    }

    /// The messages the model received in request `index` (role, content, tool ids).
    func sentMessages(_ index: Int) -> [JSONValue] {
        server.requests[index].json?["messages"]?.arrayValue ?? []
    }

    func stop() async {
        try? await server.shutdown()
        workspace.directory.remove()
    }
}

final class EventLog: Sendable {
    let events = Mutex<[RuntimeEvent]>([])
    func add(_ event: RuntimeEvent) { events.withLock { $0.append(event) } }
    var all: [RuntimeEvent] { events.withLock { $0 } }
    var text: String {
        all.compactMap { if case .textDelta(let text) = $0 { text } else { nil } }.joined()
    }
}

func call(_ id: String, _ name: String, _ arguments: String, fragments: Int = 2) -> ScriptedToolCall {
    ScriptedToolCall(id: id, name: name, arguments: arguments, fragments: fragments)
}

/// A runtime with no tools against `config`'s selected provider.
func makeRuntime(_ config: AgentConfig, store: any MemoryStore, tools: ToolRegistry = ToolRegistry([])) throws
    -> AgentRuntime
{
    let provider = try ProviderFactory.selected(config, catalog: .builtIn, environment: [:])
    return AgentRuntime(
        provider: provider, tools: tools, model: try ModelSelection.resolve(config, catalog: .builtIn),
        settings: RuntimeSettings(config.runtime), systemPrompt: "You are a test.", store: store)
}
