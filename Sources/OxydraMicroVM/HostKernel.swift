import OxydraCore

#if canImport(Glibc)
    import Glibc
#endif

/// The host's installed kernel, which micro VMs boot (Debian's `linux-image-amd64`): its image and
/// its modules.
public struct HostKernel: Sendable, Hashable {
    /// `/boot/vmlinuz-6.1.0-57-amd64`.
    public var image: String
    /// `6.1.0-57-amd64`.
    public var release: String
    /// `/lib/modules/6.1.0-57-amd64`.
    public var modulesDirectory: String

    public init(image: String, release: String, modulesDirectory: String) {
        self.image = image
        self.release = release
        self.modulesDirectory = modulesDirectory
    }

    /// The newest `vmlinuz-*` in `boot` that has its modules in `modules`.
    public static func find(boot: String = "/boot", modules: String = "/lib/modules") throws(MicroVMError) -> HostKernel
    {
        let names: [String] = (try? FileManager.default.contentsOfDirectory(atPath: boot)) ?? []
        var releases: [String] = []
        for name in names where name.hasPrefix("vmlinuz-") {
            let release = String(name.dropFirst("vmlinuz-".count))
            if FileManager.default.fileExists(atPath: modules + "/" + release + "/modules.dep") {
                releases.append(release)
            }
        }
        guard let release = releases.max(by: { Self.version($0).lexicographicallyPrecedes(Self.version($1)) }) else {
            throw MicroVMError(
                "no kernel for micro VMs: \(boot)/vmlinuz-* with its modules in \(modules) was not found; install "
                    + "Debian's linux-image-amd64 (`sudo apt-get install linux-image-amd64`)")
        }
        return HostKernel(
            image: "\(boot)/vmlinuz-\(release)", release: release, modulesDirectory: "\(modules)/\(release)")
    }

    /// A configured kernel (`[guest_images] kernel`): `…/vmlinuz-<release>` with its modules in
    /// `modules/<release>`.
    public static func at(_ image: String, modules: String = "/lib/modules") throws(MicroVMError) -> HostKernel {
        guard access(image, R_OK) == 0 else {
            throw MicroVMError("the kernel \(image) ([guest_images] kernel) is missing or not readable")
        }
        let name = image.split(separator: "/").last.map(String.init) ?? image
        guard name.hasPrefix("vmlinuz-") else {
            throw MicroVMError(
                "the kernel \(image) ([guest_images] kernel) must be named vmlinuz-<release>, so its modules are found "
                    + "in \(modules)/<release>")
        }
        let release = String(name.dropFirst("vmlinuz-".count))
        guard FileManager.default.fileExists(atPath: modules + "/" + release + "/modules.dep") else {
            throw MicroVMError("the kernel \(image) has no modules in \(modules)/\(release) (modules.dep)")
        }
        return HostKernel(image: image, release: release, modulesDirectory: modules + "/" + release)
    }

    /// `6.1.0-57-amd64` → `[6, 1, 0, 57]`: releases compare by their numbers.
    static func version(_ release: String) -> [Int] {
        release.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
    }

    /// The closure of `names` in this kernel's `modules.dep`.
    public func modules(_ names: [String] = KernelModules.guestModules) throws(MicroVMError) -> KernelModules {
        guard let text = try? String(contentsOfFile: modulesDirectory + "/modules.dep", encoding: .utf8) else {
            throw MicroVMError("cannot read \(modulesDirectory)/modules.dep")
        }
        return try KernelModules.closure(of: names, modulesDep: text)
    }
}
