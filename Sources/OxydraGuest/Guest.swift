import Dispatch
import Logging
import OxydraAudit
import OxydraChannels
import OxydraConfig
import OxydraCore
import OxydraGateway
import OxydraMemory
import OxydraProviders
import OxydraRuntime
import OxydraSandbox
import OxydraTools
import ServiceLifecycle
import Synchronization
import UnixSignals

#if canImport(Glibc)
    import Glibc
#endif

/// The serving phase of the guest: provider, memory, tools, runtime, gateway and control socket
/// under one service group that shuts down gracefully on SIGTERM, SIGINT or `shutdown_user`.
public struct Guest {
    let prepared: PreparedGuest

    public init(_ prepared: PreparedGuest) { self.prepared = prepared }

    /// Serves until shutdown; returns the process exit code.
    public func run() async -> Int32 {
        let sink: LogSink
        do {
            sink = try LogSink(path: prepared.workspace.logs + "/oxydra-vm.log")
        } catch {
            StandardStreams.write("oxydra-vm error: \(error)\n", to: 2)
            return 1
        }
        let level = Logger.Level(rawValue: prepared.environment["OXYDRA_LOG_LEVEL"] ?? "info") ?? .info
        LoggingSystem.bootstrap { label in FileLogHandler(label: label, sink: sink, level: level) }
        let logger = Logger(label: "oxydra.guest")
        do {
            try await serve(logger: logger)
            return 0
        } catch {
            logger.error("guest stopped with an error", metadata: ["error": "\(error)"])
            StandardStreams.write("oxydra-vm error: \(error)\n", to: 2)
            return 1
        }
    }

