import Foundation
import Logging
import OxydraClient
import OxydraCore
import OxydraRunner
import OxydraTesting
import OxydraWeb
import ServiceLifecycle
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `runner web`'s server in this process, over a real guest.
struct WebFixture {
    let guest: RunningGuest
    let port: Int
    let token: String
    let group: ServiceGroup
    let running: Task<Void, any Error>

    /// `startGuest: false` serves a project whose guest is not running (configuration work).
    static func start(startGuest: Bool = true, agent: String? = nil) async throws -> WebFixture {
        let guest: RunningGuest
        if startGuest {
            guest = try await RunningGuest.start()
        } else {
            let server = try await ScriptedModelServer.start()
            guest = RunningGuest(server: server, project: try Project(agent: agent ?? scriptedAgent(server)))
        }
        let token = GatewayProtocol.newToken()
        let context = RunnerContext(
            configPath: guest.project.root + "/.oxydra/runner.toml", environment: guest.project.environment,
            workingDirectory: guest.project.root)
        var logger = Logger(label: "test.web")
        logger.logLevel = .critical
        let server = WebServer(
            settings: WebServer.Settings(
                bind: GatewayBind.parse("127.0.0.1:0").bind!, token: token,
                runnerExecutable: ChildProcess.path(of: "runner"), context: context, insecure: true),
            logger: logger)
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let application = server.application { continuation.yield($0) }
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(services: [.init(service: application)], logger: logger))
        let running = Task { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw TestSupportError("the web server did not start") }
        return WebFixture(guest: guest, port: port, token: token, group: group, running: running)
    }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await running.value
        await guest.stop()
    }

    var origin: String { "http://127.0.0.1:\(port)" }

    func request(_ method: String, _ path: String, headers: [String: String] = [:], body: String? = nil) throws
        -> LoopbackHTTP.Response
    {
        try LoopbackHTTP.request(port: port, method, path, headers: headers, body: body)
    }
}

@Suite("Web app API", .serialized)
struct WebAPITests {
    @Test func thePageIsServedWithAStrictPolicyAndTheAPINeedsTheToken() async throws {
        let web = try await WebFixture.start()
        defer { Teardown.run { await web.stop() } }
        let page = try web.request("GET", "/")
        #expect(page.status == 200 && page.body.contains("<script type=\"module\" src=\"/app.js\">"))
        let policy = try #require(page.header("Content-Security-Policy"))
        #expect(policy.contains("default-src 'none'") && policy.contains("script-src 'self'"))
        #expect(!policy.contains("unsafe-inline") && policy.contains("frame-ancestors 'none'"))
        #expect(page.header("X-Content-Type-Options") == "nosniff")
        // Nothing the page loads or links to is on another origin (a placeholder may show an address).
        let elsewhere = #/(src|href|action|srcset)\s*=\s*["']?(https?:)?\/\//#
        #expect(page.body.firstMatch(of: elsewhere) == nil, "no other origin")
        #expect(page.body.contains("src=\"/app.js\"") && page.body.contains("href=\"/app.css\""))
        let script = try web.request("GET", "/app.js")
        #expect(script.status == 200 && script.header("Content-Type")?.hasPrefix("text/javascript") == true)

        let anonymous = try web.request("GET", "/api/v1/meta")
        #expect(anonymous.status == 401 && anonymous.jsonBody?["error"]?["code"] == "unauthorized")
        let wrong = try web.request("GET", "/api/v1/meta", headers: ["Authorization": "Bearer nope"])
        #expect(wrong.status == 401)
        let meta = try web.request("GET", "/api/v1/meta", headers: ["Authorization": "Bearer \(web.token)"])
        #expect(meta.status == 200 && meta.jsonBody?["data"]?["users"] == ["alice"], "\(meta.body)")
        // A page whose DNS name was rebound to this address sends its own Host: refused.
        let rebound = try web.request(
            "GET", "/api/v1/meta",
            headers: ["Authorization": "Bearer \(web.token)", "Host": "evil.example:\(web.port)"])
        #expect(rebound.status == 403)
    }

