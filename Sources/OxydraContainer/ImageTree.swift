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

/// A root filesystem assembled in a directory from files of this host — executables with their
/// shared-library closure (as `ldd` resolves it), certificates, `/etc/passwd` — and packed into a
/// tarball the engine can import. Nothing comes from an image registry.
public struct ImageTree: Sendable {
    public let root: String

    public init(root: String) throws(DockerError) {
        self.root = root
        try Self.makeDirectory(root)
    }

    /// Copies the host file `source` to `destination` inside the tree (same path when nil),
    /// keeping its mode; parent directories are created.
    public func copy(_ source: String, to destination: String? = nil) throws(DockerError) {
        let target = root + (destination ?? source)
        try Self.makeDirectory(String(target[..<target.lastIndex(of: "/")!]))
        guard let data = FileManager.default.contents(atPath: source) else {
            throw .build("cannot read \(source) for the image")
        }
        var info = stat()
        _ = stat(source, &info)
        guard FileManager.default.createFile(atPath: target, contents: data), chmod(target, info.st_mode & 0o7777) == 0
        else {
            throw .build("cannot write \(target)")
        }
    }

    /// Writes `text` to `path` inside the tree.
    public func write(_ text: String, to path: String, mode: mode_t = 0o644) throws(DockerError) {
        let target = root + path
        try Self.makeDirectory(String(target[..<target.lastIndex(of: "/")!]))
        guard FileManager.default.createFile(atPath: target, contents: Data(text.utf8)), chmod(target, mode) == 0 else {
            throw .build("cannot write \(target)")
        }
    }

    /// Creates an (empty) directory inside the tree.
    public func directory(_ path: String, mode: mode_t = 0o755) throws(DockerError) {
        try Self.makeDirectory(root + path)
        chmod(root + path, mode)
    }

    /// Copies every shared library `executable` loads (and the dynamic loader), each at its host
    /// path (the file a symlink names, stored under the link's name).
    public func copyLibraries(of executable: String) async throws(DockerError) {
        for library in try await Self.sharedLibraries(of: executable) { try copy(Self.resolved(library), to: library) }
    }

    /// Removes debug information and the symbol table from an executable inside the tree (a
    /// release oxydra-vm goes from 37 MB to 23 MB). A crash backtrace from the image is symbolised
    /// with the unstripped binary of the same build, which stays on the host.
    public func strip(_ path: String) async throws(DockerError) {
        _ = try await Self.run("/usr/bin/objcopy", ["--strip-all", root + path])
    }

    /// Copies a host directory tree into the tree at the same path (modes and links kept).
    public func copyDirectory(_ source: String) async throws(DockerError) {
        let parent = root + String(source[..<source.lastIndex(of: "/")!])
        try Self.makeDirectory(parent)
        _ = try await Self.run("/bin/cp", ["-a", source, parent + "/"])
    }

    /// The shared libraries `executable` loads, as `ldd` resolves them on this host.
    public static func sharedLibraries(of executable: String) async throws(DockerError) -> [String] {
        let output = try await run("/usr/bin/ldd", [executable])
        var libraries: [String] = []
        for line in output.split(whereSeparator: \.isNewline) {
            let text = line.trimmed
            if text.contains("not found") {
                throw .build("\(executable) needs a library this host does not have: \(text)")
            }
            // "libx.so => /path/libx.so (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
            let candidate = text.contains("=>") ? String(text.split(separator: ">", maxSplits: 1)[1]).trimmed : text
            guard let path = candidate.split(separator: " ").first, path.hasPrefix("/") else { continue }
            libraries.append(String(path))
        }
        return libraries
    }

    /// Packs the tree into `tarball` (owner root, numeric ids, sorted names: the same tree gives
    /// the same bytes).
    public func pack(to tarball: String) async throws(DockerError) {
        _ = try await Self.run(
            "/usr/bin/tar",
            [
                "--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@0", "-C", root, "-cf", tarball,
                ".",
            ])
    }

    static func resolved(_ path: String) -> String {
        guard let real = realpath(path, nil) else { return path }
        defer { free(real) }
        return String(cString: real)
    }

    static func makeDirectory(_ path: String) throws(DockerError) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw .build("cannot create \(path): \(error)")
        }
    }

    public static func run(_ executable: String, _ arguments: [String]) async throws(DockerError) -> String {
        do {
            let result = try await Subprocess.run(
                .path(FilePath(executable)), arguments: Arguments(arguments),
                environment: .custom(["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"]),
                output: .string(limit: 4 << 20), error: .string(limit: 64 << 10))
            guard case .exited(0) = result.terminationStatus else {
                throw DockerError.build(
                    "\(executable) \(arguments.joined(separator: " ")) failed (\(result.terminationStatus)): "
                        + (result.standardError ?? "").trimmed)
            }
            return result.standardOutput ?? ""
        } catch let error as DockerError {
            throw error
        } catch {
            throw .build("cannot run \(executable): \(error)")
        }
    }
}
