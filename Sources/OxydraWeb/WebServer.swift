import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import OxydraClient
import OxydraConfig
import OxydraCore
import OxydraRunner
import Synchronization

/// `runner web`: the browser app and its JSON API (`/api/v1`), served by the runner.
///
/// - One origin: the page, its assets (embedded, nothing fetched from elsewhere) and a WebSocket
///   proxy to each user's guest gateway (`/api/v1/users/<id>/ws`), so the guest's token never
///   reaches the page.
/// - Every API request needs the token (`Authorization: Bearer`, for scripts) or the session
///   cookie a login with the token gives (`HttpOnly`, `SameSite=Strict`). State-changing requests
///   and WebSocket upgrades must come from the page's own origin (CSRF); the Host header must be
///   the bind address (DNS rebinding). A strict Content-Security-Policy covers every response.
public struct WebServer: Sendable {
    public struct Settings: Sendable {
        public var bind: GatewayBind
        /// nil: `auth_mode = "disabled"` (loopback only).
        public var token: String?
        /// How `runner start|stop|restart` is run for the guest buttons.
        public var runnerExecutable: String
        public var context: RunnerContext
        /// `--insecure` for guests started from the page (process tier).
        public var insecure: Bool

        public init(bind: GatewayBind, token: String?, runnerExecutable: String, context: RunnerContext, insecure: Bool)
        {
            self.bind = bind
            self.token = token
            self.runnerExecutable = runnerExecutable
            self.context = context
            self.insecure = insecure
        }
    }

    public let settings: Settings
    let logger: Logger
    let sessions = WebSessions()

    public init(settings: Settings, logger: Logger) {
        self.settings = settings
        self.logger = logger
    }

