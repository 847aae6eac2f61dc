import Dispatch
import Foundation
import OxydraClient
import OxydraCore
import OxydraRunner
import OxydraTesting
import Testing

#if canImport(CDispatch)
    import CDispatch
#endif

#if canImport(Glibc)
    import Glibc
#endif

/// Why a second OS user cannot be created here; nil when it can.
let secondUserUnavailable: String? = {
    if geteuid() != 0 { return "creating a second OS user needs root" }
    for tool in ["/usr/sbin/useradd", "/usr/sbin/userdel", "/usr/bin/setpriv", "/usr/bin/python3"]
    where access(tool, X_OK) != 0 {
        return "\(tool) is missing"
    }
    return nil
}()

/// Another OS user on the same host must not be able to drive, read or stop a user's guest: not
/// through the gateway on loopback, not through the token, not through the control or shell socket.
@Suite(
    "Another OS user", .serialized, .timeLimit(.minutes(2)),
    .enabled(
        if: Capability.shouldRun(secondUserUnavailable),
        "\(Capability.skipReason("local-user isolation tests", secondUserUnavailable))"))
struct LocalUserIsolationTests {
    @Test func aSecondUserCanCreateUsers() {
        #expect(secondUserUnavailable == nil, "required but missing: \(secondUserUnavailable ?? "")")
    }

    /// What the other user tries, as a Python program (it prints one JSON object).
    static let probe = """
        import json, socket, sys
        workspace, port = sys.argv[1], int(sys.argv[2])
        result = {}
        def attempt(name, action):
            try:
                result[name] = "ok: " + str(action())
            except Exception as error:
                result[name] = type(error).__name__
        def read(path):
            with open(path) as handle:
                return handle.read()
        def unix(path):
            connection = socket.socket(socket.AF_UNIX)
            connection.connect(path)
            connection.sendall(b'\\x00\\x00\\x00\\x1c{"op":"health_check","id":"x"}')
            return connection.recv(64)
        def http(request):
            connection = socket.create_connection(("127.0.0.1", port))
            connection.sendall(request.encode())
            return connection.recv(4096).split(b"\\r\\n")[0].decode()
        attempt("token", lambda: read(workspace + "/ipc/gateway-token"))
        attempt("control", lambda: unix(workspace + "/ipc/runner-control.sock"))
        attempt("shell", lambda: unix(workspace + "/ipc/shell-daemon.sock"))
        attempt("vault", lambda: read(workspace + "/vault/secret.txt"))
        attempt("log", lambda: read(workspace + "/logs/oxydra-vm.log"))
        host = "Host: 127.0.0.1:%d\\r\\n" % port
        upgrade = "Upgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n"
        result["upgrade"] = http("GET /ws HTTP/1.1\\r\\n" + host + upgrade + "\\r\\n")
        result["plain"] = http("GET /ws HTTP/1.1\\r\\n" + host + "\\r\\n")
        result["guess"] = http("GET /ws HTTP/1.1\\r\\n" + host + upgrade + "Authorization: Bearer " + "0" * 64 + "\\r\\n\\r\\n")
        print(json.dumps(result))
        """

