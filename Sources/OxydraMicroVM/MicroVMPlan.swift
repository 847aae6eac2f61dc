import OxydraCore

/// How one micro VM is started: QEMU's `microvm` machine (virtio-mmio devices, no PCI, no
/// firmware: the kernel is loaded directly), the host kernel and an initramfs, an optional
/// read-only root disk, 9p shares, user-mode networking with ports forwarded from the host's
/// loopback only, and the serial console written to a file.
public struct MicroVMPlan: Sendable, Hashable {
    public enum Accelerator: String, Sendable, Hashable {
        /// The host's hypervisor (`/dev/kvm`), when it can really run guests.
        case kvm
        /// QEMU's own CPU emulation: slow, but needs nothing of the host.
        case tcg
    }

    /// A host directory the guest mounts with 9p (`mount -t 9p -o trans=virtio <tag> <where>`).
    public struct Share: Sendable, Hashable {
        public var tag: String
        public var hostPath: String
        public var readOnly: Bool

        public init(tag: String, hostPath: String, readOnly: Bool) {
            self.tag = tag
            self.hostPath = hostPath
            self.readOnly = readOnly
        }
    }

    /// `127.0.0.1:<host>` on the host reaches `<guest>` in the VM (TCP).
    public struct Forward: Sendable, Hashable {
        public var host: Int
        public var guest: Int

        public init(host: Int, guest: Int) {
            self.host = host
            self.guest = guest
        }
    }

    /// A TCP service the guest reaches at `address:port`: each connection starts `command` on the
    /// host with the connection as its standard input and output (QEMU's `guestfwd`; the only way
    /// out of a ``restricted`` network).
    public struct GuestForward: Sendable, Hashable {
        public var address: String
        public var port: Int
        public var command: [String]

        public init(address: String, port: Int, command: [String]) {
            self.address = address
            self.port = port
            self.command = command
        }
    }

    public var qemu: String
    public var kernel: String
    public var initramfs: String
    /// A raw ext4 image, attached read-only as `/dev/vda`.
    public var rootDisk: String?
    public var shares: [Share] = []
    public var forwards: [Forward] = []
    /// The guest reaches neither the host nor the internet (QEMU `restrict=on`); only
    /// ``guestForwards`` lead out.
    public var restricted = true
    public var guestForwards: [GuestForward] = []
    /// TCG's translation cache (MiB): QEMU's default grows to a gigabyte of host memory.
    public var tcgCacheMiB = 64
    public var memoryMiB = 512
    public var vcpus = 1
    public var accelerator = Accelerator.tcg
    /// Where the serial console goes (the guest's early log).
    public var consoleLog: String
    /// Appended to the kernel command line (`key=value` words reach init as its environment).
    public var kernelArguments: [String] = []

    public init(qemu: String, kernel: String, initramfs: String, consoleLog: String) {
        self.qemu = qemu
        self.kernel = kernel
        self.initramfs = initramfs
        self.consoleLog = consoleLog
    }

    /// QEMU's command line (without the executable).
    public var arguments: [String] {
        var arguments = [
            "-machine", "microvm,x-option-roms=off,isa-serial=on,rtc=on",
            "-accel", accelerator == .tcg ? "tcg,tb-size=\(tcgCacheMiB)" : "kvm", "-cpu",
            accelerator == .kvm ? "host" : "max",
            "-m", "\(memoryMiB)", "-smp", "\(vcpus)",
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-serial", "file:" + consoleLog,
            "-kernel", kernel, "-initrd", initramfs,
            "-append", (baseKernelArguments + kernelArguments).joined(separator: " "),
        ]
        if let rootDisk {
            arguments += [
                "-drive", "id=root,file=\(rootDisk),format=raw,if=none,readonly=on",
                "-device", "virtio-blk-device,drive=root",
            ]
        }
        for (index, share) in shares.enumerated() {
            arguments += [
                "-fsdev",
                "local,id=fs\(index),path=\(share.hostPath),security_model=none"
                    + (share.readOnly ? ",readonly=on" : ""),
                "-device", "virtio-9p-device,fsdev=fs\(index),mount_tag=\(share.tag)",
            ]
        }
        // Memory the guest frees goes back to the host (free page reporting): without it QEMU keeps
        // every page the guest ever touched.
        arguments += ["-device", "virtio-balloon-device,free-page-reporting=on"]
        let forwarded = forwards.map { ",hostfwd=tcp:127.0.0.1:\($0.host)-:\($0.guest)" }.joined()
        let outward = guestForwards.map {
            ",guestfwd=tcp:\($0.address):\($0.port)-cmd:" + $0.command.joined(separator: " ")
        }.joined()
        arguments += [
            "-netdev", "user,id=net0" + (restricted ? ",restrict=on" : "") + forwarded + outward,
            "-device", "virtio-net-device,netdev=net0",
        ]
        return arguments
    }

    /// The kernel's own arguments: the serial console, no reboot loop. Under TCG the kernel's
    /// TSC calibration against the emulated PIT fails when the host is busy, the clock then never
    /// starts and early boot hangs (seen here with a compile on both cores): TCG's TSC counts
    /// nanoseconds, so its frequency is given (1 GHz), declared reliable, the timer check skipped
    /// and the delay loop given instead of measured.
    var baseKernelArguments: [String] {
        ["console=ttyS0", "quiet", "panic=-1", "reboot=t"]
            + (accelerator == .tcg
                ? ["tsc_early_khz=1000000", "tsc=reliable", "no_timer_check", "lpj=2000000"] : [])
    }

    /// Problems QEMU would only report cryptically: option separators in paths and tags.
    public var problem: String? {
        let paths = [kernel, initramfs, consoleLog] + (rootDisk.map { [$0] } ?? []) + shares.map(\.hostPath)
        if let bad = paths.first(where: { $0.contains(",") || !$0.hasPrefix("/") }) {
            return "micro VM path `\(bad)` must be absolute and contain no comma (QEMU option syntax)"
        }
        if let bad = shares.first(where: { !$0.tag.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" } }) {
            return "9p share tag `\(bad.tag)` must be letters, digits or _"
        }
        for forward in guestForwards {
            if let bad = forward.command.first(where: { $0.isEmpty || $0.contains { ", '\"\\\t\n".contains($0) } }) {
                return "guest forward command word `\(bad)` must not be empty or hold commas, quotes or spaces"
            }
        }
        return nil
    }
}
