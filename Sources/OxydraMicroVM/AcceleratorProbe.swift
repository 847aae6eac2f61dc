import OxydraCore
import Subprocess

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

#if canImport(Glibc)
    import Glibc
#endif

/// Whether the host's KVM can really run a guest. `/dev/kvm` existing proves nothing (nested
/// virtualization can refuse guests: QEMU then aborts, or the guest never runs), so the probe boots
/// a tiny VM — the host kernel and an initramfs whose init prints a marker and powers off — and
/// waits for the marker, with a deadline.
public enum AcceleratorProbe {
    public static let marker = "OXYDRA-PROBE-BOOTED"

    /// The probe's initramfs: busybox and an init that prints ``marker`` and powers off.
    public static func initramfs(busybox: [UInt8]) -> Initramfs {
        var image = Initramfs()
        image.add(.file("bin/busybox", busybox, mode: 0o755))
        image.add(.symlink("bin/sh", target: "busybox"))
        image.add(.symlink("bin/poweroff", target: "busybox"))
        image.add(.directory("dev"))
        image.add(.file("init", Array("#!/bin/sh\necho \(marker)\npoweroff -f\n".utf8), mode: 0o755))
        return image
    }

    /// Boots the probe with `accelerator`; nil when it booted, else why not. `workDirectory` holds
    /// the initramfs and the console log.
    public static func problem(
        _ accelerator: MicroVMPlan.Accelerator, qemu: String, kernel: String, busybox: String,
        workDirectory: String, timeout: Duration
    ) async -> String? {
        if accelerator == .kvm, access("/dev/kvm", R_OK | W_OK) != 0 {
            return "/dev/kvm is missing or not accessible (\(String(cString: strerror(errno))))"
        }
        guard let tool = FileManager.default.contents(atPath: busybox) else {
            return "cannot read \(busybox) (install busybox-static)"
        }
        let initramfs = workDirectory + "/probe-initramfs.cpio"
        let console = workDirectory + "/probe-\(accelerator.rawValue).log"
        guard
            FileManager.default.createFile(
                atPath: initramfs, contents: Data(Self.initramfs(busybox: Array(tool)).archive))
        else { return "cannot write \(initramfs)" }
        unlink(console)
        var plan = MicroVMPlan(qemu: qemu, kernel: kernel, initramfs: initramfs, consoleLog: console)
        plan.accelerator = accelerator
        plan.memoryMiB = 128
        if let problem = plan.problem { return problem }
        let arguments = plan.arguments
        let outcome: (status: String, errors: String)? = await withTaskGroup(of: (String, String)?.self) { group in
            group.addTask {
                do {
                    let result = try await Subprocess.run(
                        .path(FilePath(qemu)), arguments: Arguments(arguments), output: .discarded,
                        error: .string(limit: 16 << 10))
                    return ("\(result.terminationStatus)", result.standardError)
                } catch {
                    return ("not started", "\(error)")
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        let printed = (try? String(contentsOfFile: console, encoding: .utf8)) ?? ""
        if printed.contains(marker) { return nil }
        guard let outcome else {
            return "a probe VM with \(accelerator.rawValue) did not boot within \(timeout) (it was stopped)"
        }
        let last = outcome.errors.split(separator: "\n").last.map(String.init) ?? "no error output"
        return "QEMU with \(accelerator.rawValue) could not boot the probe VM (\(outcome.status)): \(last)"
    }
}
