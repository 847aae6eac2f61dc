import OxydraCore
import OxydraTesting
import Testing

@testable import OxydraContainer

/// The container-tier plan: the security properties read off the documents, and the engine
/// accepting them as written (created, inspected, removed — not started).
@Suite("Container plan")
struct ContainerPlanTests {
    func plan(network: ShellNetwork = .none, uid: UInt32 = 1000) -> ContainerPlan {
        ContainerPlan(
            user: "alice", uid: uid, gid: uid, workspace: "/srv/oxydra/alice",
            bootstrapFile: "/srv/oxydra/alice/ipc/bootstrap.json",
            shellSocketHostDirectory: "/srv/oxydra/alice/ipc/shell", runtimeImage: "oxydra-vm:latest",
            sidecarImage: "shell-vm:latest", gatewayHostPort: 41234,
            resources: .init(vcpus: 2, memoryMiB: 512, maxProcesses: 128), shellNetwork: network,
            runtimeEnvironment: ["OPENAI_API_KEY": "sk-secret"])
    }

    @Test func bothContainersAreLockedDown() {
        let plan = plan()
        for spec in [plan.runtime, plan.sidecar] {
            let host = spec["HostConfig"]
            #expect(spec["User"] == "1000:1000")
            #expect(host?["CapDrop"] == ["ALL"])
            #expect(host?["SecurityOpt"] == ["no-new-privileges"])
            #expect(host?["ReadonlyRootfs"] == true)
            #expect(host?["Init"] == true)
            #expect(host?["RestartPolicy"] == ["Name": "no"])
            #expect(host?["PidsLimit"] == 128)
            #expect(host?["Memory"] == .integer(512 << 20))
            #expect(host?["NanoCpus"] == .integer(2_000_000_000))
            #expect(host?["Privileged"] == nil)
        }
        #expect(plan.name(.runtime) == "oxydra-container-alice-oxydra-vm")
        #expect(plan.name(.sidecar) == "oxydra-container-alice-shell-vm")
        #expect(plan.runtime["Labels"]?["oxydra.guest_role"] == "runtime")
        #expect(plan.sidecar["Labels"]?["oxydra.sandbox_tier"] == "container")
    }

    @Test func onFailureRestartsAreTheEnginesToDo() {
        var plan = plan()
        plan.restartAttempts = 5
        for spec in [plan.runtime, plan.sidecar] {
            #expect(spec["HostConfig"]?["RestartPolicy"] == ["Name": "on-failure", "MaximumRetryCount": 5])
        }
    }

    @Test func theGatewayIsPublishedOnLoopbackOnly() {
        let bindings = plan().runtime["HostConfig"]?["PortBindings"]?["7600/tcp"]?.arrayValue
        #expect(bindings == [["HostIp": "127.0.0.1", "HostPort": "41234"]])
        #expect(plan().sidecar["HostConfig"]?["PortBindings"] == nil)
    }

    @Test func theSidecarSeesOnlySharedTmpAndItsSocket() {
        let plan = plan()
        #expect(
            plan.sidecar["HostConfig"]?["Binds"]
                == [
                    "/srv/oxydra/alice/shared:/shared", "/srv/oxydra/alice/tmp:/tmp",
                    "/srv/oxydra/alice/ipc/shell:/run/oxydra/shell",
                ])
        #expect(plan.sidecar["HostConfig"]?["NetworkMode"] == "none")
        var egress = self.plan(network: .egress)
        egress.runtimeNetwork = "oxydra-alice"
        #expect(egress.sidecar["HostConfig"]?["NetworkMode"] == "oxydra-alice")
        // The vault is read-only for the runtime; the envelope too.
        let binds = plan.runtime["HostConfig"]?["Binds"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(binds.contains("/srv/oxydra/alice/vault:/workspace/vault:ro"))
        #expect(binds.contains("/srv/oxydra/alice/ipc/bootstrap.json:/run/oxydra/bootstrap:ro"))
    }

    @Test func theKeyTravelsAsEnvironmentOnlyAndNeverToTheSidecar() {
        let plan = plan()
        #expect(plan.runtime["Env"] == ["HOME=/etc/oxydra/home", "OPENAI_API_KEY=sk-secret"])
        for spec in [plan.runtime, plan.sidecar] {
            let withoutEnvironment = spec.objectValue?.filter { $0.key != "Env" } ?? [:]
            #expect(!JSONValue.object(withoutEnvironment).compactText.contains("sk-secret"))
        }
        #expect(!plan.sidecar.compactText.contains("sk-secret"))
    }

    @Test func rootIsRefused() {
        #expect(
            plan(uid: 0).problem
                == "the container tier never runs a guest as root: run runner as the user who owns the workspace")
        #expect(plan().problem == nil)
    }

    @Test(
        .enabled(
            if: Capability.shouldRun(engineMissing),
            Comment(rawValue: Capability.skipReason("engine tests", engineMissing))))
    func theEngineAcceptsThePlanAsWritten() async throws {
        let engine = DockerEngine(socketPath: DockerEngine.socketPath(environment: ProcessInfo.processInfo.environment))
        let directory = try TemporaryDirectory(prefix: "oxydra-plan")
        defer { directory.remove() }
        // Any image will do for create/inspect: a dash tree.
        let tree = try ImageTree(root: directory.path + "/root")
        try tree.copy("/bin/dash")
        try await tree.copyLibraries(of: "/bin/dash")
        try await tree.pack(to: directory.path + "/root.tar")
        let tag = "p\(UInt32.random(in: 0...UInt32.max))"
        _ = try await engine.importImage(
            tarball: directory.path + "/root.tar", repository: "oxydra-test-plan", tag: tag)
        defer { Teardown.run { try? await engine.removeImage("oxydra-test-plan:\(tag)", force: true) } }
        for name in ["shared", "tmp", "vault", "ipc/shell", "logs", ".oxydra"] {
            _ = try directory.createDirectory("ws/\(name)")
        }
        try directory.write("{}", to: "ws/ipc/bootstrap.json")
        var plan = plan()
        plan.user = UserID("plan-\(tag)")
        plan.workspace = directory.path + "/ws"
        plan.bootstrapFile = directory.path + "/ws/ipc/bootstrap.json"
        plan.shellSocketHostDirectory = directory.path + "/ws/ipc/shell"
        plan.runtimeImage = "oxydra-test-plan:\(tag)"
        plan.sidecarImage = "oxydra-test-plan:\(tag)"
        for (role, spec) in [(GuestImageBuilder.Role.runtime, plan.runtime), (.sidecar, plan.sidecar)] {
            let id = try await engine.createContainer(name: plan.name(role), spec: spec)
            let inspected = try #require(try await engine.inspectContainer(id))
            try await engine.removeContainer(id, force: true)
            let host = inspected["HostConfig"]
            #expect(inspected["Name"]?.stringValue == "/" + plan.name(role))
            #expect(inspected["Config"]?["User"] == "1000:1000")
            #expect(host?["CapDrop"] == ["ALL"])
            #expect(host?["ReadonlyRootfs"] == true)
            #expect(host?["PidsLimit"] == 128)
            #expect(host?["Memory"] == .integer(512 << 20))
            if role == .runtime {
                #expect(host?["PortBindings"]?["7600/tcp"]?.arrayValue?.first?["HostIp"] == "127.0.0.1")
            } else {
                #expect(host?["NetworkMode"] == "none")
            }
        }
    }
}
