import CSystemShims
import OxydraCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Resolves the model's paths with the kernel's help, so `..`, symlinks and magic links cannot
/// escape a root however they are spelled.
///
/// Every open goes through `openat2(2)` relative to a descriptor of the root directory with
/// `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`: the kernel refuses any resolution that leaves the
/// root (`..` above it, absolute symlinks, symlinks pointing out, `/proc/self/root`-style magic
/// links) with `EXDEV`/`ELOOP`. Where `openat2` is missing (Linux < 5.6, macOS), a
/// component-by-component walk with `O_NOFOLLOW` is used instead, which refuses `..` and every
/// symlink. String checks only map `/shared`, `/tmp`, `/vault` to their directories.
public struct PathConfinement: Sendable {
    public let workspace: Workspace
    /// Use the `O_NOFOLLOW` walk even where `openat2` exists (tests exercise both).
    public let forceFallback: Bool

    public init(workspace: Workspace, forceFallback: Bool = false) {
        self.workspace = workspace
        self.forceFallback = forceFallback
    }

    public enum Access: Sendable {
        case read, write
    }

    // MARK: Mapping virtual paths

    /// Maps the model's path to a root and relative path. Relative paths are relative to `/shared`.
    /// Does not touch the file system.
    public func virtualPath(_ raw: String, tool: String) throws(ToolError) -> VirtualPath {
        let path = raw.trimmed
        guard !path.isEmpty else { throw .invalidArguments(tool: tool, message: "path must not be empty") }
        guard !path.contains("\0") else {
            throw .blocked(tool: tool, reason: "InvalidArguments", detail: "path contains a NUL byte")
        }
        if !path.hasPrefix("/") { return VirtualPath(root: .shared, relative: Self.normalizeSlashes(path)) }
        for root in VirtualRoot.allCases {
            if path == root.path { return VirtualPath(root: root, relative: "") }
            if path.hasPrefix(root.path + "/") {
                return VirtualPath(
                    root: root, relative: Self.normalizeSlashes(String(path.dropFirst(root.path.count + 1))))
            }
        }
        throw .blocked(
            tool: tool, reason: "PathOutsideAllowedRoots",
            detail: "`\(path)` is outside the workspace; use paths under /shared, /tmp or /vault")
    }