    private func serve(logger: Logger) async throws {
        let started = ContinuousClock.now
        let config = prepared.config
        let user = prepared.envelope.userID
        var status = prepared.startupStatus
        logger.info(
            "guest starting",
            metadata: [
                "user": "\(user)", "tier": "\(status.sandboxTier.rawValue)",
                "landlock_abi": "\(prepared.landlockABI.map(String.init) ?? "none")",
                "degraded": "\(status.degradedReasons.map(\.description).joined(separator: "; "))",
            ])

        // A shell sandbox this guest starts (process tier, micro VM) comes up while the guest sets
        // up and serves: the guest does not wait for it (bubblewrap, its cgroup and two process
        // starts take tens of milliseconds). A shell call made before then waits for it; should it
        // never come up, the shell tool is withdrawn and the status says why (see `watchShell`).
        // A sidecar the runner started (container tier) is waited for before serving, as the
        // runner takes a healthy guest to mean a working sidecar (and starts the guest again
        // without one that exited).
        let ownsShell = prepared.shellSupervisor != nil
        let shellReadiness = prepared.shellSocket.map { socket in
            Task { [supervisor = prepared.shellSupervisor] in
                await Self.waitForShell(socket: socket, supervisor: supervisor, timeout: .seconds(10))
            }
        }
        let provider = try ProviderFactory.selected(
            config, catalog: prepared.catalog, environment: prepared.environment, keySource: prepared.keySource)
        var model = try ModelSelection.resolve(config, catalog: prepared.catalog)
        // A model no catalog lists, on a local server, with no max_context_tokens: ask the server.
        if model.isSynthetic, let (_, entry, type) = config.selectedProvider, entry.maxContextTokens == nil,
            !CredentialResolver.requiresKey(entry, type: type)
        {
            if let found = await ContextWindowProbe.discover(
                root: entry.normalizedBaseURL(for: type), model: model.id.rawValue)
            {
                model.capabilities.contextTokens = found.tokens
                if entry.maxOutputTokens == nil {
                    model.capabilities.outputTokens = min(model.capabilities.outputTokens, max(found.tokens / 4, 256))
                }
                logger.info(
                    "context window discovered",
                    metadata: ["tokens": "\(found.tokens)", "source": "\(found.source)", "model": "\(model.id)"])
            } else {
                logger.info(
                    "context window unknown; assuming the default (set max_context_tokens for this provider)",
                    metadata: ["tokens": "\(model.capabilities.contextTokens)", "model": "\(model.id)"])
            }
        }
        let store = try MemoryFactory.open(config.memory, workspaceRoot: prepared.workspace.root, user: user)
        let workspace = Workspace(
            root: prepared.workspace.root, shared: prepared.workspace.shared, tmp: prepared.workspace.tmp,
            vault: prepared.workspace.vault)
        var extraTools: [any Tool] = config.memory.enabled ? MemoryTools.all(store: store) : []
        if let socket = prepared.shellSocket {
            if !ownsShell, let problem = await shellReadiness?.value {
                status.shellAvailable = false
                status.sidecarAvailable = false
                status.degradedReasons.append(Self.shellDown(problem, logs: prepared.workspace.logs))
                logger.error("the shell sandbox did not come up", metadata: ["problem": "\(problem)"])
            } else {
                let sessions = ShellSessions(socketPath: socket, readiness: shellReadiness)
                extraTools.append(ShellExecTool(config: config.tools.shell, sessions: sessions))
                if !ownsShell { logger.info("shell sandbox ready", metadata: ["socket": "\(socket)"]) }
            }
        }
        let audit = try AuditLog(directory: prepared.workspace.logs)
        let channels = ChannelRegistry.make(
            telegram: prepared.envelope.telegram, environment: prepared.environment, store: store,
            logger: Logger(label: "oxydra.channels")
        ) { event, details in audit.event(event, details) }
        for problem in channels.problems {
            status.degradedReasons.append(problem)
            logger.error("a chat channel cannot run", metadata: ["problem": "\(problem.detail)"])
        }
        if channels.sendsFiles { extraTools.append(SendFile(workspace: workspace, sender: channels)) }
        // A micro VM's network leads only to the configured providers: no web tools to offer there.
        let web = prepared.envelope.sandboxTier != .microVM
        if !web {
            status.degradedReasons.append(
                DegradedReason(
                    code: DegradedReason.webUnavailable,
                    detail: "the micro VM's network leads only to the configured providers, so web_fetch and "
                        + "web_search are not offered in this tier yet; use the container tier for web tools"))
        }
        let tools = BuiltInTools.registry(
            workspace: workspace, config: config, environment: prepared.environment, extra: extraTools,
            secrets: prepared.gatewayTokens, web: web)
        var fallbacks: [FallbackModel] = []
        for (index, fallback) in config.selection.fallbacks.enumerated() {
            do {
                let (reached, descriptor) = try ProviderFactory.reach(
                    config, provider: fallback.provider, model: fallback.model, catalog: prepared.catalog,
                    environment: prepared.environment, keySource: prepared.keySource)
                fallbacks.append(FallbackModel(provider: reached, model: descriptor))
            } catch {
                throw GuestStartError(
                    "selection.fallbacks[\(index)] (\(fallback.provider)/\(fallback.model)): \(error)")
            }
        }
        let runtime = AgentRuntime(
            provider: provider, tools: tools, model: model, settings: RuntimeSettings(config.runtime),
            systemPrompt: SystemPrompt.build(
                tools: tools.declarations, memoryEnabled: config.memory.enabled,
                shellAvailable: status.shellAvailable, operatorText: prepared.operatorPrompt),
            store: store, recallLimit: config.memory.enabled ? config.memory.retrieval.topK : nil,
            fallbacks: fallbacks, failover: FailoverState(cooldown: .seconds(config.reliability.failoverCooldownSecs)),
            budget: Budget(
                limits: config.budget.stricter(prepared.envelope.runtimePolicy?.budget ?? BudgetConfig()),
                ledger: store))
        let hub = SessionHub(
            user: user, runtime: runtime, store: store, limits: config.gateway, startupStatus: status,
            logger: Logger(label: "oxydra.gateway"), inbox: Inbox(shared: prepared.workspace.shared),
            switching: Self.modelSwitching(config, prepared: prepared, selected: model),
            titleModel: config.sessions.titleModel, audit: audit,
            approvals: config.tools.approval, approvalStore: store)
        if ownsShell, let shellReadiness, let socket = prepared.shellSocket {
            let logs = prepared.workspace.logs
            Task { [tools] in
                await Self.watchShell(
                    shellReadiness, socket: socket, tools: tools, hub: hub, logs: logs,
                    logger: logger)
            }
        }
        let resumed = await hub.resumeSuspendedTurns()
        if resumed > 0 { logger.info("turns waiting for approval resumed", metadata: ["turns": "\(resumed)"]) }

        let paths = prepared.workspace
        Self.remove(paths.marker)
        let endpoint = EndpointBox()
        let gateway = GatewayServer(
            hub: hub,
            settings: GatewayServer.Settings(
                bind: prepared.bind, tokens: prepared.gatewayTokens, allowedOrigins: config.gateway.allowedOrigins),
            logger: Logger(label: "oxydra.http"))
        let groupBox = ServiceGroupBox()
        let control = try await ControlServer(path: paths.controlSocket, logger: Logger(label: "oxydra.control")) {
            request in
            await Self.answer(
                request, hub: hub, user: user, endpoint: endpoint.value, started: started,
                paths: paths, group: groupBox, channels: channels)
        }.bind()

        // micro_vm: the control protocol also on a TCP port of the VM (the Unix socket is not
        // reachable from the host through a 9p share), for requests that carry the token.
        let remoteControl = prepared.envelope.controlListen.map { listen in
            ControlServer(tcpPort: listen.port, token: listen.token, logger: Logger(label: "oxydra.control")) {
                request in
                await Self.answer(
                    request, hub: hub, user: user, endpoint: endpoint.value, started: started,
                    paths: paths, group: groupBox, channels: channels)
            }
        }
        let boundRemote = try await remoteControl?.bind()

        let shown = prepared.advertise ?? prepared.bind
        let host = shown.host.contains(":") ? "[\(shown.host)]" : shown.host
        let advertisedPort = prepared.advertise?.port
        let application = gateway.service { port in
            let url = "ws://\(host):\(advertisedPort ?? port)\(GatewayProtocol.path)"
            endpoint.value = url
            do {
                try paths.writePrivateFile(url + "\n", to: paths.marker)
            } catch {
                logger.error("cannot write the gateway endpoint marker", metadata: ["error": "\(error)"])
            }
            let elapsed = ContinuousClock.now - started
            logger.info("gateway ready", metadata: ["endpoint": "\(url)", "startup": "\(elapsed)"])
            StandardStreams.write("gateway_endpoint=\(url)\n", to: 1)
        }
        let ttl = Duration.seconds(config.gateway.sessionIdleTTLMinutes * 60)
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                // Named: without a name, service-lifecycle describes each service by reflecting
                // over all of its state (`"\(service)"`), several milliseconds of every start.
                services: [
                    .init(service: application, serviceName: "gateway"),
                    .init(service: control, serviceName: "control"),
                    .init(service: OptionalService(boundRemote), serviceName: "control-tcp"),
                    .init(service: IdleHousekeeping(hub: hub, ttl: ttl), serviceName: "idle-housekeeping"),
                    .init(service: TurnDrainer(hub: hub, logger: logger), serviceName: "turn-drainer"),
                    // Last: stopped first, so a turn the shutdown cancels stays pending for its chat.
                    .init(
                        service: ChannelService(registry: channels, connector: HubConnector(hub: hub)),
                        serviceName: "channels"),
                ], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        await groupBox.set(group)
        defer {
            Self.remove(paths.marker)
            Self.remove(paths.tokenFile)
            logger.info("guest stopped")
        }
        try await group.run()
    }

