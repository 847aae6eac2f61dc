import Hummingbird
import Logging
import OxydraAudit
import OxydraClient
import OxydraConfig
import OxydraCore
import OxydraGateway
import OxydraMemory
import OxydraProviders
import OxydraRuntime
import OxydraTesting
import OxydraTools
import ServiceLifecycle
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A real gateway (Hummingbird on loopback) over a real SQLite store, with the scripted model
/// server as the provider.
final class GatewayFixture: Sendable {
    let server: ScriptedModelServer
    let directory: TemporaryDirectory
    let hub: SessionHub
    let store: SQLiteMemoryStore
    let port: Int
    let group: ServiceGroup
    let running: Task<Void, any Error>
    /// The token every client must present (what the guest writes to `ipc/gateway-token`).
    let token: String

    var endpoint: String { "ws://127.0.0.1:\(port)/ws" }
    /// `Authorization` header value with the fixture's token.
    var bearer: String { "Bearer \(token)" }

    private init(
        server: ScriptedModelServer, directory: TemporaryDirectory, hub: SessionHub, store: SQLiteMemoryStore,
        port: Int,
        group: ServiceGroup, running: Task<Void, any Error>, token: String
    ) {
        self.token = token
        self.server = server
        self.directory = directory
        self.hub = hub
        self.store = store
        self.port = port
        self.group = group
        self.running = running
    }

    static func start(
        limits: (inout GatewayConfig) -> Void = { _ in }, bind: String = "127.0.0.1:0", remoteToken: String? = nil,
        origins: [String] = [], reusing: (ScriptedModelServer, TemporaryDirectory)? = nil, switching: Bool = false,
        titleModel: String? = nil, budget: BudgetConfig? = nil, fileTools: Bool = false,
        approvals: ApprovalConfig = ApprovalConfig(), audit: Bool = false, egress: [String] = [],
        clientBufferFrames: Int = 8192, idleTimeout: Duration = .seconds(30)
    ) async throws -> GatewayFixture {
        let server: ScriptedModelServer
        if let existing = reusing?.0 { server = existing } else { server = try await ScriptedModelServer.start() }
        let directory = try reusing?.1 ?? TemporaryDirectory(prefix: "oxydra-gateway")
        var config = AgentConfig()
        config.providers.registry["openai"]?.baseURL = server.baseURL
        config.reliability.maxAttempts = 1
        config.tools.web.egressAllowlist = egress
        limits(&config.gateway)
        let provider = try ProviderFactory.selected(config, catalog: .builtIn, environment: [:])
        let store = try SQLiteMemoryStore(path: directory.path + "/memory.db", user: "alice")
        let shared = try directory.createDirectory("shared")
        if fileTools { _ = try directory.createDirectory("tmp") }
        let tools =
            fileTools
            ? BuiltInTools.registry(
                workspace: Workspace(root: directory.path, shared: shared, tmp: directory.path + "/tmp"),
                config: config,
                environment: [:]) : ToolRegistry([])
        let runtime = AgentRuntime(
            provider: provider, tools: tools, model: try ModelSelection.resolve(config, catalog: .builtIn),
            settings: RuntimeSettings(config.runtime), systemPrompt: "You are a test.", store: store,
            budget: budget.map { Budget(limits: $0, ledger: store) })
        var logger = Logger(label: "test.gateway")
        logger.logLevel = .critical
        let hub = SessionHub(
            user: "alice", runtime: runtime, store: store, limits: config.gateway,
            startupStatus: StartupStatus(sandboxTier: .process), logger: logger,
            inbox: Inbox(shared: shared),
            switching: switching ? Self.switching(config) : nil, titleModel: titleModel,
            audit: audit ? try OxydraAudit.AuditLog(directory: try directory.createDirectory("logs")) : nil,
            approvals: approvals,
            approvalStore: store)
        let token = GatewayProtocol.newToken()
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let gateway = GatewayServer(
            hub: hub,
            settings: GatewayServer.Settings(
                bind: GatewayBind.parse(bind).bind!, tokens: [token] + (remoteToken.map { [$0] } ?? []),
                allowedOrigins: origins, clientBufferFrames: clientBufferFrames, idleTimeout: idleTimeout),
            logger: logger)
        let application = gateway.service { port in portContinuation.yield(port) }
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(services: [.init(service: application)], logger: logger))
        let running = Task { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw TestSupportError("the gateway did not start") }
        return GatewayFixture(
            server: server, directory: directory, hub: hub, store: store, port: port, group: group, running: running,
            token: token)
    }

    /// Two models of the scripted OpenAI provider to switch between.
    static func switching(_ config: AgentConfig) -> ModelSwitching {
        let choices = ["gpt-4o-mini", "gpt-4o"].map { ModelInfo(provider: "openai", model: $0) }
        return ModelSwitching(choices: choices) { provider, model in
            try ProviderFactory.reach(config, provider: provider, model: model, catalog: .builtIn, environment: [:])
        }
    }

    /// A client with the fixture's token, another token, or (`anonymous`) none.
    func connect(token: String? = nil, anonymous: Bool = false) -> TestClient {
        TestClient(GatewayClient(endpoint: endpoint, token: anonymous ? nil : token ?? self.token))
    }

    /// A client that has said hello; returns it with the hello_ack's session.
    func connected(session: String? = nil, newSession: Bool = false) async throws -> (TestClient, SessionID) {
        let client = connect()
        client.send(.hello(.init(requestID: "h", userID: "alice", sessionID: session, createNewSession: newSession)))
        let ack = try await client.next { if case .helloAck = $0 { true } else { false } }
        guard case .helloAck(_, _, let ref, _) = ack else { throw TestSupportError("no hello_ack") }
        return (client, ref.sessionID)
    }

    /// Stops the gateway (keeps the directory and the model server unless `everything`).
    func stop(everything: Bool = true) async {
        await hub.shutdown(grace: .seconds(5))
        await group.triggerGracefulShutdown()
        _ = try? await running.value
        if everything {
            try? await server.shutdown()
            directory.remove()
        }
    }
}