    @Test func loginGivesAStrictCookieAndCrossSiteRequestsAreRefused() async throws {
        let web = try await WebFixture.start()
        defer { Teardown.run { await web.stop() } }
        let json = ["Content-Type": "application/json"]
        let refused = try web.request(
            "POST", "/api/v1/login", headers: json.merging(["Origin": web.origin]) { $1 }, body: #"{"token":"nope"}"#)
        #expect(refused.status == 401)
        let login = try web.request(
            "POST", "/api/v1/login", headers: json.merging(["Origin": web.origin]) { $1 },
            body: #"{"token":"\#(web.token)"}"#)
        #expect(login.status == 200)
        let cookie = try #require(login.header("Set-Cookie"))
        #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "\(cookie)")
        let session = String(cookie.split(separator: ";")[0])

        let status = try web.request("GET", "/api/v1/status", headers: ["Cookie": session])
        #expect(status.status == 200)
        let alice = status.jsonBody?["data"]?["users"]?.arrayValue?.first
        #expect(alice?["running"] == true && alice?["health"]?["healthy"] == true, "\(status.body)")

        // State changes with the cookie need the page's own origin (CSRF).
        let noOrigin = try web.request(
            "POST", "/api/v1/users/alice/stop", headers: json.merging(["Cookie": session]) { $1 }, body: "{}")
        #expect(noOrigin.status == 403)
        let foreign = try web.request(
            "POST", "/api/v1/users/alice/stop",
            headers: json.merging(["Cookie": session, "Origin": "http://evil.example"]) { $1 }, body: "{}")
        #expect(foreign.status == 403 && foreign.jsonBody?["error"]?["message"]?.stringValue?.contains("evil") == true)
        let unknown = try web.request(
            "POST", "/api/v1/users/mallory/stop",
            headers: json.merging(["Cookie": session, "Origin": web.origin]) { $1 },
            body: "{}")
        #expect(unknown.status == 404)
        let form = try web.request(
            "POST", "/api/v1/users/alice/stop",
            headers: ["Cookie": session, "Origin": web.origin, "Content-Type": "application/x-www-form-urlencoded"],
            body: "x=1")
        #expect(form.status == 415)
        #expect(try await web.guest.project.run(["status"]).exitCode == 0, "the refused requests stopped nothing")

        // The page's own origin may: stop, then start again.
        let stop = try web.request(
            "POST", "/api/v1/users/alice/stop",
            headers: json.merging(["Cookie": session, "Origin": web.origin]) { $1 },
            body: "{}")
        #expect(stop.status == 200, "\(stop.body)")
        #expect(try await web.guest.project.run(["status"]).exitCode == 3)
        let start = try web.request(
            "POST", "/api/v1/users/alice/start",
            headers: json.merging(["Cookie": session, "Origin": web.origin]) { $1 },
            body: "{}")
        #expect(start.status == 200, "\(start.body)")
        #expect(try await web.guest.project.run(["status"]).exitCode == 0)

        let logout = try web.request(
            "POST", "/api/v1/logout", headers: json.merging(["Cookie": session, "Origin": web.origin]) { $1 },
            body: "{}")
        #expect(logout.status == 200)
        #expect(try web.request("GET", "/api/v1/status", headers: ["Cookie": session]).status == 401)
    }

    /// The page's WebSocket reaches the user's guest through the web server: a turn streams back.
    @Test func theWebSocketProxyCarriesATurn() async throws {
        let web = try await WebFixture.start()
        defer { Teardown.run { await web.stop() } }
        web.guest.server.enqueue(.text("hello through the proxy"))
        let client = GatewayClient(endpoint: "ws://127.0.0.1:\(web.port)/api/v1/users/alice/ws", token: web.token)
        defer { client.close() }
        client.send(.hello(.init(requestID: "h", userID: "alice", client: "web")))
        var completed: TurnCompletion?
        var deltas = ""
        for await frame in client.frames {
            switch frame {
            case .helloAck(_, _, let ref, _):
                client.send(.sendTurn(.init(requestID: "t", sessionID: ref.sessionID, turnID: "w1", prompt: "hi")))
            case .assistantDelta(_, let delta): deltas += delta
            case .turnCompleted(_, let completion): completed = completion
            default: break
            }
            if completed != nil { break }
        }
        #expect(
            completed?.message == "hello through the proxy" && deltas == "hello through the proxy",
            "\(client.failure.map { "\($0)" } ?? "no failure")")
        // An attachment named to climb out of the inbox lands inside it, under a safe name.
        web.guest.server.enqueue(.text("got it"))
        let proxied = GatewayClient(endpoint: "ws://127.0.0.1:\(web.port)/api/v1/users/alice/ws", token: web.token)
        defer { proxied.close() }
        proxied.send(.hello(.init(requestID: "h2", userID: "alice", client: "web")))
        for await frame in proxied.frames {
            if case .helloAck = frame {
                proxied.send(
                    .sendTurn(
                        .init(
                            requestID: "t2", turnID: "w2", prompt: "keep this",
                            attachments: [
                                .init(name: "../../../etc/evil.txt", mimeType: "text/plain", data: Data("x".utf8))
                            ]
                        )))
            }
            if case .turnCompleted(let header, _) = frame, header.turn.turnID == "w2" { break }
            if case .error(let info) = frame { Issue.record("\(info.message)") }
        }
        let inbox = web.guest.project.workspace + "/shared/inbox"
        let saved = try FileManager.default.contentsOfDirectory(atPath: inbox)
        #expect(saved == ["evil.txt"], "\(saved)")
        #expect(!FileManager.default.fileExists(atPath: web.guest.project.workspace + "/etc/evil.txt"))

        let logs = try web.request(
            "GET", "/api/v1/users/alice/logs?role=runtime&tail=50", headers: ["Authorization": "Bearer \(web.token)"])
        #expect(logs.status == 200 && logs.body.contains("gateway ready"), "\(logs.body.prefix(300))")
        let config = try web.request(
            "GET", "/api/v1/users/alice/config", headers: ["Authorization": "Bearer \(web.token)"])
        #expect(config.status == 200 && config.jsonBody?["data"]?["valid"] == true, "\(config.body.prefix(500))")
        let effective = config.jsonBody?["data"]?["effective"]?.stringValue ?? ""
        #expect(
            effective.contains("[tools.approval]") && effective.contains("# built-in default"),
            "\(effective.prefix(800))")
        let badRole = try web.request(
            "GET", "/api/v1/users/alice/logs?role=../../x", headers: ["Authorization": "Bearer \(web.token)"])
        #expect(badRole.status == 400)

        let anonymous = GatewayClient(endpoint: "ws://127.0.0.1:\(web.port)/api/v1/users/alice/ws")
        for await _ in anonymous.frames {}
        #expect(anonymous.failure != nil, "no token: no upgrade")

        let usage = try web.request(
            "GET", "/api/v1/users/alice/usage?days=7", headers: ["Authorization": "Bearer \(web.token)"])
        #expect(usage.status == 200 && usage.jsonBody?["data"]?["total"] != nil, "\(usage.body)")
    }
}

extension LoopbackHTTP.Response {
    var jsonBody: JSONValue? { try? JSONValue(parsing: body) }
}