    /// The Hummingbird application; `onRunning` receives the bound port.
    public func application(onRunning: @escaping @Sendable (Int) async -> Void) -> some ApplicationProtocol {
        let router = Router(context: BasicWebSocketRequestContext.self)
        let port = Mutex<Int>(settings.bind.port)
        let guardrails = WebGuard(
            bind: settings.bind, token: settings.token, sessions: sessions, port: { port.withLock { $0 } })
        let api = WebAPI(settings: settings, logger: logger)
        router.middlewares.add(SecurityHeaders())
        for asset in WebAssets.all {
            router.get(RouterPath(asset.path)) { request, _ -> Response in
                try guardrails.checkHost(request)
                return Response(
                    status: .ok,
                    headers: [.contentType: asset.contentType, .cacheControl: "no-cache"],
                    body: ResponseBody(byteBuffer: ByteBuffer(string: asset.body)))
            }
        }
        router.post("/api/v1/login") { request, _ -> Response in
            try guardrails.checkHost(request)
            try guardrails.checkOrigin(request, required: true)
            let body = try await WebAPI.json(request)
            guard let presented = body["token"]?.stringValue, guardrails.tokenMatches(presented) else {
                throw HTTPError(.unauthorized, message: "wrong token")
            }
            let id = sessions.open()
            var response = WebAPI.reply(["ok": true])
            response.headers[.setCookie] = "\(WebGuard.cookieName)=\(id); HttpOnly; SameSite=Strict; Path=/"
            return response
        }
        router.post("/api/v1/logout") { request, _ -> Response in
            try guardrails.check(request, changesState: true)
            try WebAPI.requireJSON(request)
            if let id = WebGuard.cookie(request) { sessions.close(id) }
            var response = WebAPI.reply(["ok": true])
            response.headers[.setCookie] = "\(WebGuard.cookieName)=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"
            return response
        }
        router.get("/api/v1/meta") { request, _ -> Response in
            try guardrails.check(request, changesState: false)
            return WebAPI.reply(api.meta())
        }
        router.get("/api/v1/status") { request, _ -> Response in
            try guardrails.check(request, changesState: false)
            return WebAPI.reply(await api.status())
        }
        router.post("/api/v1/users/:user/:action") { request, context -> Response in
            try guardrails.check(request, changesState: true)
            try WebAPI.requireJSON(request)
            let user = try context.parameters.require("user")
            let action = try context.parameters.require("action")
            return try await api.control(user: user, action: action)
        }
        router.get("/api/v1/users/:user/usage") { request, context -> Response in
            try guardrails.check(request, changesState: false)
            let days = request.uri.queryParameters.get("days").flatMap { Int($0) } ?? 7
            return try await api.usage(user: try context.parameters.require("user"), days: days)
        }
        router.get("/api/v1/users/:user/config") { request, context -> Response in
            try guardrails.check(request, changesState: false)
            return try api.config(user: try context.parameters.require("user"))
        }
        let configAPI = WebConfigAPI(settings: settings)
        let onboarding = WebOnboarding(settings: settings)
        router.get("/api/v1/config") { request, _ -> Response in
            try guardrails.check(request, changesState: false)
            return WebAPI.reply(configAPI.documents())
        }
        router.get("/api/v1/config/file") { request, _ -> Response in
            try guardrails.check(request, changesState: false)
            guard let id = request.uri.queryParameters.get("id") else {
                throw HTTPError(.badRequest, message: "`id` is required")
            }
            return try configAPI.read(String(id))
        }
        router.post("/api/v1/config/file") { request, _ -> Response in
            try guardrails.check(request, changesState: true)
            return try configAPI.save(try await WebAPI.json(request))
        }
        router.post("/api/v1/config/users") { request, _ -> Response in
            try guardrails.check(request, changesState: true)
            return try configAPI.addUser(try await WebAPI.json(request))
        }
        router.get("/api/v1/onboarding") { request, _ -> Response in
            try guardrails.check(request, changesState: false)
            return WebAPI.reply(onboarding.status())
        }
        router.post("/api/v1/onboarding/test") { request, _ -> Response in
            try guardrails.check(request, changesState: true)
            return try await onboarding.test(try await WebAPI.json(request))
        }
        router.post("/api/v1/onboarding/save") { request, _ -> Response in
            try guardrails.check(request, changesState: true)
            return try onboarding.save(try await WebAPI.json(request))
        }
        router.get("/api/v1/users/:user/logs") { request, context -> Response in
            try guardrails.check(request, changesState: false)
            let query = request.uri.queryParameters
            return try api.logs(
                user: try context.parameters.require("user"), role: query.get("role").map { String($0) } ?? "runtime",
                tail: query.get("tail").flatMap { Int($0) } ?? 200, offset: query.get("offset").flatMap { Int($0) })
        }
        router.ws(
            RouterPath("/api/v1/users/:user/ws"),
            shouldUpgrade: { request, context in
                try guardrails.check(request, changesState: true)
                _ = try api.target(try context.parameters.require("user"))
                return .upgrade([:])
            },
            onUpgrade: { inbound, outbound, context in
                guard let user = context.requestContext.parameters.get("user") else { return }
                await api.proxy(user: user, inbound: inbound, outbound: outbound)
            })
        return Application(
            router: router,
            server: .http1WebSocketUpgrade(
                webSocketRouter: router,
                configuration: .init(
                    ws: .init(
                        maxFrameSize: GatewayProtocol.maxClientFrameBytes, autoPing: .enabled(timePeriod: .seconds(30)))
                )
            ),
            configuration: ApplicationConfiguration(
                address: .hostname(settings.bind.host, port: settings.bind.port), serverName: "oxydra-web"),
            onServerRunning: { channel in
                let bound = channel.localAddress?.port ?? 0
                port.withLock { $0 = bound }
                await onRunning(bound)
            },
            logger: logger)
    }
}

/// Headers on every response: a strict Content-Security-Policy (only this origin's scripts, styles
/// and connections; no inline script, no framing), no MIME sniffing, no referrer.
struct SecurityHeaders<Context: RequestContext>: RouterMiddleware {
    static var policy: String {
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            + "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as HTTPError {
            response = WebAPI.problem(error.status, error.body ?? "\(error.status)")
        }
        response.headers[HTTPField.Name("Content-Security-Policy")!] = Self.policy
        response.headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        response.headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        response.headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        return response
    }
}