    static func answer(
        _ request: ControlRequest, hub: SessionHub, user: UserID, endpoint: String,
        started: ContinuousClock.Instant, paths: WorkspacePaths, group: ServiceGroupBox, channels: ChannelRegistry
    ) async -> ControlResponse {
        switch request {
        case .healthCheck:
            let shuttingDown = await hub.isShuttingDown
            var health = GuestHealth(
                userID: user, healthy: !shuttingDown && !endpoint.isEmpty, startupStatus: await hub.startupStatus,
                gatewayEndpoint: endpoint, pid: Int(getpid()),
                uptimeSeconds: Int((ContinuousClock.now - started).components.seconds),
                openSessions: await hub.openSessionCount, activeTurns: await hub.activeTurnCount,
                logDirectory: paths.logs, shuttingDown: shuttingDown)
            health.channels = await channels.health()
            return .health(health)
        case .shutdownUser:
            let active = await hub.activeTurnCount
            Task {
                // Let the reply reach the runner before the socket closes.
                try? await Task.sleep(for: .milliseconds(20))
                await group.triggerShutdown()
            }
            return .shutdownAccepted(activeTurnsCancelled: active)
        case .logs(let role, let tail, let offset):
            return LogReader.read(role: role, directory: paths.logs, tail: tail, offset: offset)
        }
    }