    static func normalizeSlashes(_ path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }.joined(separator: "/")
    }

    /// Refuses writes to read-only roots and any path through the internal `.oxydra` directory name.
    func check(_ path: VirtualPath, access: Access, tool: String) throws(ToolError) {
        if access == .write && !path.root.isWritable {
            throw .blocked(
                tool: tool, reason: "ReadOnlyRoot",
                detail: "\(path.root.path) is read-only; copy files out of it with vault_copyto")
        }
        if path.relative.split(separator: "/").contains(".oxydra") {
            throw .blocked(tool: tool, reason: "InternalPath", detail: "`\(path)` names Oxydra's internal directory")
        }
    }

    // MARK: Opening beneath a root

    /// Opens `path` beneath its root. `flags` are `open(2)` flags; `O_CLOEXEC` is added.
    public func open(_ path: VirtualPath, flags: Int32, mode: mode_t = 0o600, tool: String) throws(ToolError) -> Int32 {
        let rootFD = try openRoot(path.root, tool: tool)
        defer { close(rootFD) }
        return try open(relative: path.relative, beneath: rootFD, flags: flags, mode: mode, display: path, tool: tool)
    }

    /// A descriptor for a root directory itself.
    func openRoot(_ root: VirtualRoot, tool: String) throws(ToolError) -> Int32 {
        let directory = workspace.hostDirectory(of: root)
        let fd = Glibc.open(directory, OXYDRA_O_PATH | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            throw .executionFailed(tool: tool, message: "\(root.path) is not available (\(Self.errnoText(errno)))")
        }
        return fd
    }

    /// Opens `relative` beneath the directory `rootFD`.
    func open(
        relative: String, beneath rootFD: Int32, flags: Int32, mode: mode_t, display: VirtualPath, tool: String
    ) throws(ToolError) -> Int32 {
        switch try rawOpen(relative: relative, beneath: rootFD, flags: flags, mode: mode, display: display, tool: tool)
        {
        case .opened(let fd): return fd
        case .failed(let code): throw Self.mapOpenError(code, display: display, tool: tool)
        }
    }

    enum OpenOutcome {
        case opened(Int32)
        case failed(errno: Int32)
    }

    /// `open` that reports `errno` instead of mapping it (callers that handle `ENOENT` themselves).
    func rawOpen(
        relative: String, beneath rootFD: Int32, flags: Int32, mode: mode_t, display: VirtualPath, tool: String
    ) throws(ToolError) -> OpenOutcome {
        if forceFallback || !Self.openat2Available {
            return try walk(relative: relative, beneath: rootFD, flags: flags, mode: mode, display: display, tool: tool)
        }
        // openat2 rejects a mode unless a file may be created.
        let effectiveMode = flags & O_CREAT != 0 ? UInt64(mode) : 0
        let fd = oxydra_openat2(
            rootFD, relative.isEmpty ? "." : relative, UInt64(UInt32(bitPattern: flags | O_CLOEXEC)), effectiveMode,
            UInt64(OXYDRA_RESOLVE_BENEATH | OXYDRA_RESOLVE_NO_MAGICLINKS))
        if fd >= 0 { return .opened(fd) }
        let code = errno
        if code == ENOSYS {
            Self.markOpenat2Missing()
            return try walk(relative: relative, beneath: rootFD, flags: flags, mode: mode, display: display, tool: tool)
        }
        return .failed(errno: code)
    }

    /// The fallback: one component at a time, no `..`, no symlinks.
    private func walk(
        relative: String, beneath rootFD: Int32, flags: Int32, mode: mode_t, display: VirtualPath, tool: String
    ) throws(ToolError) -> OpenOutcome {
        let components = relative.split(separator: "/").map(String.init)
        if components.contains("..") {
            throw .blocked(tool: tool, reason: "PathOutsideAllowedRoots", detail: "`\(display)` uses `..`")
        }
        if components.isEmpty {
            let fd = openat(rootFD, ".", flags | O_CLOEXEC, mode)
            return fd >= 0 ? .opened(fd) : .failed(errno: errno)
        }
        var current = dup(rootFD)
        guard current >= 0 else { return .failed(errno: errno) }
        for (index, component) in components.enumerated() {
            let last = index == components.count - 1
            let componentFlags =
                last ? flags | O_NOFOLLOW | O_CLOEXEC : OXYDRA_O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
            let next = openat(current, component, componentFlags, mode)
            var code = errno
            if next < 0 {
                // A symbolic link anywhere on the path is refused like an escape.
                var info = stat()
                if fstatat(current, component, &info, AT_SYMLINK_NOFOLLOW) == 0 && (info.st_mode & S_IFMT) == S_IFLNK {
                    code = ELOOP
                }
            }
            close(current)
            guard next >= 0 else { return .failed(errno: code) }
            current = next
        }
        return .opened(current)
    }

    static func mapOpenError(_ code: Int32, display: VirtualPath, tool: String) -> ToolError {
        switch code {
        case EXDEV, ELOOP:
            return .blocked(
                tool: tool, reason: "PathOutsideAllowedRoots",
                detail: "`\(display)` resolves outside \(display.root.path) (through `..` or a symbolic link)")
        case ENOENT:
            return .executionFailed(tool: tool, message: "no such file or directory: \(display)")
        case ENOTDIR:
            return .executionFailed(tool: tool, message: "a component of \(display) is not a directory")
        case EISDIR:
            return .executionFailed(tool: tool, message: "\(display) is a directory")
        case EACCES, EPERM:
            return .executionFailed(tool: tool, message: "permission denied: \(display)")
        case EEXIST:
            return .executionFailed(tool: tool, message: "\(display) already exists")
        default:
            return .executionFailed(tool: tool, message: "cannot open \(display): \(errnoText(code))")
        }
    }

    static func errnoText(_ code: Int32) -> String { String(cString: strerror(code)) }

    private static let openat2State = Mutex<Bool>(true)
    static var openat2Available: Bool { openat2State.withLock { $0 } }
    static func markOpenat2Missing() { openat2State.withLock { $0 = false } }
}
