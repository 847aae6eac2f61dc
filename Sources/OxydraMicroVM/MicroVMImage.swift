import OxydraContainer
import OxydraCore

#if canImport(Glibc)
    import Glibc
#endif

/// What a micro VM boots: the host kernel, an initramfs that loads the modules and mounts the root
/// disk and the shares, and a read-only ext4 root disk with `oxydra-vm` (the container tier's
/// runtime tree), busybox and the guest's init — and, when the guest has a shell, the shell
/// sidecar's Debian userland with `shell-daemon` and bubblewrap.
///
/// In the VM: `/dev/vda` (ext4, read-only) is `/`; each of ``mounts`` is a 9p share of a host
/// directory (the workspace's parts, and `config` read-only at `/etc/oxydra`: the bootstrap
/// envelope, the agent configuration, `hosts`, and for the boot only `environment`, the provider
/// keys — never on the kernel command line, which the host's process list shows); the network is
/// QEMU's user mode, restricted (10.0.2.15/24; nothing of the host or the internet is reachable
/// except the forwards the runner sets up); the gateway listens on ``gatewayPort`` and QEMU
/// publishes it on the host's 127.0.0.1 only.
public enum MicroVMImage {
    /// The gateway's port inside the VM.
    public static let gatewayPort = 8080
    /// The control protocol's port inside the VM (reached through a forward, with a token).
    public static let controlPort = 8081
    /// Where (in the `ipc` share) the guest's init writes `oxydra-vm`'s exit status.
    public static let exitStatusFile = "vm-exit-status"
    /// The 9p share of the configuration directory.
    public static let configTag = "config"

    /// A 9p share the guest mounts at boot.
    public struct Mount: Sendable, Hashable {
        public var tag: String
        public var path: String
        public var readOnly: Bool
    }

    /// The shares, in mount order: the workspace's parts as the container tier mounts them (the
    /// vault read-only) and the configuration.
    public static let mounts: [Mount] = [
        Mount(tag: "shared", path: "/workspace/shared", readOnly: false),
        Mount(tag: "tmp", path: "/workspace/tmp", readOnly: false),
        Mount(tag: "vault", path: "/workspace/vault", readOnly: true),
        Mount(tag: "ipc", path: "/workspace/ipc", readOnly: false),
        Mount(tag: "logs", path: "/workspace/logs", readOnly: false),
        Mount(tag: "state", path: "/workspace/.oxydra", readOnly: false),
        Mount(tag: configTag, path: "/etc/oxydra", readOnly: true),
    ]

    /// The root disk's tree: the runtime tree of `oxydra-vm` plus busybox and `/sbin/oxydra-init`,
    /// over whatever `root` already holds (the shell's Debian userland, when there is one).
    public static func rootTree(oxydraVM: String, busybox: String, at root: String) async throws(MicroVMError) {
        do {
            try await GuestImageBuilder.runtimeTree(executable: oxydraVM, root: root)
            let tree = try ImageTree(root: root)
            try tree.copy(busybox, to: "/usr/local/bin/busybox")
            try tree.write(guestInit, to: "/usr/local/sbin/oxydra-init", mode: 0o755)
            try tree.write("nameserver 10.0.2.3\n", to: "/etc/resolv.conf")
            // Written at boot from the configuration share: the providers' names → their forwards.
            unlink(root + "/etc/hosts")
            guard symlink("/run/hosts", root + "/etc/hosts") == 0 else {
                throw MicroVMError("cannot link /etc/hosts in the root tree")
            }
            for directory in ["/proc", "/sys", "/dev", "/run", "/tmp"] + mounts.map(\.path) {
                try tree.directory(directory, mode: directory == "/tmp" ? 0o1777 : 0o755)
            }
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
        let shares = mounts.map { mount in
            "mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,"
                + (mount.readOnly ? "ro" : "cache=mmap") + " \(mount.tag) /newroot\(mount.path) "
                + "|| fail \"cannot mount the \(mount.tag) share\""
        }
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
                    \(shares.joined(separator: "\n"))
                    umount /proc /sys
                    mount --move /dev /newroot/dev
                    exec switch_root /newroot /usr/local/sbin/oxydra-init

                    """.utf8), mode: 0o755))
        return image
    }

    /// `/usr/local/sbin/oxydra-init` on the root disk: memory file systems, the network, then
    /// `oxydra-vm` (as root: the VM is the boundary; the shell runs in its bubblewrap sandbox;
    /// its output goes to `logs/oxydra-vm.stderr.log` as in the other tiers);
    /// when it exits the VM powers off. `OXYDRA_USER` and `OXYDRA_GATEWAY_ADVERTISE` come from the
    /// kernel command line; the provider keys from `/etc/oxydra/environment` (the runner removes
    /// that file once the guest is up).
    static let guestInit = """
        #!/usr/local/bin/busybox sh
        b=/usr/local/bin/busybox
        $b mount -t proc proc /proc; $b mount -t sysfs sys /sys
        $b mount -t tmpfs -o size=64m,mode=1777,nosuid,nodev tmp /tmp
        $b mount -t tmpfs -o size=8m,mode=755,nosuid,nodev run /run
        $b mkdir -p /sys/fs/cgroup && $b mount -t cgroup2 cgroup2 /sys/fs/cgroup
        $b ip link set lo up; $b ip link set eth0 up
        $b ip addr add 10.0.2.15/24 dev eth0; $b ip route add default via 10.0.2.2
        { echo "127.0.0.1 localhost"; [ -f /etc/oxydra/hosts ] && $b cat /etc/oxydra/hosts; } > /run/hosts
        echo "OXYDRA-INIT: starting oxydra-vm at $($b cat /proc/uptime)"
        set -a; [ -f /etc/oxydra/environment ] && . /etc/oxydra/environment; set +a
        export HOME=/etc/oxydra/home PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 TZ=UTC
        cd /etc/oxydra/project
        /usr/local/bin/oxydra-vm --user-id "$OXYDRA_USER" --workspace-root /workspace \\
            --bootstrap-file /etc/oxydra/bootstrap.json --gateway-bind 0.0.0.0:\(gatewayPort) \\
            --gateway-advertise "$OXYDRA_GATEWAY_ADVERTISE" >> /workspace/logs/oxydra-vm.stderr.log 2>&1
        status=$?
        echo "OXYDRA-INIT: oxydra-vm exited with status $status"
        # QEMU ends with 0 however the guest ended: the runner's supervisor reads this instead.
        echo "$status" > /workspace/ipc/\(exitStatusFile)
        $b poweroff -f

        """
}
