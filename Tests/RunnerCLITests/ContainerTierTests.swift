import Foundation
import NIOHTTP1
import OxydraCore
import OxydraTesting
import Testing

@testable import OxydraContainer

#if canImport(Glibc)
    import Glibc
#endif

/// Why the container tier cannot be tested here, or nil: the image tests' needs plus root (to
/// create the unprivileged account the guest runs as, in the `docker` group).
let containerTierMissing: String? = {
    if let missing = imageBuildMissing ?? secondUserUnavailable { return missing }
    if getgrnam("docker") == nil { return "there is no `docker` group (apt-get install docker.io)" }
    return nil
}()

/// The container tier end to end, with the real engine: `runner start` (no `--insecure`) as an
/// unprivileged account → `runner ask` through the published gateway → `shell_exec` inside
/// `shell-vm` → `runner stop` leaves nothing. Inside the containers: no capabilities, no host
/// paths, no network for the shell, no provider key, and a fork bomb stops at `max_processes`.
@Suite(
    "Container tier", .serialized, .timeLimit(.minutes(6)),
    .enabled(
        if: Capability.shouldRun(containerTierMissing),
        Comment(rawValue: Capability.skipReason("container tier tests", containerTierMissing))))
struct ContainerTierTests {
    let engine = DockerEngine(socketPath: DockerEngine.socketPath(environment: ProcessInfo.processInfo.environment))

    @Test func theEngineAndAnAccountAreThere() {
        #expect(containerTierMissing == nil, "required but missing: \(containerTierMissing ?? "")")
    }

    /// An unprivileged account in the `docker` group, removed by `remove()`.
    struct Account {
        let name: String
        let uid: UInt32
        let gid: UInt32

        static func create() async throws -> Account {
            let name = "oxyct\(getpid() % 100_000)"
            let added = try await ChildProcess.runTool(
                "/usr/sbin/useradd",
                ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "-G", "docker", name])
            #expect(added.exitCode == 0 || added.standardError.contains("already exists"), "\(added.standardError)")
            let entry = try #require(getpwnam(name))
            return Account(name: name, uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid)
        }

