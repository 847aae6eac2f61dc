import CSystemShims
import OxydraCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// File operations on confined paths. Every descriptor is obtained beneath a root; nothing here
/// follows a symbolic link out of it.
extension PathConfinement {
    /// An entry of a directory listing.
    public struct Entry: Sendable, Hashable {
        public var name: String
        public var isDirectory: Bool
        public var isSymlink: Bool
    }

    /// The contents of a regular file, at most `limit` bytes (larger files are an error).
    public func readFile(_ path: VirtualPath, limit: Int, tool: String) throws(ToolError) -> [UInt8] {
        try check(path, access: .read, tool: tool)
        let fd = try open(path, flags: O_RDONLY | O_NONBLOCK, tool: tool)
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw Self.mapOpenError(errno, display: path, tool: tool) }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw .executionFailed(
                tool: tool,
                message: (info.st_mode & S_IFMT) == S_IFDIR ? "\(path) is a directory" : "\(path) is not a regular file"
            )
        }
        if Int(info.st_size) > limit {
            throw .executionFailed(
                tool: tool,
                message: "\(path) is \(info.st_size) bytes, more than the \(limit)-byte limit; use file_search")
        }
        return try Self.readAll(fd, size: Int(info.st_size), limit: limit, display: path, tool: tool)
    }

    /// Reads `fd` to its end; `size` (the regular file's size when opened) is room reserved up
    /// front, and the read buffer is not zeroed first (a zeroed 64 KiB per call was most of a small
    /// file_read's cost).
    static func readAll(_ fd: Int32, size: Int, limit: Int, display: VirtualPath, tool: String) throws(ToolError)
        -> [UInt8]
    {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(min(size, limit) + 1)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 1)
        defer { buffer.deallocate() }
        while true {
            let count = read(fd, buffer.baseAddress, buffer.count)
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw .executionFailed(tool: tool, message: "cannot read \(display): \(errnoText(errno))")
            }
            if count == 0 { return bytes }
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
            if bytes.count > limit {
                throw .executionFailed(tool: tool, message: "\(display) is larger than the \(limit)-byte limit")
            }
        }
    }

    /// The entries of a directory, sorted by name (without `.` and `..`).
    public func list(_ path: VirtualPath, tool: String) throws(ToolError) -> [Entry] {
        try check(path, access: .read, tool: tool)
        let fd = try open(path, flags: O_RDONLY | O_DIRECTORY, tool: tool)
        return try Self.entries(of: fd, display: path, tool: tool)
    }

    /// Reads and closes the directory `fd`.
    static func entries(of fd: Int32, display: VirtualPath, tool: String) throws(ToolError) -> [Entry] {
        guard let directory = fdopendir(fd) else {
            close(fd)
            throw .executionFailed(tool: tool, message: "cannot list \(display): \(errnoText(errno))")
        }
        defer { closedir(directory) }
        var entries: [Entry] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            if name == "." || name == ".." { continue }
            var info = stat()
            guard fstatat(dirfd(directory), name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            let kind = info.st_mode & S_IFMT
            entries.append(Entry(name: name, isDirectory: kind == S_IFDIR, isSymlink: kind == S_IFLNK))
        }
        return entries.sorted { $0.name < $1.name }
    }

    /// Writes `bytes` to `path` atomically (a temporary file renamed over the target), creating
    /// missing parent directories. Returns whether the file existed before.
    @discardableResult
    public func writeFile(_ path: VirtualPath, bytes: [UInt8], tool: String) throws(ToolError) -> Bool {
        try check(path, access: .write, tool: tool)
        let (parentFD, name) = try openParent(of: path, create: true, tool: tool)
        defer { close(parentFD) }
        var existing = stat()
        let existed = fstatat(parentFD, name, &existing, AT_SYMLINK_NOFOLLOW) == 0
        if existed && (existing.st_mode & S_IFMT) == S_IFDIR {
            throw .executionFailed(tool: tool, message: "\(path) is a directory")
        }
        let temporary = ".\(name).oxydra-\(UInt32.random(in: 0...UInt32.max))"
        let fd = openat(parentFD, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Self.mapOpenError(errno, display: path, tool: tool) }
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                let error = errno
                close(fd)
                unlinkat(parentFD, temporary, 0)
                throw .executionFailed(tool: tool, message: "cannot write \(path): \(Self.errnoText(error))")
            }
            written += count
        }
        fsync(fd)
        close(fd)
        guard renameat(parentFD, temporary, parentFD, name) == 0 else {
            let error = errno
            unlinkat(parentFD, temporary, 0)
            throw .executionFailed(tool: tool, message: "cannot write \(path): \(Self.errnoText(error))")
        }
        return existed
    }

    /// Deletes a file, a symbolic link (not its target) or a directory tree. Roots cannot be deleted.
    public func delete(_ path: VirtualPath, tool: String) throws(ToolError) -> Bool {
        try check(path, access: .write, tool: tool)
        guard !path.relative.isEmpty else {
            throw .blocked(tool: tool, reason: "InvalidArguments", detail: "\(path.root.path) itself cannot be deleted")
        }
        let (parentFD, name) = try openParent(of: path, create: false, tool: tool)
        defer { close(parentFD) }
        var info = stat()
        guard fstatat(parentFD, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
            throw Self.mapOpenError(errno, display: path, tool: tool)
        }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            try Self.removeTree(parentFD: parentFD, name: name, display: path, tool: tool)
            return true
        }
        guard unlinkat(parentFD, name, 0) == 0 else {
            throw .executionFailed(tool: tool, message: "cannot delete \(path): \(Self.errnoText(errno))")
        }
        return false
    }

    private static func removeTree(parentFD: Int32, name: String, display: VirtualPath, tool: String) throws(ToolError)
    {
        let fd = openat(parentFD, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw mapOpenError(errno, display: display, tool: tool) }
        let childFD = dup(fd)
        let children = try entries(of: fd, display: display, tool: tool)
        defer { close(childFD) }
        for child in children {
            if child.isDirectory {
                try removeTree(parentFD: childFD, name: child.name, display: display.appending(child.name), tool: tool)
            } else if unlinkat(childFD, child.name, 0) != 0 {
                throw .executionFailed(
                    tool: tool, message: "cannot delete \(display.appending(child.name)): \(errnoText(errno))")
            }
        }
        guard unlinkat(parentFD, name, AT_REMOVEDIR) == 0 else {
            throw .executionFailed(tool: tool, message: "cannot delete \(display): \(errnoText(errno))")
        }
    }

    /// A descriptor of `path`'s parent directory and the last component. With `create`, missing
    /// parent directories are made (one component at a time, refusing `..` and symlinks).
    func openParent(of path: VirtualPath, create: Bool, tool: String) throws(ToolError) -> (Int32, String) {
        var components = path.relative.split(separator: "/").map(String.init)
        guard let name = components.popLast(), name != "..", name != "." else {
            throw .executionFailed(tool: tool, message: "\(path) does not name a file")
        }
        let rootFD = try openRoot(path.root, tool: tool)
        defer { close(rootFD) }
        let parent = VirtualPath(root: path.root, relative: components.joined(separator: "/"))
        switch try rawOpen(
            relative: parent.relative, beneath: rootFD, flags: O_RDONLY | O_DIRECTORY, mode: 0, display: parent,
            tool: tool)
        {
        case .opened(let fd): return (fd, name)
        case .failed(let code) where code == ENOENT && create: break
        case .failed(let code): throw Self.mapOpenError(code, display: parent, tool: tool)
        }
        // Create the missing directories component by component.
        if components.contains("..") {
            throw .blocked(tool: tool, reason: "PathOutsideAllowedRoots", detail: "`\(path)` uses `..`")
        }
        var current = dup(rootFD)
        for component in components {
            var next = oxydra_openat2(
                current, component, UInt64(O_RDONLY | O_DIRECTORY | O_CLOEXEC), 0,
                UInt64(OXYDRA_RESOLVE_BENEATH | OXYDRA_RESOLVE_NO_MAGICLINKS | OXYDRA_RESOLVE_NO_SYMLINKS))
            if next < 0 && errno == ENOSYS {
                next = openat(current, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            }
            if next < 0 && errno == ENOENT {
                if mkdirat(current, component, 0o700) != 0 && errno != EEXIST {
                    let error = errno
                    close(current)
                    throw .executionFailed(
                        tool: tool, message: "cannot create a directory for \(path): \(Self.errnoText(error))")
                }
                next = openat(current, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            }
            let error = errno
            close(current)
            guard next >= 0 else { throw Self.mapOpenError(error, display: path, tool: tool) }
            current = next
        }
        return (current, name)
    }
}