    static func remove(_ path: String) { _ = unlink(path) }

    /// The models of every configured provider that can be used here (it has a key, or is local),
    /// for `/model`; and how to reach one.
    static func modelSwitching(_ config: AgentConfig, prepared: PreparedGuest, selected: ModelDescriptor)
        -> ModelSwitching
    {
        var choices: [ModelInfo] = []
        for (name, entry) in config.providers.registry.sorted(by: { $0.key < $1.key }) {
            guard let type = entry.providerType else { continue }
            let usable =
                CredentialResolver.resolve(
                    entry, type: type, environment: prepared.environment, keySource: prepared.keySource) != nil
                || !CredentialResolver.requiresKey(entry, type: type)
            guard usable else { continue }
            let catalogProvider = entry.catalogProvider ?? type.defaultCatalogProvider
            // A local server's models are whatever it serves: only the configured one is known.
            let local = !CredentialResolver.requiresKey(entry, type: type)
            var models =
                local ? [] : prepared.catalog.allModels.filter { $0.provider == catalogProvider && !$0.deprecated }
            if name == config.selection.provider, !models.contains(where: { $0.id == selected.id }) {
                models.insert(selected, at: 0)
            }
            choices += models.map { SessionHub.info(provider: name, $0) }
        }
        return ModelSwitching(choices: choices) { provider, model in
            var (reached, descriptor) = try ProviderFactory.reach(
                config, provider: provider, model: model, catalog: prepared.catalog, environment: prepared.environment,
                keySource: prepared.keySource)
            // The guest's own model keeps the context window discovered at start.
            if provider == config.selection.provider && model == selected.id.rawValue { descriptor = selected }
            return (reached, descriptor)
        }
    }

    /// Logs the shell sandbox's readiness; if it never comes up, withdraws the shell tool and
    /// reports the guest degraded (in `health` and the next `hello_ack`).
    static func watchShell(
        _ readiness: Task<String?, Never>, socket: String, tools: ToolRegistry, hub: SessionHub, logs: String,
        logger: Logger
    ) async {
        guard let problem = await readiness.value else {
            logger.info("shell sandbox ready", metadata: ["socket": "\(socket)"])
            return
        }
        let reason = shellDown(problem, logs: logs)
        logger.error("the shell sandbox did not come up", metadata: ["problem": "\(problem)"])
        tools.withdrawals.withdraw(ShellExecTool.name, reason: reason.detail)
        await hub.updateStartupStatus { status in
            status.shellAvailable = false
            status.sidecarAvailable = false
            status.degradedReasons.append(reason)
        }
    }

    static func shellDown(_ problem: String, logs: String) -> DegradedReason {
        DegradedReason(
            code: DegradedReason.sidecarConnectionFailed,
            detail: "\(problem); shell tools are disabled (see \(logs)/shell-daemon.log)")
    }

