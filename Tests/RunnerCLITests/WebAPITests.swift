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

/// One HTTP/1.1 exchange over a real loopback socket (`Connection: close`).
struct HTTPExchange {
    var status: Int
    var headers: [(String, String)]
    var body: String

    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    var json: JSONValue? { try? JSONValue(parsing: body) }

    static func send(port: Int, _ method: String, _ path: String, headers: [String: String] = [:], body: String? = nil)
        throws -> HTTPExchange
    {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw TestSupportError("connect failed") }
        var limit = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var fields = ["Host": "127.0.0.1:\(port)", "Connection": "close"].merging(headers) { $1 }
        if let body { fields["Content-Length"] = "\(body.utf8.count)" }
        var request = "\(method) \(path) HTTP/1.1\r\n"
        for (name, value) in fields where !value.isEmpty { request += "\(name): \(value)\r\n" }
        request += "\r\n" + (body ?? "")
        let bytes = Array(request.utf8)
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let got = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if got <= 0 { break }
            response += buffer[0..<got]
        }
        let text = String(decoding: response, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { throw TestSupportError("no HTTP response: \(text)") }
        let head = text[..<split.lowerBound].split(separator: "\r\n")
        let status = Int(head.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        let headerPairs = head.dropFirst().compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmed)
        }
        var body = String(text[split.upperBound...])
        if headerPairs.contains(where: { $0.0.lowercased() == "transfer-encoding" && $0.1 == "chunked" }) {
            body = dechunk(body)
        }
        return HTTPExchange(status: status, headers: headerPairs, body: body)
    }

    static func dechunk(_ text: String) -> String {
        var rest = Substring(text)
        var out = ""
        while let lineEnd = rest.range(of: "\r\n"), let size = Int(rest[..<lineEnd.lowerBound], radix: 16), size > 0 {
            let start = lineEnd.upperBound
            let chunk = rest.utf8[start...].prefix(size)
            out += String(decoding: chunk, as: UTF8.self)
            rest = rest[rest.utf8.index(start, offsetBy: size)...].dropFirst(2)
        }
        return out
    }
}

/// `runner web`'s server in this process, over a real guest.
struct WebFixture {
    let guest: RunningGuest
    let port: Int
    let token: String
    let group: ServiceGroup
    let running: Task<Void, any Error>

    static func start() async throws -> WebFixture {
        let guest = try await RunningGuest.start()
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
        -> HTTPExchange
    {
        try HTTPExchange.send(port: port, method, path, headers: headers, body: body)
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
        #expect(!page.body.contains("http://") && !page.body.contains("https://"), "no third-party origin")
        let script = try web.request("GET", "/app.js")
        #expect(script.status == 200 && script.header("Content-Type")?.hasPrefix("text/javascript") == true)

        let anonymous = try web.request("GET", "/api/v1/meta")
        #expect(anonymous.status == 401 && anonymous.json?["error"]?["code"] == "unauthorized")
        let wrong = try web.request("GET", "/api/v1/meta", headers: ["Authorization": "Bearer nope"])
        #expect(wrong.status == 401)
        let meta = try web.request("GET", "/api/v1/meta", headers: ["Authorization": "Bearer \(web.token)"])
        #expect(meta.status == 200 && meta.json?["data"]?["users"] == ["alice"], "\(meta.body)")
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
        let alice = status.json?["data"]?["users"]?.arrayValue?.first
        #expect(alice?["running"] == true && alice?["health"]?["healthy"] == true, "\(status.body)")

        // State changes with the cookie need the page's own origin (CSRF).
        let noOrigin = try web.request(
            "POST", "/api/v1/users/alice/stop", headers: json.merging(["Cookie": session]) { $1 }, body: "{}")
        #expect(noOrigin.status == 403)
        let foreign = try web.request(
            "POST", "/api/v1/users/alice/stop",
            headers: json.merging(["Cookie": session, "Origin": "http://evil.example"]) { $1 }, body: "{}")
        #expect(foreign.status == 403 && foreign.json?["error"]?["message"]?.stringValue?.contains("evil") == true)
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
        let badRole = try web.request(
            "GET", "/api/v1/users/alice/logs?role=../../x", headers: ["Authorization": "Bearer \(web.token)"])
        #expect(badRole.status == 400)

        let anonymous = GatewayClient(endpoint: "ws://127.0.0.1:\(web.port)/api/v1/users/alice/ws")
        for await _ in anonymous.frames {}
        #expect(anonymous.failure != nil, "no token: no upgrade")

        let usage = try web.request(
            "GET", "/api/v1/users/alice/usage?days=7", headers: ["Authorization": "Bearer \(web.token)"])
        #expect(usage.status == 200 && usage.json?["data"]?["total"] != nil, "\(usage.body)")
    }
}
