import NIOCore
import OxydraCore
import OxydraTesting
import Testing

@testable import OxydraContainer

#if canImport(Glibc)
    import Glibc
#endif

/// Why the engine tests cannot run here, or nil: they need a running Docker (or Podman) engine
/// on its socket (`scripts/test.sh` installs docker.io and starts dockerd).
let engineMissing: String? = {
    let socket = DockerEngine.socketPath(environment: ProcessInfo.processInfo.environment)
    var info = stat()
    guard stat(socket, &info) == 0 else { return "no container engine socket at \(socket) (start dockerd)" }
    return nil
}()

/// The Docker Engine API client against the real engine: an image imported from a root
/// filesystem assembled on this host (dash and its libraries), a locked-down container run from
/// it, its exit status and both output streams, lookup by label, and removal.
@Suite(
    "Docker Engine API", .serialized,
    .enabled(
        if: Capability.shouldRun(engineMissing), Comment(rawValue: Capability.skipReason("engine tests", engineMissing))
    ))
struct DockerEngineTests {
    let engine = DockerEngine(socketPath: DockerEngine.socketPath(environment: ProcessInfo.processInfo.environment))

    @Test func theEngineIsReachable() async throws {
        #expect(engineMissing == nil)
        #expect(try await engine.ping() == "OK")
        let version = try await engine.version()
        #expect(version["ApiVersion"]?.stringValue != nil)
    }

    @Test func aLockedDownContainerFromAnImportedTree() async throws {
        let directory = try TemporaryDirectory(prefix: "oxydra-image")
        defer { directory.remove() }
        let tree = try ImageTree(root: directory.path + "/root")
        try tree.copy("/bin/dash")
        try await tree.copyLibraries(of: "/bin/dash")
        try tree.directory("/tmp", mode: 0o1777)
        try await tree.pack(to: directory.path + "/root.tar")
        let tag = "t\(UInt32.random(in: 0...UInt32.max))"
        let id = try await engine.importImage(
            tarball: directory.path + "/root.tar", repository: "oxydra-test-probe", tag: tag,
            changes: ["LABEL oxydra.test=probe", "CMD [\"/bin/dash\"]"])
        #expect(id.hasPrefix("sha256:"))
        let image = try #require(try await engine.inspectImage("oxydra-test-probe:\(tag)"))
        #expect(image["Config"]?["Labels"]?["oxydra.test"]?.stringValue == "probe")

        let name = "oxydra-test-\(tag)"
        let labels = ["oxydra.test": tag]
        let container = try await engine.createContainer(
            name: name,
            spec: [
                "Image": .string("oxydra-test-probe:\(tag)"),
                "Cmd": [
                    "/bin/dash", "-c",
                    // Only dash is in the image: its builtins read /proc.
                    .string(
                        "while read -r k v rest; do case $k in Uid:|CapEff:) echo \"$k$v\";; esac; done "
                            + "< /proc/self/status; echo err >&2; exit 3"),
                ],
                "User": "65534:65534",
                "Labels": .object(labels.mapValues { .string($0) }),
                "HostConfig": [
                    "NetworkMode": "none", "CapDrop": ["ALL"], "SecurityOpt": ["no-new-privileges"],
                    "ReadonlyRootfs": true, "PidsLimit": 64,
                ],
            ])
        try await engine.startContainer(container)
        #expect(try await engine.waitContainer(container) == 3)
        let (out, err) = try await engine.logs(container)
        #expect(out == "Uid:65534\nCapEff:0000000000000000\n")
        #expect(err == "err\n")
        let listed = try await engine.listContainers(labels: labels)
        #expect(listed.compactMap { $0["Id"]?.stringValue } == [container])
        try await engine.removeContainer(container, force: true)
        #expect(try await engine.listContainers(labels: labels).isEmpty)
        #expect(try await engine.inspectContainer(container) == nil)
        try await engine.removeImage("oxydra-test-probe:\(tag)", force: true)
        #expect(try await engine.inspectImage("oxydra-test-probe:\(tag)") == nil)
    }

    @Test func theEnginesOwnRefusalIsPassedOn() async throws {
        await #expect {
            try await engine.createContainer(name: "oxydra-test-missing", spec: ["Image": "oxydra-no-such-image:0"])
        } throws: { error in
            let text = "\(error)"
            return text.contains("the container engine refused POST /containers/create (HTTP 404)")
                && text.contains("oxydra-no-such-image")
        }
    }
}

/// Socket problems are named before any connection is tried (no engine needed).
@Suite("Docker Engine socket errors")
struct DockerSocketErrorTests {
    @Test func noSocket() async throws {
        let engine = DockerEngine(socketPath: "/nonexistent/docker.sock")
        await #expect(throws: DockerError.noSocket(path: "/nonexistent/docker.sock")) { try await engine.ping() }
        #expect(
            DockerError.noSocket(path: "/x").description.hasPrefix(
                "no Docker or Podman API socket at /x: install Docker (`sudo apt-get install docker.io`)"))
    }

    @Test func aSocketNobodyListensOnMeansTheDaemonIsDown() async throws {
        let directory = try TemporaryDirectory(prefix: "oxydra-sock")
        defer { directory.remove() }
        let path = directory.path + "/docker.sock"
        // Bound but not listening: connecting is refused, as with a stale socket of a dead daemon.
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        #expect(bound == 0)
        let engine = DockerEngine(socketPath: path)
        await #expect {
            try await engine.ping()
        } throws: { error in
            "\(error)".hasPrefix("the container engine is not running: nothing accepts connections on \(path)")
        }
    }

    @Test func aRegularFileIsNotASocket() async throws {
        let directory = try TemporaryDirectory(prefix: "oxydra-sock")
        defer { directory.remove() }
        let path = directory.path + "/docker.sock"
        #expect(FileManager.default.createFile(atPath: path, contents: Data()))
        await #expect(throws: DockerError.noSocket(path: path)) {
            try await DockerEngine(socketPath: path).ping()
        }
    }

    @Test func theLogStreamIsDemultiplexed() {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        for (kind, text) in [(UInt8(1), "out1\n"), (2, "err\n"), (1, "out2\n")] {
            buffer.writeBytes([kind, 0, 0, 0])
            buffer.writeInteger(UInt32(text.utf8.count), endianness: .big)
            buffer.writeString(text)
        }
        let (out, err) = DockerEngine.demultiplex(buffer)
        #expect(out == "out1\nout2\n")
        #expect(err == "err\n")
        #expect(DockerEngine.demultiplex(ByteBuffer(string: "plain tty text\n")).stdout == "plain tty text\n")
    }

    @Test func socketFromDockerHost() {
        #expect(
            DockerEngine.socketPath(environment: ["DOCKER_HOST": "unix:///run/user/1000/podman/podman.sock"])
                == "/run/user/1000/podman/podman.sock")
        #expect(DockerEngine.socketPath(environment: [:]) == "/var/run/docker.sock")
        #expect(DockerEngine.socketPath(environment: ["DOCKER_HOST": "tcp://10.0.0.1:2375"]) == "/var/run/docker.sock")
    }
}
