import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
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
        /// How long an HTTP connection may go without a request before it is closed (until it
        /// becomes a WebSocket, which pings instead).
        public var idleTimeout: Duration

        public init(
            bind: GatewayBind, tokens: [String], allowedOrigins: [String] = [], clientBufferFrames: Int = 8192,
            idleTimeout: Duration = .seconds(30)
        ) {
            precondition(!tokens.isEmpty && tokens.allSatisfy { $0.utf8.count >= 16 }, "the gateway needs a token")
            self.bind = bind
            self.tokens = tokens
            self.allowedOrigins = allowedOrigins
            self.clientBufferFrames = clientBufferFrames
            self.idleTimeout = idleTimeout
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

    /// The server as a guest runs it; `onRunning` receives the bound port. It serves until the
    /// service group shuts down, then stops accepting and closes every WebSocket with 1000.
    public func service(onRunning: @escaping @Sendable (Int) async -> Void) -> some Service {
        GatewayService(server: self, onRunning: onRunning)
    }

    /// A connection's pipeline: HTTP/1.1 with the WebSocket upgrade of `/ws` (decided on the
    /// connection's loop, with ``RequestGuard``'s checks); every request that is not upgraded goes
    /// to ``GatewayHTTPHandler``, which answers `/healthz` and says why an upgrade was refused.
    func configure(_ channel: any NIOCore.Channel, guardrails: RequestGuard, connections: OpenConnections) throws {
        let hub = self.hub
        let logger = self.logger
        let bufferFrames = settings.clientBufferFrames
        let upgrader = NIOWebSocketServerUpgrader(
            maxFrameSize: GatewayProtocol.maxClientFrameBytes, automaticErrorHandling: true,
            shouldUpgrade: { channel, head in
                let upgrade = head.path == GatewayProtocol.path && guardrails.refusal(of: head) == nil
                return channel.eventLoop.makeSucceededFuture(upgrade ? HTTPHeaders() : nil)
            },
            upgradePipelineHandler: { channel, _ in
                let loop = channel.eventLoop
                do {
                    // Frames must not reach the HTTP handler; the WebSocket has its own keep-alive.
                    channel.pipeline.syncOperations.removeHandler(name: GatewayHTTPHandler.name, promise: nil)
                    channel.pipeline.syncOperations.removeHandler(name: GatewayHTTPHandler.idleName, promise: nil)
                    try channel.pipeline.syncOperations.addHandler(
                        GatewaySocketHandler { socket in
                            connections.add(socket)
                            // The connection's tasks run on this loop from their first job.
                            let executor = EventLoopTaskExecutor(loop)
                            Task(executorPreference: executor) {
                                await GatewayConnection(hub: hub, logger: logger, bufferFrames: bufferFrames)
                                    .serve(socket, on: executor)
                                connections.remove(socket)
                            }
                        })
                    return loop.makeSucceededVoidFuture()
                } catch {
                    return loop.makeFailedFuture(error)
                }
            })
        // A connection that sends no request (or stays idle between requests) for this long is
        // closed: open sockets are a resource any local process could otherwise hold for ever.
        try channel.pipeline.syncOperations.addHandler(
            IdleStateHandler(readTimeout: TimeAmount(settings.idleTimeout)), name: GatewayHTTPHandler.idleName)
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(
            withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in }), withErrorHandling: true)
        try channel.pipeline.syncOperations.addHandler(
            GatewayHTTPHandler(hub: hub, guardrails: guardrails), name: GatewayHTTPHandler.name)
    }
}

/// The gateway's listening socket, as a service of the guest's service group.
struct GatewayService: Service {
    let server: GatewayServer
    let onRunning: @Sendable (Int) async -> Void