/// Collects every frame a connection receives and waits for the ones a test expects.
final class TestClient: Sendable {
    let client: GatewayClient
    private let received = Mutex<[ServerFrame]>([])
    private let cursor = Mutex(0)
    private let finished = Mutex(false)

    init(_ client: GatewayClient) {
        self.client = client
        Task { [self] in
            for await frame in client.frames { received.withLock { $0.append(frame) } }
            finished.withLock { $0 = true }
        }
    }

    func send(_ frame: ClientFrame) { client.send(frame) }

    func sendRaw(_ text: String) {
        client.sendRaw(text)
    }

    var frames: [ServerFrame] { received.withLock { $0 } }
    var isClosed: Bool { finished.withLock { $0 } }

    /// The next frame (after the previous match) satisfying `predicate`.
    @discardableResult
    func next(timeout: Duration = .seconds(10), _ predicate: (ServerFrame) -> Bool) async throws -> ServerFrame {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let start = cursor.withLock { $0 }
            let all = frames
            if let index = all[start...].firstIndex(where: predicate) {
                cursor.withLock { $0 = index + 1 }
                return all[index]
            }
            if isClosed { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw TestSupportError(
            "no matching frame within \(timeout); received: "
                + frames.map { frame in
                    if case .error(let info) = frame {
                        "error(\(info.code.rawValue): \(info.message))"
                    } else {
                        frame.type
                    }
                }.joined(separator: ", ")
                + (client.failure.map { " (connection: \($0))" } ?? ""))
    }

    func close() { client.close() }
}

func isType(_ type: String) -> (ServerFrame) -> Bool { { $0.type == type } }

func turn(_ id: String, _ prompt: String, request: String = "r-\(Int.random(in: 0..<1_000_000))") -> ClientFrame {
    .sendTurn(.init(requestID: request, turnID: TurnID(id), prompt: prompt))
}

/// Sends a raw HTTP/1.1 request to the gateway and returns the status line.
func rawRequest(port: Int, _ request: String) throws -> String {
    let reply = try LoopbackHTTP.raw(port: port, request, untilClose: false)
    guard !reply.isEmpty else { throw TestSupportError("no response") }
    return reply.split(separator: "\r\n").first.map(String.init) ?? ""
}

func upgradeRequest(port: Int, authorization: String? = nil, host: String? = nil, origin: String? = nil) -> String {
    var request =
        "GET /ws HTTP/1.1\r\nHost: \(host ?? "127.0.0.1:\(port)")\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    request += "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    if let origin { request += "Origin: \(origin)\r\n" }
    if let authorization { request += "Authorization: \(authorization)\r\n" }
    return request + "\r\n"
}

/// A reply streamed in exactly these text chunks.
func chunks(_ parts: [String]) -> ScriptedReply {
    var reply = ScriptedReply()
    reply.text = parts
    return reply
}
