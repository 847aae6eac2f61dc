import Dispatch
import Foundation
import OxydraContainer
import OxydraCore
import OxydraTesting
import Testing

#if canImport(CDispatch)
    import CDispatch
#endif

#if canImport(Glibc)
    import Glibc
#endif

/// Why the image tests cannot run here, or nil: a container engine on its socket and mmdebstrap
/// (`scripts/test.sh` installs docker.io and mmdebstrap and starts dockerd).
let imageBuildMissing: String? = {
    let socket = DockerEngine.socketPath(environment: ProcessInfo.processInfo.environment)
    var info = stat()
    if stat(socket, &info) != 0 { return "no container engine socket at \(socket) (start dockerd)" }
    if access("/usr/bin/mmdebstrap", X_OK) != 0 { return "mmdebstrap is not installed (apt-get install mmdebstrap)" }
    return nil
}()

/// `runner images build|list` end to end: both guest images assembled on this host and imported
/// through the real engine, checked by running them; an unchanged rebuild reuses them; an image
/// built from other binaries is reported stale.
@Suite(
    "Guest images", .serialized,
    .enabled(
        if: Capability.shouldRun(imageBuildMissing),
        Comment(rawValue: Capability.skipReason("guest image tests", imageBuildMissing))))
struct GuestImageTests {
    let engine = DockerEngine(socketPath: DockerEngine.socketPath(environment: ProcessInfo.processInfo.environment))

    /// Runs `command` in a throw-away container of `image` (no network, no capabilities, uid 1000).
    func run(_ image: String, entrypoint: [String], command: [String]) async throws -> (Int, String, String) {
        let name = "oxydra-test-\(UInt32.random(in: 0...UInt32.max))"
        let id = try await engine.createContainer(
            name: name,
            spec: [
                "Image": .string(image), "Entrypoint": .array(entrypoint.map(JSONValue.string)),
                "Cmd": .array(command.map(JSONValue.string)), "User": "1000:1000",
                "HostConfig": ["NetworkMode": "none", "CapDrop": ["ALL"], "ReadonlyRootfs": true],
            ])
        defer { Teardown.run { try? await engine.removeContainer(id, force: true) } }
        try await engine.startContainer(id)
        let status = try await engine.waitContainer(id)
        let (out, err) = try await engine.logs(id)
        return (status, out, err)
    }

    @Test func buildListRunAndReuse() async throws {
        #expect(imageBuildMissing == nil)
        let project = try Project()
        defer { project.directory.remove() }
        let built = try await project.run(["images", "build", "--json"])
        #expect(built.exitCode == 0, "\(built.standardError)")
        let reports = try #require(try JSONValue(parsing: built.standardOutput).arrayValue)
        #expect(reports.compactMap { $0["reference"]?.stringValue } == ["oxydra-vm:latest", "shell-vm:latest"])
        #expect(built.standardError.contains("==> "))

        let listed = try await project.run(["images", "list", "--json"])
        #expect(listed.exitCode == 0)
        let states = try #require(try JSONValue(parsing: listed.standardOutput).arrayValue).map {
            $0["state"]?.stringValue
        }
        #expect(states == ["current", "current"])

        // The runtime image runs its binary as an unprivileged user without the host's files.
        let (status, out, _) = try await run(
            "oxydra-vm:latest", entrypoint: ["/usr/local/bin/oxydra-vm"], command: ["--help"])
        #expect(status == 0)
        #expect(out.contains("Run one user's Oxydra guest"))
        let image = try #require(try await engine.inspectImage("oxydra-vm:latest"))
        #expect(image["Config"]?["User"]?.stringValue == "1000:1000")
        #expect(image["Config"]?["Labels"]?["oxydra.guest_role"]?.stringValue == "runtime")
        #expect(image["Config"]?["Labels"]?["oxydra.version"]?.stringValue == OxydraVersion.current)
        #expect(try await engine.inspectImage("oxydra-vm:\(OxydraVersion.current)")?["Id"] == image["Id"])

        // The sidecar has the allow list's tools and shell-daemon.
        let (toolStatus, tools, toolErrors) = try await run(
            "shell-vm:latest", entrypoint: ["/bin/sh", "-c"],
            command: [
                "for t in git python3 jq curl grep sed awk find dash; do command -v $t >/dev/null || echo missing $t; done; "
                    + "/usr/local/bin/shell-daemon --help >/dev/null && echo daemon-ok; id -u"
            ])
        #expect(toolStatus == 0, "\(toolErrors)")
        #expect(tools == "daemon-ok\n1000\n")

        // Unchanged inputs: nothing is rebuilt.
        let again = try await project.run(["images", "build"])
        #expect(again.exitCode == 0)
        #expect(again.standardOutput.components(separatedBy: "(unchanged, reused)").count - 1 == 2)

        // Another oxydra-vm binary than the one the image was built from: stale.
        let stale = try await project.run(
            ["images", "list"],
            extraEnvironment: ["OXYDRA_VM_PROCESS_EXECUTABLE": ChildProcess.path(of: "shell-daemon")])
        #expect(stale.standardOutput.contains("runtime oxydra-vm:latest stale"))
        #expect(stale.standardError.contains("runner images build"))
    }

    @Test func aBrokenRunnerConfigIsTheErrorNotTheDefaults() async throws {
        let project = try Project()
        defer { project.directory.remove() }
        for command in [["images", "build"], ["images", "list"]] {
            let result = try await project.run(command + ["--config", ".oxydra/absent.toml"])
            #expect(result.exitCode == 1)
            #expect(result.standardError.contains("runner config not found at ./.oxydra/absent.toml"))
            #expect(result.standardOutput.isEmpty)
        }
    }

    @Test func anUnknownRoleIsRefused() async throws {
        let project = try Project()
        defer { project.directory.remove() }
        let result = try await project.run(["images", "build", "--only", "browser"])
        #expect(result.exitCode != 0)
        #expect(result.standardError.contains("--only takes `runtime` or `sidecar`, not `browser`"))
    }
}