    @Test func anotherUserCannotReachTheGuest() async throws {
        let name = "oxyprobe\(getpid() % 100_000)"
        let added = try await ChildProcess.runTool(
            "/usr/sbin/useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name])
        #expect(added.exitCode == 0 || added.standardError.contains("already exists"), "\(added.standardError)")
        defer { _ = ChildProcess.runToolSynchronously("/usr/sbin/userdel", [name]) }
        guard let entry = getpwnam(name) else {
            Issue.record("useradd did not create \(name)")
            return
        }
        let (uid, gid) = (entry.pointee.pw_uid, entry.pointee.pw_gid)

        let server = try await ScriptedModelServer.start()
        let project = try Project(agent: scriptedAgent(server))
        // With the shell sandbox, so its socket exists and must be refused too.
        try project.directory.write(ShellEndToEndTests.shellUser, to: ".oxydra/users/alice.toml")
        defer {
            project.shutdownGuest()
            project.directory.remove()
        }
        // The way to the workspace is open to everyone, as in a shared project directory: only the
        // workspace's own modes keep the other user out.
        for path in [project.root, project.root + "/.oxydra", project.root + "/.oxydra/workspaces"] {
            _ = mkdir(path, 0o755)
            chmod(path, 0o755)
        }
        let started = try await project.run(["--insecure"])
        try #require(started.exitCode == 0, "\(started.standardError)")
        #expect(value("shell_available", in: started.standardOutput) == "true", "\(started.standardOutput)")
        let endpoint = try #require(value("gateway_endpoint", in: started.standardOutput))
        let port = try #require(Int(endpoint.split(separator: ":").last?.split(separator: "/").first ?? ""))
        try "top secret\n".write(toFile: project.workspace + "/vault/secret.txt", atomically: false, encoding: .utf8)

        // Every workspace directory and file is private to the user who started the guest.
        for directory in ["", "/shared", "/tmp", "/vault", "/ipc", "/logs", "/.oxydra"] {
            #expect(Self.mode(project.workspace + directory) == 0o700, "\(directory) is not 0700")
        }
        for file in [
            "/ipc/gateway-token", "/ipc/runner-control.sock", "/ipc/shell-daemon.sock", "/logs/oxydra-vm.log",
            "/logs/shell-daemon.log",
        ] {
            #expect(Self.mode(project.workspace + file) & 0o077 == 0, "\(file) is readable by others")
        }
        let token = try GatewayAccess.discover(ipcDirectory: project.workspace + "/ipc").token
        #expect(token.count == 2 * GatewayProtocol.tokenBytes)
        let marker = try String(contentsOfFile: project.workspace + "/ipc/gateway-endpoint", encoding: .utf8)
        #expect(!marker.contains(token), "the endpoint marker carries the token")

        let sessionsBefore = try Self.openSessions(project)
        func probe() async throws -> [String: String] {
            let result = try await ChildProcess.runTool(
                "/usr/bin/setpriv",
                [
                    "--reuid=\(uid)", "--regid=\(gid)", "--clear-groups", "--", "/usr/bin/python3", "-c", Self.probe,
                    project.workspace, String(port),
                ])
            try #require(result.exitCode == 0, "probe failed: \(result.standardError)")
            let parsed = try JSONValue(parsing: result.standardOutput)
            return (parsed.objectValue ?? [:]).compactMapValues(\.stringValue)
        }
        // As shipped: the workspace itself is closed.
        let closed = try await probe()
        for key in ["token", "control", "shell", "vault", "log"] {
            #expect(closed[key] == "PermissionError", "\(key): \(closed[key] ?? "nil")")
        }
        #expect(closed["upgrade"] == "HTTP/1.1 401 Unauthorized")
        #expect(closed["plain"] == "HTTP/1.1 401 Unauthorized")
        #expect(closed["guess"] == "HTTP/1.1 401 Unauthorized")

        // Second layer: even with the directories opened, the files the guest wrote (token, logs)
        // and its sockets are the user's alone.
        for directory in ["", "/ipc", "/logs"] { chmod(project.workspace + directory, 0o711) }
        let opened = try await probe()
        for key in ["token", "control", "log"] {
            #expect(opened[key] == "PermissionError", "\(key) with open directories: \(opened[key] ?? "nil")")
        }
        #expect(opened["shell"] == "PermissionError", "shell socket with open directories: \(opened["shell"] ?? "nil")")
        #expect(try Self.openSessions(project) == sessionsBefore, "a refused client changed the guest")

        // The user's own client still works.
        server.enqueue(.text("still mine"))
        let ask = try await project.run(["ask", "hello"])
        #expect(ask.exitCode == 0 && ask.standardOutput.contains("still mine"), "\(ask.standardError)")
        try? await server.shutdown()
    }

    static func mode(_ path: String) -> mode_t {
        var info = stat()
        return lstat(path, &info) == 0 ? info.st_mode & 0o777 : 0o7777
    }

    static func openSessions(_ project: Project) throws -> Int {
        let reply = try ControlClient.request(.healthCheck, socket: project.workspace + "/ipc/runner-control.sock")
        guard case .health(let health) = reply else { throw TestSupportError("no health reply: \(reply)") }
        return health.openSessions
    }
}
