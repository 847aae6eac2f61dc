import Foundation
import OxydraClient
import OxydraCore
import OxydraMicroVM
import OxydraRunner
import OxydraTesting
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Micro VM building blocks")
struct MicroVMPartsTests {
    @Test func moduleClosureLoadsDependenciesFirstAndOnce() throws {
        let dep = """
            kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
            kernel/fs/jbd2/jbd2.ko:
            kernel/lib/crc16.ko:
            kernel/fs/mbcache.ko:
            kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
            kernel/net/9p/9pnet.ko:
            kernel/drivers/virtio/virtio.ko:
            kernel/drivers/virtio/virtio_ring.ko:
            kernel/drivers/virtio/virtio_mmio.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
            kernel/arch/x86/crypto/crc32c-intel.ko.xz:
            """
        let closure = try KernelModules.closure(
            of: ["virtio_mmio", "9pnet_virtio", "ext4", "crc32c_intel"], modulesDep: dep)
        #expect(
            closure.files == [
                "kernel/drivers/virtio/virtio.ko", "kernel/drivers/virtio/virtio_ring.ko",
                "kernel/drivers/virtio/virtio_mmio.ko", "kernel/net/9p/9pnet.ko", "kernel/net/9p/9pnet_virtio.ko",
                "kernel/lib/crc16.ko", "kernel/fs/mbcache.ko", "kernel/fs/jbd2/jbd2.ko", "kernel/fs/ext4/ext4.ko",
                "kernel/arch/x86/crypto/crc32c-intel.ko.xz",
            ])
        #expect(throws: MicroVMError.self) { try KernelModules.closure(of: ["vsock"], modulesDep: dep) }
        #expect(throws: MicroVMError("modules.dep has a dependency cycle: a.ko → b.ko → a.ko")) {
            try KernelModules.closure(of: ["a"], modulesDep: "a.ko: b.ko\nb.ko: a.ko\n")
        }
    }

    /// The archive unpacks with GNU cpio to the same tree: directories, modes, symbolic links.
    @Test func initramfsIsANewcArchiveCpioUnpacks() async throws {
        var image = Initramfs()
        image.add(.file("bin/tool", Array("#!/bin/sh\necho hi\n".utf8), mode: 0o755))
        image.add(.symlink("bin/alias", target: "tool"))
        image.add(.file("etc/deep/config.txt", Array("a=1".utf8)))
        image.add(.file("odd size", [1, 2, 3]))
        let directory = try TemporaryDirectory(prefix: "oxydra-initramfs")
        defer { directory.remove() }
        try Data(image.archive).write(to: URL(fileURLWithPath: directory.path + "/image.cpio"))
        _ = try directory.createDirectory("out")
        let cpio = Process()
        cpio.executableURL = URL(fileURLWithPath: "/bin/sh")
        cpio.arguments = ["-c", "cpio -idm --quiet < ../image.cpio"]
        cpio.currentDirectoryURL = URL(fileURLWithPath: directory.path + "/out")
        try cpio.run()
        cpio.waitUntilExit()
        #expect(cpio.terminationStatus == 0)
        let out = directory.path + "/out"
        #expect(try String(contentsOfFile: out + "/bin/tool", encoding: .utf8) == "#!/bin/sh\necho hi\n")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: out + "/bin/alias") == "tool")
        #expect(try String(contentsOfFile: out + "/etc/deep/config.txt", encoding: .utf8) == "a=1")
        #expect(FileManager.default.contents(atPath: out + "/odd size") == Data([1, 2, 3]))
        var info = stat()
        #expect(stat(out + "/bin/tool", &info) == 0 && info.st_mode & 0o777 == 0o755)
    }

    @Test func planBuildsQEMUsCommandLineAndRefusesAmbiguousPaths() {
        var plan = MicroVMPlan(qemu: "/usr/bin/qemu-system-x86_64", kernel: "/k", initramfs: "/i", consoleLog: "/c.log")
        plan.rootDisk = "/root.ext4"
        plan.shares = [
            .init(tag: "workspace", hostPath: "/ws", readOnly: false),
            .init(tag: "config", hostPath: "/cfg", readOnly: true),
        ]
        plan.forwards = [.init(host: 40001, guest: 8080)]
        plan.kernelArguments = ["OXYDRA=1"]
        plan.guestForwards = [.init(address: "10.0.2.100", port: 443, command: ["/r", "vm-connect", "api.x", "443"])]
        let line = plan.arguments.joined(separator: " ")
        #expect(line.contains("-machine microvm,"))
        #expect(line.contains("-accel tcg,tb-size=64 -cpu max"))
        #expect(
            line.contains(
                "-append console=ttyS0 quiet panic=-1 reboot=t tsc_early_khz=1000000 tsc=reliable no_timer_check lpj=2000000 OXYDRA=1"
            ))
        #expect(line.contains("file=/root.ext4,format=raw,if=none,readonly=on"))
        #expect(line.contains("local,id=fs1,path=/cfg,security_model=none,readonly=on"))
        #expect(line.contains("mount_tag=workspace"))
        #expect(
            line.contains(
                "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:40001-:8080,"
                    + "guestfwd=tcp:10.0.2.100:443-cmd:/r vm-connect api.x 443"))
        #expect(plan.problem == nil)
        plan.guestForwards[0].command[2] = "a,b"
        #expect(plan.problem?.contains("`a,b`") == true)
        plan.guestForwards = []
        plan.shares.append(.init(tag: "bad-tag", hostPath: "/x", readOnly: true))
        #expect(plan.problem == "9p share tag `bad-tag` must be letters, digits or _")
        plan.rootDisk = "/a,b"
        #expect(plan.problem?.contains("`/a,b`") == true)
    }
}

