import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket
import OxydraClient
import OxydraConfig
import OxydraCore
import OxydraRunner
import Subprocess

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

#if canImport(Glibc)
    import Glibc
#endif

/// The JSON API behind the page: `{"data": …}` or `{"error": {"code", "message"}}`.
struct WebAPI: Sendable {
    let settings: WebServer.Settings
    let logger: Logger

    // MARK: envelopes

    static func reply(_ data: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: JSONWriter.text(["data": data]))))
    }

    static func problem(_ status: HTTPResponse.Status, _ message: String) -> Response {
        let code =
            switch status.code {
            case 400: "bad_request"
            case 401: "unauthorized"
            case 403: "forbidden"
            case 404: "not_found"
            case 409: "conflict"
            case 415: "unsupported_media_type"
            case 422: "invalid"
            case 502: "guest_error"
            default: "error"
            }
        return Response(
            status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: ResponseBody(
                byteBuffer: ByteBuffer(
                    string: JSONWriter.text(["error": ["code": .string(code), "message": .string(message)]]))))
    }

    /// State changes take JSON only: a cross-site HTML form cannot send `application/json`.
    static func requireJSON(_ request: Request) throws {
        guard request.headers[.contentType]?.lowercased().hasPrefix("application/json") == true else {
            throw HTTPError(.unsupportedMediaType, message: "send Content-Type: application/json")
        }
    }

    /// A JSON request body (at most 64 KiB; `Content-Type: application/json`).
    static func json(_ request: Request) async throws -> JSONValue {
        try requireJSON(request)
        let buffer = try await request.body.collect(upTo: 64 << 10)
        do {
            return try JSONValue(parsing: String(buffer: buffer))
        } catch {
            throw HTTPError(.badRequest, message: "the body is not JSON: \(error)")
        }
    }

    // MARK: users and guests

    var runnerConfig: LoadedRunnerConfig {
        RunnerConfigLoader.load(path: settings.context.configPath, display: settings.context.display)
    }

    /// The user's target; 404 for a user the runner config does not list.
    func target(_ user: String) throws -> UserTarget {
        guard runnerConfig.config.users[user] != nil else {
            throw HTTPError(.notFound, message: "no user `\(user)` in the runner config")
        }
        var context = settings.context
        context.requestedUser = user
        switch UserTarget.resolve(context) {
        case .success(let target): return target
        case .failure(let output): throw HTTPError(.internalServerError, message: output.standardError.trimmed)
        }
    }

    func meta() -> JSONValue {
        let config = runnerConfig
        return [
            "version": .string(OxydraVersion.current), "config_path": .string(settings.context.configPath),
            "users": .array(config.config.users.keys.sorted().map(JSONValue.string)),
            "problems": .array(config.issues.map { .string($0.description) }),
        ]
    }

    /// Every user's guest: running or not, and its health.
    func status() async -> JSONValue {
        var users: [JSONValue] = []
        for user in runnerConfig.config.users.keys.sorted() {
            var entry: [String: JSONValue] = ["user_id": .string(user), "running": false]
            if let target = try? target(user),
                case .health(let health)? = try? ControlClient.request(
                    .healthCheck, socket: target.controlSocket, timeout: .seconds(2))
            {
                entry["running"] = true
                entry["health"] = health.json
            }
            users.append(.object(entry))
        }
        return ["users": .array(users)]
    }

    /// `POST /api/v1/users/<id>/start|stop|restart`: runs `runner --config C --user U [--insecure]
    /// start|stop|restart` (the runner's own executable), so a started guest is supervised exactly
    /// as from the command line.
    func control(user: String, action: String) async throws -> Response {
        _ = try target(user)
        guard ["start", "stop", "restart"].contains(action) else {
            throw HTTPError(.notFound, message: "unknown action `\(action)`; use start, stop or restart")
        }
        var arguments = ["--config", settings.context.configPath, "--user", user]
        if settings.insecure && action != "stop" { arguments.append("--insecure") }
        arguments.append(action)
        var environment: [Subprocess.Environment.Key: String] = [:]
        for (key, value) in settings.context.environment {
            environment[Subprocess.Environment.Key(stringLiteral: key)] = value
        }
        let result = try await Subprocess.run(
            .path(FilePath(settings.runnerExecutable)), arguments: Arguments(arguments),
            environment: .custom(environment), workingDirectory: FilePath(settings.context.workingDirectory),
            output: .string(limit: 1 << 20), error: .string(limit: 1 << 20))
        let code: Int
        switch result.terminationStatus {
        case .exited(let status): code = Int(status)
        case .signaled(let signal): code = 128 + Int(signal)
        }
        logger.info("guest \(action)", metadata: ["user": "\(user)", "exit": "\(code)"])
        let body: JSONValue = [
            "exit_code": .integer(code), "output": .string(result.standardOutput),
            "error": .string(result.standardError),
        ]
        return Self.reply(body, status: code == 0 ? .ok : .badGateway)
    }

    /// `GET /api/v1/users/<id>/logs?role=runtime&tail=200&offset=N`: log lines from the
    /// workspace's `logs/` (the guest may be stopped); `next_offset` continues a follow.
    func logs(user: String, role: String, tail: Int, offset: Int?) throws -> Response {
        guard LogReader.roles.contains(role) else {
            throw HTTPError(.badRequest, message: "unknown role `\(role)`; use runtime, stderr or sidecar")
        }
        guard (1...5000).contains(tail) else { throw HTTPError(.badRequest, message: "tail must be 1…5000") }
        let target = try target(user)
        switch LogReader.read(role: role, directory: target.logs, tail: tail, offset: offset) {
        case .logs(let lines, let next, _):
            return Self.reply(["lines": .array(lines.map(JSONValue.string)), "next_offset": .integer(next)])
        case .failure(let message):
            throw HTTPError(.notFound, message: message)
        default:
            throw HTTPError(.internalServerError, message: "unexpected log answer")
        }
    }

    /// `GET /api/v1/users/<id>/config`: the effective agent configuration for the user with the layer
    /// each value came from (secrets shown as `********`), and `runner config check`'s verdict.
    func config(user: String) throws -> Response {
        _ = try target(user)
        var context = settings.context
        context.requestedUser = user
        let shown = ConfigCommands.show(context, sources: true, json: false)
        let checked = ConfigCommands.check(context)
        return Self.reply([
            "effective": .string(shown.standardOutput + shown.standardError),
            "check": .string(checked.standardOutput + checked.standardError), "valid": .bool(checked.exitCode == 0),
        ])
    }

    /// The user's guest gateway: its endpoint and token from the workspace's `ipc/`.
    func gateway(_ user: String) throws -> GatewayAccess {
        let target = try target(user)
        do {
            return try GatewayAccess.discover(ipcDirectory: target.ipc)
        } catch {
            throw HTTPError(.conflict, message: "the guest of `\(user)` is not running (\(error)); start it first")
        }
    }

    /// `GET /api/v1/users/<id>/usage?days=N`: the guest's usage report.
    func usage(user: String, days: Int) async throws -> Response {
        guard (1...366).contains(days) else { throw HTTPError(.badRequest, message: "days must be 1…366") }
        let access = try gateway(user)
        let client = GatewayClient(endpoint: access.endpoint, token: access.token)
        defer { client.close() }
        client.send(.hello(.init(requestID: "web-h", userID: user, client: "web")))
        client.send(.getUsage(requestID: "web-u", days: days))
        for await frame in client.frames {
            if case .usageReport(_, let report) = frame { return Self.reply(report.json) }
            if case .error(let info) = frame, info.requestID == "web-u" || info.requestID == "web-h" {
                throw HTTPError(.badGateway, message: info.message)
            }
        }
        throw HTTPError(.badGateway, message: client.failure?.message ?? "the guest closed the connection")
    }

    /// Relays the page's WebSocket to the guest's gateway: frames in both directions as the text
    /// they arrived in (the guest checks every client frame; its own frames are its JSON).
    func proxy(user: String, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async {
        let access: GatewayAccess
        do {
            access = try gateway(user)
        } catch {
            try? await outbound.close(.unexpectedServerError, reason: "the guest is not running")
            return
        }
        let client = GatewayClient(endpoint: access.endpoint, token: access.token, raw: true)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await text in client.texts {
                    do {
                        try await outbound.write(.text(text))
                    } catch {
                        break
                    }
                }
                try? await outbound.close(.normalClosure, reason: "the guest connection ended")
            }
            group.addTask {
                do {
                    for try await message in inbound.messages(maxSize: GatewayProtocol.maxClientFrameBytes) {
                        switch message {
                        case .text(let text): client.sendRaw(text)
                        case .binary(let buffer): client.sendRaw(String(buffer: buffer))
                        }
                    }
                } catch {
                    logger.debug("web socket read ended", metadata: ["error": "\(error)"])
                }
                client.close()
            }
        }
    }
}
