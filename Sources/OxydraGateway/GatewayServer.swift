import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import OxydraCore
import ServiceLifecycle
import Synchronization

/// The guest's HTTP + WebSocket server: `GET /ws` (protocol v1, docs/protocol.md) and `GET /healthz`.
public struct GatewayServer: Sendable {
    public struct Settings: Sendable {
        public var bind: GatewayBind
        /// Every WebSocket client must send `Authorization: Bearer <one of these>`, also on loopback:
        /// the guest's own token (created at each start, readable only by its user) and, for remote
        /// clients, the one named by `gateway.auth_token_env`.
        public var tokens: [String]
        public var allowedOrigins: [String]
        /// Frames buffered per client before a slow reader is disconnected.
        public var clientBufferFrames: Int

        public init(
            bind: GatewayBind, tokens: [String], allowedOrigins: [String] = [], clientBufferFrames: Int = 8192
        ) {
            precondition(!tokens.isEmpty && tokens.allSatisfy { $0.utf8.count >= 16 }, "the gateway needs a token")
            self.bind = bind
            self.tokens = tokens
            self.allowedOrigins = allowedOrigins
            self.clientBufferFrames = clientBufferFrames
        }
    }

    public let hub: SessionHub
    public let settings: Settings
    let logger: Logger

    public init(hub: SessionHub, settings: Settings, logger: Logger) {
        self.hub = hub
        self.settings = settings
        self.logger = logger
    }

    /// The application as a guest runs it: its tasks on the loops of their sockets
    /// (``LoopAffineService``); `onRunning` receives the bound port.
    public func service(onRunning: @escaping @Sendable (Int) async -> Void) -> some Service {
        LoopAffineService(application(onRunning: onRunning))
    }

    /// The Hummingbird application; `onRunning` receives the bound port.
    public func application(onRunning: @escaping @Sendable (Int) async -> Void) -> some ApplicationProtocol {
        let router = Router(context: GatewayRequestContext.self)
        let port = Mutex<Int>(settings.bind.port)
        let guardrails = RequestGuard(settings: settings, port: { port.withLock { $0 } })
        let hub = self.hub
        let logger = self.logger
        let bufferFrames = settings.clientBufferFrames
        // Open without a token, so it says nothing about whose guest this is.
        router.get("/healthz") { request, _ -> Response in
            try guardrails.checkHost(request)
            let body = JSONWriter.text([
                "status": .string(await hub.isShuttingDown ? "shutting_down" : "ok"),
                "protocol_version": .integer(GatewayProtocol.version),
            ])
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
        }
        let serve: @Sendable (WebSocketInboundStream, WebSocketOutboundWriter, any EventLoop) async -> Void = {
            await GatewayConnection(hub: hub, logger: logger, bufferFrames: bufferFrames).serve($0, $1, on: $2)
        }
        // Upgrades never reach this route (the server below decides them, with the same checks);
        // it answers a plain request for the WebSocket path, 401/403 saying why an upgrade would
        // be refused.
        router.ws(
            RouterPath(GatewayProtocol.path),
            shouldUpgrade: { request, _ in
                try guardrails.check(request)
                return .upgrade([:])
            },
            onUpgrade: { inbound, outbound, context in await serve(inbound, outbound, context.requestContext.eventLoop)
            })
        return Application(
            router: router,
            // Upgrades are decided here, on the connection's event loop: the router-based upgrade
            // of hummingbird-websocket runs its check in a task of its own on Swift's global pool
            // (a hop to another thread and back per connection). The checks are the route's; a
            // refused upgrade is answered 400, as hummingbird-websocket answers every refusal.
            server: HTTPServerBuilder { responder in
                HTTP1WebSocketUpgradeChannel(
                    responder: responder,
                    configuration: .init(
                        ws: .init(
                            maxFrameSize: GatewayProtocol.maxClientFrameBytes,
                            autoPing: .enabled(timePeriod: .seconds(30)))),
                    shouldUpgrade: { head, channel, _ in
                        let request = Request(head: head, body: RequestBody(buffer: ByteBuffer()))
                        guard request.uri.path == GatewayProtocol.path, (try? guardrails.check(request)) != nil else {
                            return .dontUpgrade
                        }
                        let loop = channel.eventLoop
                        return .upgrade([:]) { inbound, outbound, _ in await serve(inbound, outbound, loop) }
                    })
            },
            configuration: ApplicationConfiguration(
                address: .hostname(settings.bind.host, port: settings.bind.port), serverName: "oxydra-gateway"),
            onServerRunning: { channel in
                let bound = channel.localAddress?.port ?? 0
                port.withLock { $0 = bound }
                await onRunning(bound)
            },
            logger: logger)
    }
}

/// Hummingbird's WebSocket request context plus the connection's event loop, which the
/// connection's work then runs on (``EventLoopTaskExecutor``).
struct GatewayRequestContext: RequestContext, WebSocketRequestContext {
    var coreContext: CoreRequestContextStorage
    let webSocket: WebSocketHandlerReference<Self>
    let eventLoop: any EventLoop

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        webSocket = .init()
        eventLoop = source.channel.eventLoop
    }
}

/// Checks on every request: the token, the Host header on loopback binds (DNS rebinding), and the
/// Origin header (a web page must not drive a local agent).
struct RequestGuard: Sendable {
    let settings: GatewayServer.Settings
    let port: @Sendable () -> Int

    func check(_ request: Request) throws {
        try checkHost(request)
        let headers = request.headers[values: .authorization]
        let presented = headers.count == 1 && headers[0].hasPrefix("Bearer ") ? String(headers[0].dropFirst(7)) : ""
        // Compare with every token (no early exit), so timing does not tell which one was close.
        var matched = false
        for token in settings.tokens where GatewayProtocol.tokensEqual(presented, token) { matched = true }
        guard matched else {
            throw HTTPError(.unauthorized, message: "missing or wrong bearer token (Authorization: Bearer <token>)")
        }
        if let origin = request.headers[.origin], !originAllowed(origin) {
            throw HTTPError(
                .forbidden,
                message: "origin `\(origin)` is not allowed; add it to gateway.allowed_origins to let that page connect"
            )
        }
    }

    /// On a loopback bind the Host must name a loopback address with our port, so a page whose DNS
    /// name was rebound to 127.0.0.1 is refused.
    func checkHost(_ request: Request) throws {
        // The first Host header becomes the authority; one left among the fields means there were
        // two, which proxies and servers may each read differently.
        guard !request.headers.contains(where: { $0.name.canonicalName == "host" }) else {
            throw HTTPError(.badRequest, message: "more than one Host header")
        }
        guard settings.bind.isLoopback else { return }
        let host = request.head.authority ?? ""
        guard loopbackAuthorities.contains(host.lowercased()) else {
            throw HTTPError(.forbidden, message: "host `\(host)` is not this gateway's loopback address")
        }
    }

    private var loopbackAuthorities: Set<String> {
        let port = port()
        return ["127.0.0.1:\(port)", "localhost:\(port)", "[::1]:\(port)", "\(settings.bind.host):\(port)"]
    }

    private func originAllowed(_ origin: String) -> Bool {
        let origin = origin.lowercased()
        if settings.allowedOrigins.contains(where: { $0.lowercased() == origin }) { return true }
        // WebSocket client libraries send their target as the origin; a web page's origin is never
        // ws:// or wss://, so these cannot come from a browser.
        if origin.hasPrefix("ws://") || origin.hasPrefix("wss://") { return true }
        guard settings.bind.isLoopback else { return false }
        return loopbackAuthorities.contains { origin == "http://\($0)" || origin == "https://\($0)" }
    }
}