        func remove() { _ = ChildProcess.runToolSynchronously("/usr/sbin/userdel", [name]) }
    }

    /// A project whose users run in the container tier, owned by `account`.
    static func project(_ server: ScriptedModelServer, account: Account, users: [String] = ["alice"]) throws -> Project
    {
        let project = try Project(agent: agentTOML(server))
        var runner = SeedConfig.runnerTOML.replacing("default_tier = \"process\"", with: "default_tier = \"container\"")
        for user in users where user != "alice" {
            runner += "\n[users.\(user)]\nconfig_path = \".oxydra/users/\(user).toml\"\n"
        }
        try project.directory.write(runner, to: ".oxydra/runner.toml")
        for user in users {
            try project.directory.write(
                """
                [behavior]
                shell_enabled = true
                [resources]
                max_processes = 64
                max_memory_mib = 512
                """, to: ".oxydra/users/\(user).toml")
        }
        _ = ChildProcess.runToolSynchronously("/bin/chown", ["-R", "\(account.uid):\(account.gid)", project.root])
        return project
    }

    /// The agent configuration of the tier tests: the scripted server with a key read from
    /// `SCRIPTED_KEY`, one attempt, and `PROJECT_NAME` passed to the shell.
    static func agentTOML(_ server: ScriptedModelServer) -> String {
        server.agentConfig(
            """
            [reliability]
            max_attempts = 1
            [tools.shell]
            env_keys = ["PROJECT_NAME"]
            """
        ).replacing(
            "skip_catalog_validation = true", with: "skip_catalog_validation = true\napi_key_env = \"SCRIPTED_KEY\"")
    }

    static let secret = "sk-container-secret-\(UInt32.random(in: 0...UInt32.max))"

    /// `runner` as the account, with the project's environment plus the key and a shell variable.
    static func runAs(
        _ account: Account, _ project: Project, _ arguments: [String], secret: String = secret,
        projectName: String = "oxydra-container-test"
    ) async throws -> ProcessResult {
        var environment = project.environment
        environment["SCRIPTED_KEY"] = secret
        environment["PROJECT_NAME"] = projectName
        return try await ChildProcess.runTool(
            "/usr/bin/setpriv",
            [
                "--reuid=\(account.uid)", "--regid=\(account.gid)", "--init-groups", "--",
                ChildProcess.path(of: "runner"),
            ]
                + arguments, environment: environment, workingDirectory: project.root)
    }

    /// Builds (or reuses) the guest images from this build's binaries.
    static func ensureImages(_ project: Project) async throws {
        let built = try await project.run(["images", "build"])
        try #require(built.exitCode == 0, "runner images build failed: \(built.standardError)")
    }

    func containers(_ user: String) async throws -> [JSONValue] {
        try await engine.listContainers(labels: ["oxydra.user_id": user, "oxydra.sandbox_tier": "container"])
    }

    /// What the shell sees from inside shell-vm, written to /shared/probe.json.
    static let probe = """
        import json, os, socket, sys, time
        result = {}
        result["hostname"] = socket.gethostname()
        result["uid"] = os.getuid()
        result["cap_eff"] = [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")][0]
        result["visible"] = {p: os.path.exists(p) for p in sys.argv[1:] + ["/workspace", "/etc/oxydra", "/run/oxydra/bootstrap", "/var/run/docker.sock"]}
        result["project_name"] = os.environ.get("PROJECT_NAME")
        result["key_in_env"] = any("SCRIPTED_KEY" in k or "sk-container" in v for k, v in os.environ.items())
        def connect(host, port):
            try:
                socket.create_connection((host, port), timeout=2).close()
                return "connected"
            except OSError as error:
                return type(error).__name__ + ": " + str(error)
        result["internet"] = connect("1.1.1.1", 80)
        result["interfaces"] = sorted(os.listdir("/sys/class/net"))
        children = []
        error = None
        for _ in range(500):
            try:
                pid = os.fork()
            except OSError as failure:
                error = str(failure)
                break
            if pid == 0:
                time.sleep(20)
                os._exit(0)
            children.append(pid)
        result["forked"] = len(children)
        result["fork_error"] = error
        for pid in children:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        open("/shared/probe.json", "w").write(json.dumps(result))
        print("probed")
        """

    @Test func startAskShellAndStopLeaveNothing() async throws {
        #expect(containerTierMissing == nil)
        let account = try await Account.create()
        defer { account.remove() }
        let server = try await ScriptedModelServer.start(host: "0.0.0.0")
        defer { Teardown.run { try? await server.shutdown() } }
        let project = try Self.project(server, account: account)
        defer {
            _ = ChildProcess.runToolSynchronously(
                ChildProcess.path(of: "runner"), ["stop", "--config", project.root + "/.oxydra/runner.toml"])
            project.directory.remove()
        }
        try await Self.ensureImages(project)

        let started = try await Self.runAs(account, project, ["start"])
        #expect(started.exitCode == 0, "\(started.standardError)")
        #expect(value("sandbox_tier", in: started.standardOutput) == "container", "\(started.standardOutput)")
        #expect(value("shell_available", in: started.standardOutput) == "true", "\(started.standardOutput)")
        #expect(started.standardOutput.contains("container_runtime=oxydra-container-alice-oxydra-vm"))
        #expect(started.standardOutput.contains("container_sidecar=oxydra-container-alice-shell-vm"))
        #expect(!started.standardOutput.contains("warning=process tier"))
        let endpoint = try #require(value("gateway_endpoint", in: started.standardOutput))
        #expect(endpoint.hasPrefix("ws://127.0.0.1:"))

        // What the engine was told: the account's uid, nothing privileged, the key only as environment.
        let found = try await containers("alice")
        #expect(found.count == 2)
        for container in found {
            let id = try #require(container["Id"]?.stringValue)
            let inspected = try #require(try await engine.inspectContainer(id))
            #expect(inspected["Config"]?["User"]?.stringValue == "\(account.uid):\(account.gid)")
            #expect(inspected["HostConfig"]?["CapDrop"] == ["ALL"])
            #expect(inspected["HostConfig"]?["ReadonlyRootfs"] == true)
            var visible = inspected
            if case .object(var object) = visible, case .object(var config)? = object["Config"] {
                config["Env"] = nil
                object["Config"] = .object(config)
                visible = .object(object)
            }
            #expect(!visible.compactText.contains(Self.secret), "the key is visible in inspect outside Env")
        }
        for file in ["ipc/bootstrap.json", "ipc/guest-config/agent.toml"] {
            let text = try String(contentsOfFile: project.workspace + "/" + file, encoding: .utf8)
            #expect(!text.contains(Self.secret), "\(file) holds the key")
        }

        // The runtime process itself, seen from the host: no capabilities, no new privileges, and a
        // root filesystem without the host's paths.
        let runtime = try #require(try await engine.inspectContainer("oxydra-container-alice-oxydra-vm"))
        let pid = try #require(runtime["State"]?["Pid"]?.intValue)
        let processStatus = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        #expect(processStatus.contains("CapEff:\t0000000000000000"), "\(processStatus)")
        #expect(processStatus.contains("NoNewPrivs:\t1"))
        #expect(processStatus.contains("Uid:\t\(account.uid)\t"))
        for path in [project.root, ChildProcess.path(of: "runner"), "/var/run/docker.sock"] {
            #expect(access("/proc/\(pid)/root" + path, F_OK) != 0, "\(path) is visible to the runtime")
        }
        #expect(access("/proc/\(pid)/root/workspace/shared", F_OK) == 0)

        try project.directory.write(Self.probe, to: ".oxydra/workspaces/alice/shared/probe.py")
        _ = ChildProcess.runToolSynchronously("/bin/chown", ["\(account.uid)", project.workspace + "/shared/probe.py"])
        let hostPaths = [
            project.root + "/.oxydra/agent.toml", project.workspace + "/ipc", ChildProcess.path(of: "runner"),
        ]
        let command = (["python3", "/shared/probe.py"] + hostPaths).joined(separator: " ")
        server.enqueue(
            .toolCalls([
                ScriptedToolCall(
                    id: "c1", name: "shell_exec", arguments: JSONValue.object(["command": .string(command)]).compactText
                )
            ]))
        server.enqueue(.text("probed it"))
        let ask = try await Self.runAs(account, project, ["ask", "--approve", "shell_exec", "probe the sandbox"])
        #expect(ask.exitCode == 0, "\(ask.standardError)")
        #expect(ask.standardOutput == "probed it\n")
        #expect(server.requests.first?.header("authorization") == "Bearer \(Self.secret)")
        let toolResult = String(decoding: server.requests.last?.body ?? Data(), as: UTF8.self)
        #expect(toolResult.contains("probed"), "\(toolResult)")

        // The write in /shared is the host's file; the rest is what the shell could see.
        let report = try JSONValue(
            parsing: try String(contentsOfFile: project.workspace + "/shared/probe.json", encoding: .utf8))
        #expect(report["hostname"] == "shell-vm")
        #expect(report["uid"]?.intValue == Int(account.uid))
        #expect(report["cap_eff"] == "0000000000000000")
        #expect(report["project_name"] == "oxydra-container-test")
        #expect(report["key_in_env"] == false)
        for path in hostPaths + ["/workspace", "/etc/oxydra", "/run/oxydra/bootstrap", "/var/run/docker.sock"] {
            #expect(report["visible"]?[path] == false, "\(path) is visible inside shell-vm")
        }
        #expect(report["interfaces"] == ["lo"], "shell-vm has a network: \(report["interfaces"]?.compactText ?? "")")
        #expect(report["internet"]?.stringValue?.hasPrefix("connected") == false)
        let forked = report["forked"]?.intValue ?? 0
        #expect(forked > 0 && forked < 64, "forked \(forked) processes under max_processes = 64")
        #expect(report["fork_error"]?.stringValue?.contains("Resource temporarily unavailable") == true)

        let status = try await Self.runAs(account, project, ["status"])
        #expect(status.exitCode == 0)
        #expect(value("sandbox_tier", in: status.standardOutput) == "container")
        #expect(status.standardOutput.contains("restart_policy=on-failure\nrestarts=0\n"), "\(status.standardOutput)")

        // A crash (the runtime killed from the host): the engine starts it again, the status counts it.
        let crashed = try #require(
            try await engine.inspectContainer("oxydra-container-alice-oxydra-vm")?["State"]?["Pid"]?.intValue)
        kill(Int32(crashed), SIGKILL)
        var back = ""
        for _ in 0..<150 {
            let now = try await Self.runAs(account, project, ["status"])
            if now.exitCode == 0, now.standardOutput.contains("restarts=1\n"),
                now.standardOutput.contains("healthy=true")
            {
                back = now.standardOutput
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(back.contains("restarts=1"), "the runtime container was not restarted")
        server.enqueue(.text("still here"))
        let again = try await Self.runAs(account, project, ["ask", "still there?"])
        #expect(again.standardOutput == "still here\n", "\(again.standardError)")

        let logs = try await Self.runAs(account, project, ["logs", "--role", "stderr", "--tail", "5"])
        #expect(logs.exitCode == 0)
        #expect(logs.standardOutput.contains("gateway_endpoint=\(endpoint)"), "\(logs.standardOutput)")

        let stop = try await Self.runAs(account, project, ["stop"])
        #expect(stop.exitCode == 0, "\(stop.standardError)")
        #expect(stop.standardOutput.contains("containers_removed="))
        #expect(try await containers("alice").isEmpty)
        // The user's network stays for the next start, with nothing attached.
        let network = try #require(try await engine.listNetworks(labels: ["oxydra.user_id": "alice"]).first)
        let attached = try await engine.inspectNetwork(try #require(network["Id"]?.stringValue))
        #expect(attached?["Containers"]?.objectValue?.isEmpty ?? true)
        // Their output outlives them.
        let kept = try await Self.runAs(account, project, ["logs", "--role", "stderr"])
        #expect(kept.standardOutput.contains("gateway_endpoint=\(endpoint)"), "\(kept.standardOutput)")
    }

    @Test func twoUsersCannotReachEachOther() async throws {
        let account = try await Account.create()
        defer { account.remove() }
        let server = try await ScriptedModelServer.start(host: "0.0.0.0")
        defer { Teardown.run { try? await server.shutdown() } }
        let project = try Self.project(server, account: account, users: ["alice", "bob"])
        defer {
            for user in ["alice", "bob"] {
                _ = ChildProcess.runToolSynchronously(
                    ChildProcess.path(of: "runner"),
                    ["stop", "--config", project.root + "/.oxydra/runner.toml", "--user", user])
            }
            project.directory.remove()
        }
        try await Self.ensureImages(project)
        for user in ["alice", "bob"] {
            let started = try await Self.runAs(account, project, ["start", "--user", user])
            try #require(started.exitCode == 0, "\(started.standardError)")
        }
        func address(_ user: String) async throws -> String {
            let inspected = try #require(try await engine.inspectContainer("oxydra-container-\(user)-oxydra-vm"))
            return try #require(inspected["NetworkSettings"]?["Networks"]?["oxydra-\(user)"]?["IPAddress"]?.stringValue)
        }
        let alice = try await address("alice")
        let bob = try await address("bob")
        #expect(alice != bob)
        // From a container on alice's network: alice's gateway answers, bob's cannot be reached.
        let script = """
            import socket, sys
            for host in sys.argv[1:]:
                try:
                    socket.create_connection((host, 7600), timeout=3).close()
                    print(host, "connected")
                except OSError as error:
                    print(host, type(error).__name__)
            """
        let id = try await engine.createContainer(
            name: "oxydra-test-probe-\(UInt32.random(in: 0...UInt32.max))",
            spec: [
                "Image": "shell-vm:latest", "Entrypoint": ["python3", "-c"],
                "Cmd": .array([.string(script), .string(alice), .string(bob)]), "User": "1000:1000",
                "HostConfig": ["NetworkMode": "oxydra-alice", "CapDrop": ["ALL"]],
            ])
        defer { Teardown.run { try? await engine.removeContainer(id, force: true) } }
        try await engine.startContainer(id)
        _ = try await engine.waitContainer(id)
        let (out, err) = try await engine.logs(id)
        #expect(out.contains("\(alice) connected"), "\(out)\(err)")
        #expect(out.contains("\(bob) ") && !out.contains("\(bob) connected"), "\(out)\(err)")
        // restart replaces alice's containers and leaves bob's alone.
        let bobBefore = try await engine.inspectContainer("oxydra-container-bob-oxydra-vm")?["Id"]
        let aliceBefore = try await engine.inspectContainer("oxydra-container-alice-oxydra-vm")?["Id"]
        let restarted = try await Self.runAs(account, project, ["restart", "--user", "alice"])
        #expect(restarted.exitCode == 0, "\(restarted.standardError)")
        #expect(restarted.standardOutput.contains("containers_removed=oxydra-container-alice-"))
        #expect(value("sandbox_tier", in: restarted.standardOutput) == "container")
        #expect(try await engine.inspectContainer("oxydra-container-alice-oxydra-vm")?["Id"] != aliceBefore)
        #expect(try await engine.inspectContainer("oxydra-container-bob-oxydra-vm")?["Id"] == bobBefore)
        // Each user's containers mount only their own workspace.
        let inspected = try #require(try await engine.inspectContainer("oxydra-container-alice-oxydra-vm"))
        let binds = inspected["HostConfig"]?["Binds"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(!binds.isEmpty && binds.allSatisfy { !$0.contains("/workspaces/bob") }, "\(binds)")
    }

    @Test func failuresAreClearAndLeaveNothing() async throws {
        let account = try await Account.create()
        defer { account.remove() }
        let server = try await ScriptedModelServer.start(host: "0.0.0.0")
        defer { Teardown.run { try? await server.shutdown() } }
        let project = try Self.project(server, account: account)
        defer { project.directory.remove() }
        try await Self.ensureImages(project)

        // Root is refused: the guest always runs as the account that owns the workspace.
        let asRoot = try await project.run(["start"], extraEnvironment: ["SCRIPTED_KEY": "x"])
        #expect(asRoot.exitCode == 1)
        #expect(asRoot.standardError.contains("never runs a guest as root"), "\(asRoot.standardError)")

        // Images that are not there: say how to build them.
        let runner = try String(contentsOfFile: project.root + "/.oxydra/runner.toml", encoding: .utf8)
        try project.directory.write(
            runner.replacing("oxydra-vm:latest", with: "oxydra-vm:missing-\(getpid())"), to: ".oxydra/runner.toml")
        let missing = try await Self.runAs(account, project, ["start"])
        #expect(missing.exitCode == 1)
        #expect(missing.standardError.contains("is not installed"), "\(missing.standardError)")
        #expect(missing.standardError.contains("images build"))
        try project.directory.write(runner, to: ".oxydra/runner.toml")

        // A guest that exits at start: its last lines are shown and nothing is left running.
        try project.directory.write(
            try String(contentsOfFile: project.root + "/.oxydra/agent.toml", encoding: .utf8)
                + "\n[gateway]\nauth_token_env = \"OXYDRA_TEST_UNSET_TOKEN\"\n", to: ".oxydra/agent.toml")
        _ = ChildProcess.runToolSynchronously("/bin/chown", ["-R", "\(account.uid):\(account.gid)", project.root])
        let exited = try await Self.runAs(account, project, ["start"])
        #expect(exited.exitCode == 1)
        #expect(exited.standardError.contains("exited during start-up"), "\(exited.standardError)")
        #expect(exited.standardError.contains("OXYDRA_TEST_UNSET_TOKEN"), "\(exited.standardError)")
        #expect(try await containers("alice").isEmpty)

        // An image another Oxydra version built: the start goes ahead with a warning.
        let source = try await engine.createContainer(
            name: "oxydra-test-commit-\(getpid())", spec: ["Image": "oxydra-vm:latest"])
        let older = "oxydra-test-older-vm:\(getpid())"
        _ = try await engine.call(
            .POST, "/commit",
            query: [
                ("container", source), ("repo", "oxydra-test-older-vm"), ("tag", "\(getpid())"),
                ("changes", "LABEL \(GuestImageBuilder.versionLabel)=0.0.1"),
            ])
        try await engine.removeContainer(source, force: true)
        defer { Teardown.run { try? await engine.removeImage(older, force: true) } }
        try project.directory.write(runner.replacing("oxydra-vm:latest", with: older), to: ".oxydra/runner.toml")
        try project.directory.write(
            try String(contentsOfFile: project.root + "/.oxydra/agent.toml", encoding: .utf8)
                .replacing("auth_token_env = \"OXYDRA_TEST_UNSET_TOKEN\"", with: ""), to: ".oxydra/agent.toml")
        _ = ChildProcess.runToolSynchronously("/bin/chown", ["-R", "\(account.uid):\(account.gid)", project.root])
        let warned = try await Self.runAs(account, project, ["start"])
        #expect(warned.exitCode == 0, "\(warned.standardError)")
        #expect(
            warned.standardOutput.contains(
                "warning=image \(older) was built by Oxydra 0.0.1, this runner is \(OxydraVersion.current); rebuild it "
                    + "with `runner images build`"), "\(warned.standardOutput)")
        #expect(try await Self.runAs(account, project, ["stop"]).exitCode == 0)
        try project.directory.write(runner, to: ".oxydra/runner.toml")

        // A shell-vm that cannot start: the guest runs without a shell and says why.
        let empty = try project.directory.createDirectory("empty-image")
        let tarball = project.root + "/empty-image.tar"
        _ = try await ChildProcess.runTool("/usr/bin/tar", ["-cf", tarball, "-C", empty, "."])
        let broken = "oxydra-test-broken-shell:\(getpid())"
        _ = try await engine.importImage(
            tarball: tarball, repository: "oxydra-test-broken-shell", tag: "\(getpid())",
            changes: [
                "ENTRYPOINT [\"/nonexistent\"]", "LABEL \(GuestImageBuilder.versionLabel)=\(OxydraVersion.current)",
            ])
        defer { Teardown.run { try? await engine.removeImage(broken, force: true) } }
        try project.directory.write(runner.replacing("shell-vm:latest", with: broken), to: ".oxydra/runner.toml")
        _ = ChildProcess.runToolSynchronously("/bin/chown", ["-R", "\(account.uid):\(account.gid)", project.root])
        let degraded = try await Self.runAs(account, project, ["start"])
        #expect(degraded.exitCode == 0, "\(degraded.standardError)")
        #expect(value("shell_available", in: degraded.standardOutput) == "false", "\(degraded.standardOutput)")
        #expect(
            value("degraded_reason", in: degraded.standardOutput)?.hasPrefix(
                "sidecar_unavailable:the shell-vm container exited at start") == true, "\(degraded.standardOutput)")
        #expect(try await containers("alice").count == 1)
        let stopped = try await Self.runAs(account, project, ["stop"])
        #expect(stopped.exitCode == 0, "\(stopped.standardError)")
        #expect(try await containers("alice").isEmpty)
        try project.directory.write(runner, to: ".oxydra/runner.toml")

        // A guest that died (or a runner that crashed) leaves containers the next command finds.
        try #require(try await Self.runAs(account, project, ["start"]).exitCode == 0)
        try await engine.stopContainer("oxydra-container-alice-oxydra-vm", graceSeconds: 0)
        let dead = try await Self.runAs(account, project, ["status"])
        #expect(dead.exitCode == 3)
        #expect(dead.standardError.contains("left from an earlier start"), "\(dead.standardError)")
        #expect(dead.standardError.contains("container_runtime=oxydra-container-alice-oxydra-vm"))
        let again = try await Self.runAs(account, project, ["start"])
        #expect(again.exitCode == 0, "\(again.standardError)")
        #expect(value("shell_available", in: again.standardOutput) == "true")
        #expect(try await Self.runAs(account, project, ["stop"]).exitCode == 0)
        #expect(try await containers("alice").isEmpty)

        // No engine: named, with how to start one.
        let noEngine = try await ChildProcess.runTool(
            "/usr/bin/setpriv",
            [
                "--reuid=\(account.uid)", "--regid=\(account.gid)", "--init-groups", "--",
                ChildProcess.path(of: "runner"), "start",
            ],
            environment: project.environment.merging(["DOCKER_HOST": "unix:///nonexistent/docker.sock"]) { $1 },
            workingDirectory: project.root)
        #expect(noEngine.exitCode == 1)
        #expect(noEngine.standardError.contains("no Docker or Podman API socket at /nonexistent/docker.sock"))
    }
}