    /// Waits until the shell daemon answers a `spawn_session`; nil when it does (or there is no
    /// shell to wait for), else why not — also as soon as `supervisor` (the sandbox's supervisor
    /// this guest started) has exited.
    static func waitForShell(socket: String?, supervisor: pid_t? = nil, timeout: Duration) async -> String? {
        guard let socket else { return nil }
        let deadline = ContinuousClock.now + timeout
        var last = "the shell daemon did not answer within \(timeout)"
        while ContinuousClock.now < deadline && !Task.isCancelled {
            do {
                let connection = try await ShellDaemonConnection.connect(to: socket)
                defer { connection.close() }
                // The supervisor accepts connections even while the sandbox is not up: bound the wait.
                let reply = try await withThrowingTaskGroup(of: ShellResponse?.self) { group in
                    group.addTask {
                        try await connection.call(
                            ShellRequest(requestID: "ready", .spawnSession(shell: nil, cwd: nil, env: [:])))
                    }
                    group.addTask {
                        try await Task.sleep(for: max(.milliseconds(50), deadline - ContinuousClock.now))
                        return nil
                    }
                    let first = try await group.next() ?? nil
                    group.cancelAll()
                    return first
                }
                guard let reply else {
                    last = "the shell daemon accepted the connection but did not answer within \(timeout)"
                    break
                }
                if case .sessionSpawned = reply.body { return nil }
                last = "the shell daemon answered `\(reply.op)` to a readiness check"
            } catch {
                last = "\(error)"
            }
            if let supervisor {
                var status: Int32 = 0
                if waitpid(supervisor, &status, WNOHANG) == supervisor {
                    let how = status & 0x7f == 0 ? "with status \((status >> 8) & 0xff)" : "on signal \(status & 0x7f)"
                    return "the shell sandbox's supervisor exited \(how) before it served"
                }
            }
            // It listens within tens of milliseconds of its start: look again soon.
            try? await Task.sleep(for: .milliseconds(2))
        }
        return last
    }
}

/// On graceful shutdown: refuse new turns, cancel running ones and wait until their partial state
/// is committed. Listed last, so the service group stops it first.
struct TurnDrainer: Service {
    let hub: SessionHub
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        let cancelled = await hub.shutdown()
        logger.info("turns drained", metadata: ["cancelled": "\(cancelled)"])
    }
}

/// A service that may not exist (the micro_vm control port): without one, it waits for shutdown.
struct OptionalService<Wrapped: Service>: Service {
    let wrapped: Wrapped?
    init(_ wrapped: Wrapped?) { self.wrapped = wrapped }

    func run() async throws {
        if let wrapped { try await wrapped.run() } else { try? await gracefulShutdown() }
    }
}

/// The user's chat channels, on the hub in process, until graceful shutdown.
struct ChannelService: Service {
    let registry: ChannelRegistry
    let connector: HubConnector

    func run() async throws {
        // A service that returns would stop the guest: a channel that is off waits for shutdown too.
        await cancelWhenGracefulShutdown { await registry.run(connector: connector) }
        try? await gracefulShutdown()
    }
}

/// Once a minute: unloads sessions nobody is connected to and that have been idle for `ttl`.
struct IdleHousekeeping: Service {
    let hub: SessionHub
    let ttl: Duration

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: .seconds(60))
                await hub.evictIdleSessions(olderThan: ttl)
            }
        }
    }
}

/// The service group, available to the control handler once it exists.
actor ServiceGroupBox {
    private var group: ServiceGroup?
    private var pending = false

    func set(_ group: ServiceGroup) async {
        self.group = group
        if pending { await group.triggerGracefulShutdown() }
    }

    func triggerShutdown() async {
        guard let group else {
            pending = true
            return
        }
        await group.triggerGracefulShutdown()
    }
}

/// The gateway URL once the server is listening.
final class EndpointBox: Sendable {
    private let storage = Mutex<String>("")
    var value: String {
        get { storage.withLock { $0 } }
        set { storage.withLock { $0 = newValue } }
    }
}

/// Runs async work from synchronous `main` and returns its result.
public enum BlockingBridge {
    public static func run(_ body: @escaping @Sendable () async -> Int32) -> Int32 {
        let done = DispatchSemaphore(value: 0)
        let result = Mutex<Int32>(0)
        Task.detached {
            let code = await body()
            result.withLock { $0 = code }
            done.signal()
        }
        done.wait()
        return result.withLock { $0 }
    }
}