    func run() async throws {
        let settings = server.settings
        // Known once the port is bound (requests come only after): made once, not per request.
        let authorities = Mutex(RequestGuard.loopbackAuthorities(host: settings.bind.host, port: settings.bind.port))
        let guardrails = RequestGuard(settings: settings, loopbackAuthorities: { authorities.withLock { $0 } })
        let connections = OpenConnections()
        let server = self.server
        let listener = try await ServerBootstrap(group: NIOSingletons.posixEventLoopGroup)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // IPPROTO_TCP's TCP_NODELAY (`.socketOption(.tcp_nodelay)` would be SOL_SOCKET's SO_DEBUG).
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                do {
                    try server.configure(channel, guardrails: guardrails, connections: connections)
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
            .bind(host: server.settings.bind.host, port: server.settings.bind.port).get()
        let bound = listener.localAddress?.port ?? 0
        authorities.withLock { $0 = RequestGuard.loopbackAuthorities(host: settings.bind.host, port: bound) }
        await onRunning(bound)
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                try? await listener.closeFuture.get()
            } onGracefulShutdown: {
                listener.close(promise: nil)
            }
        } onCancel: {
            listener.close(promise: nil)
        }
        connections.closeAll()
    }
}

/// The WebSocket connections open now, to close when the gateway stops.
final class OpenConnections: Sendable {
    private let sockets = Mutex<[ObjectIdentifier: GatewaySocket]>([:])

    func add(_ socket: GatewaySocket) { sockets.withLock { $0[ObjectIdentifier(socket)] = socket } }
    func remove(_ socket: GatewaySocket) { sockets.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(socket)) } }

    func closeAll() {
        for socket in sockets.withLock({ Array($0.values) }) {
            socket.close(.normalClosure, reason: "the gateway is stopping")
        }
    }
}

/// Why a request is refused: its status and a sentence for the client.
struct Refusal: Error, Equatable {
    let status: HTTPResponseStatus
    let message: String
}

/// Checks on every request: the token, the Host header on loopback binds (DNS rebinding), and the
/// Origin header (a web page must not drive a local agent).
struct RequestGuard: Sendable {
    let settings: GatewayServer.Settings
    /// `host:port` forms naming this gateway on a loopback bind (``loopbackAuthorities(host:port:)``).
    let loopbackAuthorities: @Sendable () -> Set<String>

    /// Why a WebSocket request must be refused, or nil.
    func refusal(of head: HTTPRequestHead) -> Refusal? {
        if let refusal = hostRefusal(of: head) { return refusal }
        let headers = head.headers["authorization"]
        let presented = headers.count == 1 && headers[0].hasPrefix("Bearer ") ? String(headers[0].dropFirst(7)) : ""
        // Compare with every token (no early exit), so timing does not tell which one was close.
        var matched = false
        for token in settings.tokens where GatewayProtocol.tokensEqual(presented, token) { matched = true }
        guard matched else {
            return Refusal(
                status: .unauthorized, message: "missing or wrong bearer token (Authorization: Bearer <token>)")
        }
        let origins = head.headers["origin"]
        if let origin = origins.first, origins.count > 1 || !originAllowed(origin) {
            return Refusal(
                status: .forbidden,
                message: "origin `\(origin)` is not allowed; add it to gateway.allowed_origins to let that page connect"
            )
        }
        return nil
    }

    /// On a loopback bind the Host must name a loopback address with our port, so a page whose DNS
    /// name was rebound to 127.0.0.1 is refused; two Host headers are refused everywhere (proxies
    /// and servers may each read a different one).
    func hostRefusal(of head: HTTPRequestHead) -> Refusal? {
        let hosts = head.headers["host"]
        guard hosts.count <= 1 else { return Refusal(status: .badRequest, message: "more than one Host header") }
        guard settings.bind.isLoopback else { return nil }
        let host = hosts.first ?? ""
        guard loopbackAuthorities().contains(host.lowercased()) else {
            return Refusal(status: .forbidden, message: "host `\(host)` is not this gateway's loopback address")
        }
        return nil
    }

    static func loopbackAuthorities(host: String, port: Int) -> Set<String> {
        ["127.0.0.1:\(port)", "localhost:\(port)", "[::1]:\(port)", "\(host):\(port)"]
    }

    private func originAllowed(_ origin: String) -> Bool {
        let origin = origin.lowercased()
        if settings.allowedOrigins.contains(where: { $0.lowercased() == origin }) { return true }
        // WebSocket client libraries send their target as the origin; a web page's origin is never
        // ws:// or wss://, so these cannot come from a browser.
        if origin.hasPrefix("ws://") || origin.hasPrefix("wss://") { return true }
        guard settings.bind.isLoopback else { return false }
        return loopbackAuthorities().contains { origin == "http://\($0)" || origin == "https://\($0)" }
    }
}
