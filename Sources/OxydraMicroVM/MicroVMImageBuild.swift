import OxydraContainer
import OxydraCore

#if canImport(Glibc)
    import Glibc
#endif

/// The micro VM form of the guest images in `[guest_images] micro_vm_dir`: `root.ext4`,
/// `initramfs.cpio` (for one kernel) and `manifest.json` saying what they were built from.
/// `runner images build` writes them; `runner start` checks them.
public struct MicroVMImageSet: Sendable, Hashable, Codable {
    public static let manifestFile = "manifest.json"
    public static let rootDiskFile = "root.ext4"
    public static let initramfsFile = "initramfs.cpio"

    /// Oxydra's version that built them.
    public var version: String
    /// The hash of every input (executables, busybox, kernel, recipe): equal → nothing to rebuild.
    public var contentHash: String
    /// The kernel image the initramfs's modules belong to.
    public var kernel: String
    public var kernelRelease: String
    /// Whether the root disk has the shell's userland (Debian, bubblewrap, `shell-daemon`).
    public var shell: Bool
    public var rootDiskBytes: Int

    /// What a build takes.
    public struct Inputs: Sendable {
        public var oxydraVM: String
        /// nil: a root disk without the shell's userland.
        public var shellDaemon: String?
        public var busybox: String
        public var kernel: HostKernel
        public var version: String

        public init(oxydraVM: String, shellDaemon: String?, busybox: String, kernel: HostKernel, version: String) {
            self.oxydraVM = oxydraVM
            self.shellDaemon = shellDaemon
            self.busybox = busybox
            self.kernel = kernel
            self.version = version
        }
    }

    /// The images in `directory`, or nil when there is no manifest.
    public static func read(_ directory: String) -> MicroVMImageSet? {
        guard let data = FileManager.default.contents(atPath: directory + "/" + manifestFile) else { return nil }
        return try? JSONDecoder().decode(MicroVMImageSet.self, from: data)
    }

    /// Why the images in `directory` cannot boot `kernel` (nil: they can).
    public static func problem(in directory: String, kernel: HostKernel) -> String? {
        guard let set = read(directory) else {
            return "the micro VM images are not built (no \(directory)/\(manifestFile))"
        }
        for file in [rootDiskFile, initramfsFile] where access(directory + "/" + file, R_OK) != 0 {
            return "the micro VM image \(directory)/\(file) is missing"
        }
        if set.kernelRelease != kernel.release {
            return "the micro VM images were built for kernel \(set.kernelRelease), the kernel now is \(kernel.release)"
        }
        return nil
    }

    /// The hash of what `inputs` would build.
    public static func contentHash(_ inputs: Inputs) async throws(MicroVMError) -> String {
        let files = [inputs.oxydraVM, inputs.busybox, inputs.kernel.image] + (inputs.shellDaemon.map { [$0] } ?? [])
        let digests: String
        do {
            digests = try await ImageTree.run("/usr/bin/sha256sum", files)
        } catch {
            throw MicroVMError("cannot hash the micro VM image inputs: \(error)")
        }
        let recipe =
            "microvm-1 \(inputs.kernel.release) \(KernelModules.guestModules.joined(separator: ","))"
            + (inputs.shellDaemon == nil
                ? ""
                : " \(GuestImageBuilder.debianSuite) \(GuestImageBuilder.sidecarPackages.joined(separator: ","))"
                    + " \(shellPackages.joined(separator: ","))")
            + MicroVMImage.guestInit
        let lines = digests.split(separator: "\n").map { String($0.prefix(64)) }.joined(separator: ",")
        return String(StableHash.fnv1a((lines + recipe).utf8), radix: 16)
    }

    /// Packages the VM's shell needs beyond the sidecar's.
    static let shellPackages = ["bubblewrap"]

    /// Builds the images into `directory` (or reuses them when the inputs are unchanged); returns
    /// the manifest and whether it was reused. `progress` gets one line per step.
    public static func build(
        _ inputs: Inputs, directory: String, progress: @Sendable (String) -> Void
    ) async throws(MicroVMError) -> (MicroVMImageSet, reused: Bool) {
        let hash = try await contentHash(inputs)
        if let existing = read(directory), existing.contentHash == hash,
            problem(in: directory, kernel: inputs.kernel) == nil
        {
            progress("the micro VM images in \(directory) are up to date (same inputs)")
            return (existing, true)
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw MicroVMError("cannot create \(directory): \(error)")
        }
        let work = directory + "/build-\(getpid())"
        try? FileManager.default.removeItem(atPath: work)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let root = work + "/root"
        do {
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            if let shellDaemon = inputs.shellDaemon {
                progress(
                    "assembling the shell's Debian userland with mmdebstrap (\(GuestImageBuilder.debianSuite) minbase "
                        + "+ \(GuestImageBuilder.sidecarPackages.count + shellPackages.count) packages; needs "
                        + "\(GuestImageBuilder.debianMirror))")
                let tarball = work + "/userland.tar"
                try await GuestImageBuilder.sidecarTarball(
                    executable: shellDaemon, staging: work + "/staging", tarball: tarball,
                    extraPackages: shellPackages)
                // Device nodes cannot be made without root; the VM's /dev is devtmpfs anyway.
                _ = try await ImageTree.run(
                    "/usr/bin/tar", ["-xf", tarball, "-C", root, "--exclude=./dev/*", "--no-same-permissions"])
                unlink(tarball)
            }
        } catch {
            throw MicroVMError("cannot assemble the shell's userland: \(error)")
        }
        progress("assembling the micro VM root (\(inputs.oxydraVM), busybox, the guest init)")
        try await MicroVMImage.rootTree(oxydraVM: inputs.oxydraVM, busybox: inputs.busybox, at: root)
        progress("packing the root disk (ext4)")
        try await MicroVMImage.rootDisk(tree: root, output: work + "/" + rootDiskFile)
        progress("packing the initramfs for kernel \(inputs.kernel.release)")
        let initramfs = try MicroVMImage.initramfs(kernel: inputs.kernel, busybox: inputs.busybox)
        guard FileManager.default.createFile(atPath: work + "/" + initramfsFile, contents: Data(initramfs.archive))
        else { throw MicroVMError("cannot write \(work)/\(initramfsFile)") }
        var info = stat()
        _ = stat(work + "/" + rootDiskFile, &info)
        let set = MicroVMImageSet(
            version: inputs.version, contentHash: hash, kernel: inputs.kernel.image,
            kernelRelease: inputs.kernel.release, shell: inputs.shellDaemon != nil, rootDiskBytes: Int(info.st_size))
        // The manifest goes last: a build cut short leaves no manifest that names half-written files.
        unlink(directory + "/" + manifestFile)
        for file in [rootDiskFile, initramfsFile] {
            guard rename(work + "/" + file, directory + "/" + file) == 0 else {
                throw MicroVMError("cannot move \(file) into \(directory): \(String(cString: strerror(errno)))")
            }
        }
        guard let data = try? JSONEncoder().encode(set),
            FileManager.default.createFile(atPath: directory + "/" + manifestFile, contents: data)
        else { throw MicroVMError("cannot write \(directory)/\(manifestFile)") }
        return (set, false)
    }
}