/// Logged-in browsers: random session ids held in memory (a restart logs everyone out).
final class WebSessions: Sendable {
    private let ids = Mutex<Set<String>>([])

    func open() -> String {
        let id = GatewayProtocol.newToken()
        ids.withLock { _ = $0.insert(id) }
        return id
    }

    func close(_ id: String) { ids.withLock { _ = $0.remove(id) } }

    func contains(_ id: String) -> Bool { ids.withLock { $0.contains(id) } }
}

/// The checks of every request.
struct WebGuard: Sendable {
    static let cookieName = "oxydra_session"
    let bind: GatewayBind
    let token: String?
    let sessions: WebSessions
    let port: @Sendable () -> Int

    /// Host, then the token or the session cookie, then (for state changes) the Origin.
    func check(_ request: Request, changesState: Bool) throws {
        try checkHost(request)
        var cookieAuth = false
        if let token {
            if let presented = Self.bearer(request) {
                guard tokenMatches(presented) else { throw HTTPError(.unauthorized, message: "wrong bearer token") }
            } else if let id = Self.cookie(request), sessions.contains(id) {
                cookieAuth = true
            } else {
                throw HTTPError(
                    .unauthorized, message: "log in with the token (or send Authorization: Bearer <token>)")
            }
        } else {
            cookieAuth = true
        }
        // A browser always sends Origin on POST and WebSocket upgrades; a cookie-authenticated
        // state change without it, or from another origin, is a cross-site request.
        if changesState { try checkOrigin(request, required: cookieAuth) }
    }

    func checkOrigin(_ request: Request, required: Bool) throws {
        guard let origin = request.headers[.origin] else {
            if required { throw HTTPError(.forbidden, message: "missing Origin header") }
            return
        }
        let lowered = origin.lowercased()
        // WebSocket client libraries send their target as the origin (`ws://host`); a browser page's
        // origin is never ws:// or wss://, so such a request is not a cross-site one.
        if lowered.hasPrefix("ws://") || lowered.hasPrefix("wss://") { return }
        guard ownOrigins.contains(lowered) else {
            throw HTTPError(.forbidden, message: "origin `\(origin)` is not this server's")
        }
    }

    func tokenMatches(_ presented: String) -> Bool {
        guard let token else { return true }
        return GatewayProtocol.tokensEqual(presented, token)
    }

    /// The Host must be the address the server is bound to (with its port), or `localhost` on a
    /// loopback bind: a page whose DNS name was rebound to this address is refused.
    func checkHost(_ request: Request) throws {
        guard !request.headers.contains(where: { $0.name.canonicalName == "host" }) else {
            throw HTTPError(.badRequest, message: "more than one Host header")
        }
        let host = (request.head.authority ?? "").lowercased()
        guard authorities.contains(host) else {
            throw HTTPError(.forbidden, message: "host `\(host)` is not this server's address")
        }
    }

    private var authorities: Set<String> {
        let port = port()
        var names: Set<String> = ["\(bind.host.lowercased()):\(port)"]
        if bind.host.contains(":") { names.insert("[\(bind.host.lowercased())]:\(port)") }
        if bind.isLoopback { names.formUnion(["127.0.0.1:\(port)", "localhost:\(port)", "[::1]:\(port)"]) }
        return names
    }

    private var ownOrigins: Set<String> { Set(authorities.map { "http://" + $0 }) }

    static func bearer(_ request: Request) -> String? {
        let values = request.headers[values: .authorization]
        guard values.count == 1, values[0].hasPrefix("Bearer ") else { return nil }
        return String(values[0].dropFirst(7))
    }

    static func cookie(_ request: Request) -> String? {
        for header in request.headers[values: .cookie] {
            for part in header.split(separator: ";") {
                let pair = part.trimmed
                if pair.hasPrefix(cookieName + "=") { return String(pair.dropFirst(cookieName.count + 1)) }
            }
        }
        return nil
    }
}
