import OxydraContainer
import OxydraCore

#if canImport(Glibc)
    import Glibc
#endif

/// What a micro VM boots: the host kernel, an initramfs that loads the modules and mounts the root
/// disk and the shares, and a read-only ext4 root disk with `oxydra-vm` (the container tier's
/// runtime tree), busybox and the guest's init.
///
/// In the VM: `/dev/vda` (ext4, read-only) is `/`; the 9p share `workspace` is `/workspace`, the
/// read-only share `config` is `/etc/oxydra` (the bootstrap envelope, the agent configuration,
/// and `environment`, the provider keys — never on the kernel command line, which the host's
/// process list shows); the network is QEMU's user mode (10.0.2.15/24, gateway and DNS at
/// 10.0.2.2 / 10.0.2.3; the host's loopback is 10.0.2.2); the gateway listens on
/// ``gatewayPort`` and QEMU publishes it on the host's 127.0.0.1 only.
public enum MicroVMImage {
    /// The gateway's port inside the VM.
    public static let gatewayPort = 8080
    /// The 9p tags.
    public static let workspaceTag = "workspace"
    public static let configTag = "config"

    /// The root disk's tree: the runtime tree of `oxydra-vm` plus busybox and `/sbin/oxydra-init`.
    public static func rootTree(oxydraVM: String, busybox: String, at root: String) async throws(MicroVMError) {
        do {
            try await GuestImageBuilder.runtimeTree(executable: oxydraVM, root: root)
            let tree = try ImageTree(root: root)
            try tree.copy(busybox, to: "/bin/busybox")
            for tool in ["sh", "mount", "ip", "poweroff", "cat"] {
                guard symlink("busybox", root + "/bin/" + tool) == 0 || errno == EEXIST else {
                    throw MicroVMError("cannot link \(tool) in the root tree")
                }
            }
            try tree.write(guestInit, to: "/sbin/oxydra-init", mode: 0o755)
            try tree.write("nameserver 10.0.2.3\n", to: "/etc/resolv.conf")
            try tree.write("127.0.0.1 localhost\n", to: "/etc/hosts")
            for directory in ["/proc", "/sys", "/dev", "/etc/oxydra"] { try tree.directory(directory) }
        } catch let error as MicroVMError {
            throw error
        } catch {
            throw MicroVMError("cannot assemble the micro VM root: \(error)")
        }
    }

    /// Packs `tree` into a raw ext4 image (`mke2fs -d`, no root privileges or loop devices needed),
    /// sized to the tree plus room for metadata.
    public static func rootDisk(tree: String, output: String) async throws(MicroVMError) {
        unlink(output)
        do {
            let used = try await ImageTree.run("/usr/bin/du", ["-sk", tree]).split(separator: "\t").first
            let kib = (Int(used ?? "") ?? 100_000) * 13 / 10 + 32_768
            _ = try await ImageTree.run(
                "/sbin/mke2fs", ["-q", "-t", "ext4", "-d", tree, "-L", "oxydra-root", "-m", "0", output, "\(kib)k"])
        } catch {
            throw MicroVMError("cannot build the root disk \(output) (mke2fs from e2fsprogs): \(error)")
        }
    }

    /// The initramfs: busybox, the modules' closure, and an init that mounts the root disk and the
    /// shares and hands over to `/sbin/oxydra-init` on the root disk.
    public static func initramfs(kernel: HostKernel, busybox: String) throws(MicroVMError) -> Initramfs {
        let modules = try kernel.modules()
        guard let tool = FileManager.default.contents(atPath: busybox) else {
            throw MicroVMError("cannot read \(busybox): install busybox-static")
        }
        var image = Initramfs()
        image.add(.file("bin/busybox", Array(tool), mode: 0o755))
        for name in ["sh", "mount", "umount", "insmod", "switch_root", "echo", "cat", "poweroff"] {
            image.add(.symlink("bin/" + name, target: "busybox"))
        }
        var loads: [String] = []
        for file in modules.files {
            guard let data = FileManager.default.contents(atPath: kernel.modulesDirectory + "/" + file) else {
                throw MicroVMError("cannot read the kernel module \(kernel.modulesDirectory)/\(file)")
            }
            let name = String(file.split(separator: "/").last ?? "")
            image.add(.file("lib/modules/" + name, Array(data)))
            loads.append("insmod /lib/modules/\(name) || fail \"cannot load \(name)\"")
        }
        for directory in ["proc", "sys", "dev", "newroot"] { image.add(.directory(directory)) }
        image.add(
            .file(
                "init",
                Array(
                    """
                    #!/bin/sh
                    fail() { echo "OXYDRA-INIT-FAILED: $1"; poweroff -f; }
                    mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
                    \(loads.joined(separator: "\n"))
                    mount -t ext4 -o ro /dev/vda /newroot || fail "cannot mount the root disk"
                    mount -t 9p -o trans=virtio,version=9p2000.L,cache=mmap,msize=262144 \(workspaceTag) /newroot/workspace \\
                        || fail "cannot mount the workspace share"
                    mount -t 9p -o trans=virtio,version=9p2000.L,ro \(configTag) /newroot/etc/oxydra \\
                        || fail "cannot mount the configuration share"
                    umount /proc /sys
                    mount --move /dev /newroot/dev
                    exec switch_root /newroot /sbin/oxydra-init

                    """.utf8), mode: 0o755))
        return image
    }

    /// `/sbin/oxydra-init` on the root disk: memory file systems, the network, then `oxydra-vm`;
    /// when it exits the VM powers off. `OXYDRA_USER` and `OXYDRA_GATEWAY_ADVERTISE` come from the
    /// kernel command line; the provider keys from `/etc/oxydra/environment`.
    static let guestInit = """
        #!/bin/sh
        mount -t proc proc /proc; mount -t sysfs sys /sys
        mount -t tmpfs -o size=64m,mode=1777,nosuid,nodev tmp /tmp; mount -t tmpfs -o size=8m,mode=755 run /run
        ip link set lo up; ip link set eth0 up
        ip addr add 10.0.2.15/24 dev eth0; ip route add default via 10.0.2.2
        echo "OXYDRA-INIT: starting oxydra-vm at $(cat /proc/uptime)"
        set -a; [ -f /etc/oxydra/environment ] && . /etc/oxydra/environment; set +a
        export HOME=/etc/oxydra/home PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 TZ=UTC
        cd /etc/oxydra/project
        /usr/local/bin/oxydra-vm --user-id "$OXYDRA_USER" --workspace-root /workspace \\
            --bootstrap-file /etc/oxydra/bootstrap.json --gateway-bind 0.0.0.0:\(gatewayPort) \\
            --gateway-advertise "$OXYDRA_GATEWAY_ADVERTISE"
        echo "OXYDRA-INIT: oxydra-vm exited with status $?"
        poweroff -f

        """
}
