import Foundation
import Hummingbird
import Logging
import OxydraClient
import OxydraConfig
import OxydraCore
import OxydraRunner
import OxydraSandbox
import OxydraTesting
import OxydraWeb
import ServiceLifecycle

/// `runner web`: what the page weighs, how long the server takes from start to the first page
/// served (floor: a bare Hummingbird application serving the same bytes from one route, started
/// the same way), and a streamed turn through the web server's WebSocket proxy against the same
/// turn straight to the guest's gateway (same guest, same scripted 50-chunk reply, alternated).
func benchmarkWeb() async throws {
    let server = try await ScriptedModelServer.start()
    let directory = try TemporaryDirectory(prefix: "oxydra-bench-web")
    defer { directory.remove() }
    try directory.write(server.agentConfig(""), to: ".oxydra/agent.toml")
    try directory.write(SeedConfig.runnerTOML, to: ".oxydra/runner.toml")
    try directory.write(SeedConfig.aliceTOML, to: ".oxydra/users/alice.toml")
    _ = try directory.createDirectory("home")
    _ = try directory.createDirectory("etc")
    let environment = [
        "HOME": directory.path + "/home", "OXYDRA_SYSTEM_CONFIG_DIR": directory.path + "/etc", "PATH": "/usr/bin:/bin",
    ]
    let workspace = directory.path + "/.oxydra/workspaces/alice"
    let guest = try GuestProcess.start(
        FilePaths.parent(ExecutableLocator.selfPath() ?? "") + "/oxydra-vm", workspace: workspace,
        directory: directory.path, environment: environment)
    defer { guest.stop() }
    var logger = Logger(label: "bench.web")
    logger.logLevel = .critical
    let token = GatewayProtocol.newToken()
    let context = RunnerContext(
        configPath: directory.path + "/.oxydra/runner.toml", environment: environment,
        workingDirectory: directory.path)

    func serve<App: ApplicationProtocol>(_ make: (@escaping @Sendable (Int) async -> Void) -> App) async throws
        -> (port: Int, group: ServiceGroup, task: Task<Void, any Error>, startup: Double)
    {
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let begin = clock.now
        let application = make { continuation.yield($0) }
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(services: [.init(service: application)], logger: logger))
        let task = Task { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw TestSupportError("no port") }
        let page = try fetch(port, "/")
        precondition(page.contains("<title>Oxydra</title>"))
        return (port, group, task, seconds(clock.now - begin))
    }

    // Page weight, as served.
    let web = WebServer(
        settings: WebServer.Settings(
            bind: GatewayBind.parse("127.0.0.1:0").bind!, token: token, runnerExecutable: "/bin/false",
            context: context, insecure: true), logger: logger)
    let running = try await serve { web.application(onRunning: $0) }
    let html = try fetch(running.port, "/").utf8.count
    let css = try fetch(running.port, "/app.css").utf8.count
    let js = try fetch(running.port, "/app.js").utf8.count
    print(
        "web: page weight \(html + css + js) bytes (HTML \(html), CSS \(css), JS \(js); targets ≤ 150 KB transferred, "
            + "JS+CSS ≤ 100 KB: \(css + js) bytes), no other origin")

    // Start to first page served.
    var starts: [Double] = []
    var floors: [Double] = []
    let index = try fetch(running.port, "/")
    for _ in 0..<7 {
        let started = try await serve { web.application(onRunning: $0) }
        starts.append(started.startup)
        await started.group.triggerGracefulShutdown()
        _ = try? await started.task.value
        let bare = try await serve { onRunning in
            let router = Router()
            router.get("/") { _, _ in index }
            return Application(
                router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                onServerRunning: { await onRunning($0.localAddress?.port ?? 0) }, logger: logger)
        }
        floors.append(bare.startup)
        await bare.group.triggerGracefulShutdown()
        _ = try? await bare.task.value
    }
    print(
        "web: start to first page served min/median/max \(spread(starts, scale: 1000)) ms; a bare Hummingbird "
            + "application serving the same page (floor) \(spread(floors, scale: 1000)) ms; ratio of medians "
            + "\(String(format2: median(starts) / median(floors)))x (the runner process itself adds its exec)")

    // A streamed turn through the proxy vs straight to the gateway.
    var reply = ScriptedReply()
    reply.text = (0..<50).map { "tok\($0) " }
    func turns(_ endpoint: String, _ token: String, count: Int) async throws -> [Double] {
        let client = GatewayClient(endpoint: endpoint, token: token)
        defer { client.close() }
        client.send(.hello(.init(requestID: "h", userID: "alice", createNewSession: true, client: "bench")))
        var iterator = client.frames.makeAsyncIterator()
        while let frame = await iterator.next() { if case .helloAck = frame { break } }
        var times: [Double] = []
        for index in 0..<count {
            server.enqueue(reply)
            let begin = clock.now
            client.send(.sendTurn(.init(requestID: "r\(index)", turnID: TurnID("t\(index)"), prompt: "go")))
            while let frame = await iterator.next() {
                if case .turnCompleted = frame { break }
                if case .error(let info) = frame { throw TestSupportError(info.message) }
            }
            times.append(seconds(clock.now - begin))
        }
        return times
    }
    var direct: [Double] = []
    var proxied: [Double] = []
    let proxy = "ws://127.0.0.1:\(running.port)/api/v1/users/alice/ws"
    _ = try await turns(guest.endpoint.endpoint, guest.endpoint.token, count: 5)  // warm-up
    _ = try await turns(proxy, token, count: 5)
    for _ in 0..<7 {
        direct.append(median(try await turns(guest.endpoint.endpoint, guest.endpoint.token, count: 10)))
        proxied.append(median(try await turns(proxy, token, count: 10)))
    }
    print(
        "web: a streamed 50-chunk turn through the web proxy min/median/max \(spread(proxied, scale: 1000)) ms; "
            + "straight to the gateway (floor) \(spread(direct, scale: 1000)) ms; ratio of medians "
            + "\(String(format2: median(proxied) / median(direct)))x (target ≤ 1.2x)")
    await running.group.triggerGracefulShutdown()
    _ = try? await running.task.value
    try await server.shutdown()
}

/// A GET over loopback; the body.
private func fetch(_ port: Int, _ path: String) throws -> String {
    try LoopbackHTTP.request(port: port, "GET", path).body
}