/// A real micro VM under TCG (what these machines can run; `/dev/kvm` is there but cannot run
/// guests): the host kernel boots with an initramfs built here, loads the modules it needs, reads
/// and writes a 9p share, and answers on a port forwarded from the host's loopback.
@Suite(
    "Micro VM boot (QEMU microvm, TCG)", .serialized,
    .enabled(
        if: Capability.shouldRun(microVMMissing), Comment(rawValue: Capability.skipReason("micro VM", microVMMissing)))
)
struct MicroVMBootTests {
    static let qemu = "/usr/bin/qemu-system-x86_64"
    static let busybox = "/bin/busybox"

    @Test func theHostKernelBootsWithOurInitramfsSharesAndForwards() async throws {
        if let missing = microVMMissing { Issue.record("micro VM boot needs: \(missing)") }
        let kernel = try HostKernel.find()
        let modules = try kernel.modules(["virtio_mmio", "virtio_net", "9pnet_virtio", "9p"])
        // Two services on the host's loopback: the restricted VM must not reach the first (as it
        // must not reach other users' guests), and reaches the second only through its forward.
        let forbidden = try LoopbackPort.serve(reply: "host-service")
        let allowed = try LoopbackPort.serve(reply: "provider")
        var image = Initramfs()
        image.add(.file("bin/busybox", Array(try Data(contentsOf: URL(fileURLWithPath: Self.busybox))), mode: 0o755))
        for tool in ["sh", "mount", "insmod", "cat", "echo", "ip", "nc", "grep", "wc", "poweroff"] {
            image.add(.symlink("bin/" + tool, target: "busybox"))
        }
        for file in modules.files {
            let data = try Data(contentsOf: URL(fileURLWithPath: kernel.modulesDirectory + "/" + file))
            image.add(.file("lib/modules/" + (file.split(separator: "/").last.map(String.init) ?? file), Array(data)))
        }
        let loads = modules.files.map { "insmod /lib/modules/\($0.split(separator: "/").last!)" }.joined(
            separator: "\n")
        image.add(
            .file(
                "init",
                Array(
                    """
                    #!/bin/sh
                    mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
                    \(loads)
                    mkdir -p /mnt && mount -t 9p -o trans=virtio,version=9p2000.L work /mnt
                    echo "OXYDRA-TEST-INIT up $(cat /proc/uptime)"
                    echo "seen: $(cat /mnt/in.txt); cpus: $(grep -c ^processor /proc/cpuinfo)" > /mnt/out.txt
                    ip link set lo up; ip link set eth0 up; ip addr add 10.0.2.15/24 dev eth0
                    ip route add default via 10.0.2.2
                    direct=$(nc -w 3 10.0.2.2 \(forbidden.port) </dev/null)
                    forwarded=$(nc -w 10 10.0.2.100 \(allowed.port) </dev/null)
                    echo "direct=$direct forwarded=$forwarded" > /mnt/net.txt
                    echo pong | nc -l -p 7000
                    echo "OXYDRA-TEST-INIT done"
                    poweroff -f

                    """.utf8), mode: 0o755))
        for directory in ["proc", "sys", "dev"] { image.add(.directory(directory)) }

        let directory = try TemporaryDirectory(prefix: "oxydra-microvm")
        defer { directory.remove() }
        let share = try directory.createDirectory("share")
        try "hello from the host".write(toFile: share + "/in.txt", atomically: true, encoding: .utf8)
        try Data(image.archive).write(to: URL(fileURLWithPath: directory.path + "/initramfs.cpio"))
        let port = try LoopbackPort.free()
        var plan = MicroVMPlan(
            qemu: Self.qemu, kernel: kernel.image, initramfs: directory.path + "/initramfs.cpio",
            consoleLog: directory.path + "/console.log")
        plan.vcpus = 2
        plan.memoryMiB = 256
        plan.shares = [.init(tag: "work", hostPath: share, readOnly: false)]
        plan.forwards = [.init(host: port, guest: 7000)]
        plan.guestForwards = [
            .init(
                address: "10.0.2.100", port: allowed.port,
                command: [ChildProcess.path(of: "runner"), "vm-connect", "127.0.0.1", "\(allowed.port)"])
        ]
        #expect(plan.problem == nil)

        let qemu = Process()
        qemu.executableURL = URL(fileURLWithPath: plan.qemu)
        qemu.arguments = plan.arguments
        qemu.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        let errors = Pipe()
        qemu.standardError = errors
        let started = ContinuousClock.now
        try qemu.run()
        defer { if qemu.isRunning { kill(qemu.processIdentifier, SIGKILL) } }

        // The VM wrote to the share: it booted, loaded the modules and mounted 9p.
        let deadline = ContinuousClock.now + .seconds(120)
        while !FileManager.default.fileExists(atPath: share + "/out.txt") {
            guard ContinuousClock.now < deadline, qemu.isRunning else {
                let console = (try? String(contentsOfFile: plan.consoleLog, encoding: .utf8)) ?? ""
                throw TestSupportError("the VM did not write to its share; console:\n\(console.suffix(3000))")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        let booted = ContinuousClock.now - started
        try await Task.sleep(for: .milliseconds(200))
        #expect(
            try String(contentsOfFile: share + "/out.txt", encoding: .utf8) == "seen: hello from the host; cpus: 2\n")

        // The forwarded port reaches the VM's listener.
        var answer = ""
        while answer.isEmpty && ContinuousClock.now < deadline {
            answer = (try? LoopbackPort.read(port: port)) ?? ""
            if answer.isEmpty { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(answer == "pong\n")
        // Restricted: the host's loopback service was not reached; the forward was.
        #expect(try String(contentsOfFile: share + "/net.txt", encoding: .utf8) == "direct= forwarded=provider\n")
        #expect(forbidden.connections() == 0 && allowed.connections() == 1)
        while qemu.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!qemu.isRunning, "the VM powered off by itself")
        let console = try String(contentsOfFile: plan.consoleLog, encoding: .utf8)
        #expect(console.contains("OXYDRA-TEST-INIT up") && console.contains("OXYDRA-TEST-INIT done"), "\(console)")
        print("micro VM (TCG): boot to init writing its share in \(booted)")
    }
}

extension MicroVMBootTests {
    /// The probe boots under TCG and tells whether KVM can run guests, within its deadline either
    /// way (on these machines `/dev/kvm` exists and cannot: QEMU aborts or the guest never runs).
    @Test func theAcceleratorProbeBootsUnderTCGAndJudgesKVMWithinItsDeadline() async throws {
        let kernel = try HostKernel.find()
        let directory = try TemporaryDirectory(prefix: "oxydra-probe")
        defer { directory.remove() }
        let tcg = await AcceleratorProbe.problem(
            .tcg, qemu: Self.qemu, kernel: kernel.image, busybox: Self.busybox, workDirectory: directory.path,
            timeout: .seconds(60))
        #expect(tcg == nil, "\(tcg ?? "")")
        let started = ContinuousClock.now
        let kvm = await AcceleratorProbe.problem(
            .kvm, qemu: Self.qemu, kernel: kernel.image, busybox: Self.busybox, workDirectory: directory.path,
            timeout: .seconds(5))
        #expect(ContinuousClock.now - started < .seconds(15))
        if let kvm {
            #expect(kvm.contains("kvm") || kvm.contains("/dev/kvm"), "\(kvm)")
        }
        print("micro VM accelerator probe: tcg boots; kvm: \(kvm ?? "boots")")
    }
}

extension MicroVMBootTests {
    /// The real guest in a micro VM: the root disk built from the runtime tree (this build's
    /// `oxydra-vm`), the initramfs with the modules, the workspace and configuration as 9p shares;
    /// its gateway, published on the host's loopback, answers a turn streamed by a scripted model on
    /// the host, and the conversation is in the workspace's memory on the host.
    @Test func oxydraVMServesATurnFromInsideAMicroVM() async throws {
        let kernel = try HostKernel.find()
        let model = try await ScriptedModelServer.start()
        let directory = try TemporaryDirectory(prefix: "oxydra-microvm-guest")
        defer {
            directory.remove()
            Teardown.run { try? await model.shutdown() }
        }
        let root = directory.path + "/root"
        try await MicroVMImage.rootTree(oxydraVM: ChildProcess.path(of: "oxydra-vm"), busybox: Self.busybox, at: root)
        try await MicroVMImage.rootDisk(tree: root, output: directory.path + "/root.ext4")
        try Data(try MicroVMImage.initramfs(kernel: kernel, busybox: Self.busybox).archive)
            .write(to: URL(fileURLWithPath: directory.path + "/initramfs.cpio"))

        let workspace = try directory.createDirectory("workspace")
        for sub in ["shared", "tmp", "vault", "ipc", "logs", ".oxydra"] {
            _ = try directory.createDirectory("workspace/" + sub)
        }
        let config = try directory.createDirectory("config")
        for sub in ["home", "project", "project/.oxydra"] { _ = try directory.createDirectory("config/" + sub) }
        // The scripted model on the host's loopback, as the restricted VM reaches it: a forward
        // address named in the VM's hosts file.
        try model.agentConfig().replacing("127.0.0.1", with: "host.docker.internal")
            .write(toFile: config + "/project/.oxydra/agent.toml", atomically: true, encoding: .utf8)
        try "10.0.2.100 host.docker.internal\n".write(toFile: config + "/hosts", atomically: true, encoding: .utf8)
        try "API_KEY=scripted\n".write(toFile: config + "/environment", atomically: true, encoding: .utf8)
        var envelope = BootstrapEnvelope(
            userID: "alice", sandboxTier: .microVM, workspaceRoot: "/workspace",
            startupStatus: StartupStatus(sandboxTier: .microVM))
        let controlToken = GatewayProtocol.newToken()
        envelope.controlListen = .init(port: 8081, token: controlToken)
        try envelope.json.compactText.write(toFile: config + "/bootstrap.json", atomically: true, encoding: .utf8)

        let port = try LoopbackPort.free()
        var controlPort = try LoopbackPort.free()
        while controlPort == port { controlPort = try LoopbackPort.free() }
        var plan = MicroVMPlan(
            qemu: Self.qemu, kernel: kernel.image, initramfs: directory.path + "/initramfs.cpio",
            consoleLog: directory.path + "/console.log")
        plan.rootDisk = directory.path + "/root.ext4"
        plan.vcpus = 2
        plan.memoryMiB = 512
        plan.shares = MicroVMImage.mounts.map { mount in
            let host =
                mount.tag == MicroVMImage.configTag
                ? config : workspace + "/" + (mount.tag == "state" ? ".oxydra" : mount.tag)
            return .init(tag: mount.tag, hostPath: host, readOnly: mount.readOnly)
        }
        plan.forwards = [.init(host: port, guest: MicroVMImage.gatewayPort), .init(host: controlPort, guest: 8081)]
        let modelPort = model.port
        plan.guestForwards = [
            .init(
                address: "10.0.2.100", port: modelPort,
                command: [ChildProcess.path(of: "runner"), "vm-connect", "127.0.0.1", "\(modelPort)"])
        ]
        plan.kernelArguments = ["OXYDRA_USER=alice", "OXYDRA_GATEWAY_ADVERTISE=127.0.0.1:\(port)"]
        #expect(plan.problem == nil)
        let qemu = Process()
        qemu.executableURL = URL(fileURLWithPath: plan.qemu)
        qemu.arguments = plan.arguments
        let started = ContinuousClock.now
        try qemu.run()
        defer { if qemu.isRunning { kill(qemu.processIdentifier, SIGKILL) } }

        let marker = workspace + "/ipc/" + GatewayProtocol.endpointMarkerFile
        let deadline = ContinuousClock.now + .seconds(180)
        while (try? String(contentsOfFile: marker, encoding: .utf8))?.isEmpty ?? true {
            guard ContinuousClock.now < deadline, qemu.isRunning else {
                let console = (try? String(contentsOfFile: plan.consoleLog, encoding: .utf8)) ?? ""
                let log = (try? String(contentsOfFile: workspace + "/logs/oxydra-vm.log", encoding: .utf8)) ?? ""
                throw TestSupportError(
                    "the guest did not come up; console:\n\(console.suffix(3000))\nlog:\n\(log.suffix(2000))")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        let ready = ContinuousClock.now - started
        let access = try GatewayAccess.discover(ipcDirectory: workspace + "/ipc")
        #expect(access.endpoint == "ws://127.0.0.1:\(port)/ws")

        model.enqueue(.text("hello from inside the VM"))
        let client = GatewayClient(endpoint: access.endpoint, token: access.token)
        var frames = client.frames.makeAsyncIterator()
        client.send(.hello(.init(requestID: "h", userID: "alice", client: "test")))
        let turnStarted = ContinuousClock.now
        var text = ""
        var completed = false
        while let frame = await frames.next() {
            if case .helloAck = frame {
                client.send(.sendTurn(.init(requestID: "t", turnID: "vm-1", prompt: "are you in a VM?")))
            }
            if case .assistantDelta(_, let delta) = frame { text += delta }
            if case .turnCompleted = frame {
                completed = true
                break
            }
            if case .error(let info) = frame { throw TestSupportError("the turn failed: \(info.message)") }
        }
        let turn = ContinuousClock.now - turnStarted
        client.close()
        #expect(completed && text == "hello from inside the VM")

        // The control protocol on the VM's control port: refused without the token, answered with it.
        func control(_ request: JSONValue) throws -> JSONValue {
            let reply = try LoopbackPort.exchange(port: controlPort, LengthPrefixedFrame.encode(request))
            return try JSONValue(parsing: String(decoding: reply.dropFirst(4), as: UTF8.self))
        }
        let refused = try control(["op": "health_check"])
        #expect(refused["ok"] == false && refused["error"]?.stringValue?.contains("unauthorized") == true)
        let wrong = try control(["op": "health_check", "token": .string(String(controlToken.reversed()))])
        #expect(wrong["ok"] == false)
        let health = try control(["op": "health_check", "token": .string(controlToken)])
        #expect(health["ok"] == true && health["health"]?["user_id"] == "alice", "\(health)")
        #expect(health["health"]?["startup_status"]?["sandbox_tier"] == "micro_vm")
        // The runner's own client, as `runner status` will use it.
        guard
            case .health(let reported) = try ControlClient.request(.healthCheck, port: controlPort, token: controlToken)
        else { throw TestSupportError("no health from the runner's control client") }
        #expect(reported.userID == "alice" && reported.healthy && reported.startupStatus.sandboxTier == .microVM)
        // And `shutdown_user` ends the guest, and with it the VM (its init powers off).
        guard case .shutdownAccepted = try ControlClient.request(.shutdownUser, port: controlPort, token: controlToken)
        else { throw TestSupportError("shutdown_user was not accepted") }
        let stopping = ContinuousClock.now + .seconds(60)
        while qemu.isRunning && ContinuousClock.now < stopping { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!qemu.isRunning, "the VM powered off after the guest stopped")
        let console = try String(contentsOfFile: plan.consoleLog, encoding: .utf8)
        #expect(console.contains("OXYDRA-INIT: oxydra-vm exited with status 0"), "\(console.suffix(2000))")
        #expect(try String(contentsOfFile: workspace + "/ipc/" + MicroVMImage.exitStatusFile, encoding: .utf8) == "0\n")
        #expect(FileManager.default.fileExists(atPath: workspace + "/.oxydra/memory.db"))
        print("micro VM guest (TCG): boot to gateway ready \(ready), first turn \(turn)")
    }
}

/// What this machine lacks to boot a micro VM (nil: nothing).
let microVMMissing: String? = {
    if access(MicroVMBootTests.qemu, X_OK) != 0 { return "qemu-system-x86 is not installed" }
    if access(MicroVMBootTests.busybox, X_OK) != 0 { return "busybox-static is not installed" }
    if (try? HostKernel.find()) == nil { return "no kernel in /boot (linux-image-amd64)" }
    return nil
}()

/// Loopback TCP helpers for the boot test.
enum LoopbackPort {
    /// A port nothing listens on now.
    static func free() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard bound else { throw TestSupportError("cannot find a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Sends `bytes` to 127.0.0.1:`port` and reads the answer until the peer closes.
    static func exchange(port: Int, _ bytes: [UInt8]) throws -> [UInt8] {
        let fd = try connected(port)
        defer { close(fd) }
        guard send(fd, bytes, bytes.count, 0) == bytes.count else { throw TestSupportError("cannot send") }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while answer.count < 1 << 20 {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            answer += buffer[0..<count]
        }
        return answer
    }

    static func connected(_ port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let done = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        guard done else {
            close(fd)
            throw TestSupportError("cannot connect to 127.0.0.1:\(port)")
        }
        return fd
    }

    /// A service on 127.0.0.1 answering `reply` to each connection, for the life of the process.
    static func serve(reply: String) throws -> (port: Int, connections: @Sendable () -> Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 && listen(fd, 8) == 0
            }
        }
        guard bound else { throw TestSupportError("cannot listen on loopback") }
        let count = Mutex(0)
        Thread.detachNewThread {
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 { return }
                count.withLock { $0 += 1 }
                _ = reply.utf8CString.withUnsafeBufferPointer { send(client, $0.baseAddress, $0.count - 1, 0) }
                close(client)
            }
        }
        return (Int(UInt16(bigEndian: address.sin_port)), { count.withLock { $0 } })
    }

    /// Connects to 127.0.0.1:`port` and reads until the peer closes (at most 1 KiB).
    static func read(port: Int) throws -> String {
        let fd = try connected(port)
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1024)
        while bytes.count < 1024 {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
