import OxydraCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Unix stream sockets for the local RPC endpoints (control socket, shell daemon).
public enum UnixSocket {
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
        /// `errno` of the failed call, 0 when not a system call failure.
        public var errorNumber: Int32
        public init(_ description: String, errorNumber: Int32 = 0) {
            self.description = description
            self.errorNumber = errorNumber
        }
    }

    static func address(_ path: String) throws(Failure) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else {
            throw Failure(
                "the socket path \(path) is \(bytes.count) bytes, longer than the \(capacity - 1) bytes a Unix socket "
                    + "path may have; use a shorter workspace_root")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return address
    }

    /// Binds `path` (replacing a stale socket file, never anything else) with mode 0600 and listens.
    public static func listen(at path: String, backlog: Int32 = 64) throws(Failure) -> Int32 {
        var address = try address(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure("cannot create a socket: \(errorText())") }
        var existing = stat()
        if lstat(path, &existing) == 0 {
            guard existing.st_mode & S_IFMT == S_IFSOCK else {
                close(fd)
                throw Failure("\(path) exists and is not a socket; refusing to replace it")
            }
            unlink(path)
        }
        let previous = umask(0o177)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        umask(previous)
        guard bound == 0 else {
            let message = errorText()
            close(fd)
            throw Failure("cannot bind \(path): \(message)")
        }
        guard Glibc.listen(fd, backlog) == 0 else {
            let message = errorText()
            close(fd)
            throw Failure("cannot listen on \(path): \(message)")
        }
        return fd
    }

    /// Connects to `path`; returns the descriptor, or throws with `errno` in the failure.
    public static func connect(to path: String) throws(Failure) -> Int32 {
        var address = try address(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure("cannot create a socket: \(errorText())") }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else {
            let code = errno
            close(fd)
            throw Failure("cannot connect to \(path): \(String(cString: strerror(code)))", errorNumber: code)
        }
        return fd
    }

    static func errorText() -> String { String(cString: strerror(errno)) }
}
