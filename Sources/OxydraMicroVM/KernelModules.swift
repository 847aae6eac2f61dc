import OxydraCore

/// The kernel modules a micro VM's init loads before it can mount anything, in load order, found
/// in the host kernel's `modules.dep`.
///
/// Debian's kernel builds virtio, ext4 and 9p as modules; the guest's initramfs carries exactly
/// the closure of the modules it needs (each after the ones it depends on), nothing else.
public struct KernelModules: Sendable, Hashable {
    /// What the guest needs: the virtio-mmio transport of QEMU's `microvm` machine, its block,
    /// network and 9p devices, ext4 for the root disk and the checksum ext4 asks for at mount.
    public static let guestModules = [
        "crc32c_generic", "virtio_mmio", "virtio_blk", "virtio_net", "9pnet_virtio", "9p", "ext4", "virtio_balloon",
    ]

    /// Paths relative to the modules directory (`kernel/fs/ext4/ext4.ko`), dependencies first.
    public let files: [String]

    public init(files: [String]) { self.files = files }

    /// The closure of `names` in `modulesDep` (the text of `modules.dep`): every module after those
    /// it depends on, each once. `-` and `_` in names are the same (as `modprobe` treats them).
    public static func closure(of names: [String], modulesDep: String) throws(MicroVMError) -> KernelModules {
        var dependencies: [String: [String]] = [:]
        var byName: [String: String] = [:]
        for line in modulesDep.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let file = String(line[..<colon])
            dependencies[file] = line[line.index(after: colon)...].split(separator: " ").map(String.init)
            byName[Self.name(of: file)] = file
        }
        var ordered: [String] = []
        var seen: Set<String> = []
        func visit(_ file: String, path: [String]) throws(MicroVMError) {
            if seen.contains(file) { return }
            guard !path.contains(file) else {
                throw MicroVMError("modules.dep has a dependency cycle: \((path + [file]).joined(separator: " → "))")
            }
            for dependency in dependencies[file] ?? [] { try visit(dependency, path: path + [file]) }
            seen.insert(file)
            ordered.append(file)
        }
        for name in names {
            guard let file = byName[Self.normalized(name)] else {
                throw MicroVMError(
                    "the kernel has no module `\(name)` (not in modules.dep); a micro VM guest needs "
                        + names.joined(separator: ", "))
            }
            try visit(file, path: [])
        }
        return KernelModules(files: ordered)
    }

    /// `kernel/fs/9p/9p.ko.xz` → `9p`.
    static func name(of file: String) -> String {
        var base = String(file.split(separator: "/").last ?? "")
        for suffix in [".xz", ".zst", ".gz"] where base.hasSuffix(suffix) { base.removeLast(suffix.count) }
        if base.hasSuffix(".ko") { base.removeLast(3) }
        return normalized(base)
    }

    static func normalized(_ name: String) -> String { name.replacing("-", with: "_") }
}

/// Why a micro VM cannot be built or started.
public struct MicroVMError: Error, Sendable, Hashable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
