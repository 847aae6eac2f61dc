import OxydraCore

#if canImport(Glibc)
    import Glibc
#endif

/// `runner vm-connect <host> <port>`: one connection of a micro VM to a provider. A micro VM's
/// network is restricted (it reaches neither the host nor the internet); for each provider
/// endpoint the runner configured at start, QEMU runs this command per connection the guest opens
/// to that provider's forward address, with the connection as standard input and output, and it
/// copies bytes both ways to `host:port`. The guest cannot choose the destination: it is fixed in
/// QEMU's command line.
public enum VMConnect {
    /// Returns the exit code. Nothing is written to standard error: QEMU hands the guest's
    /// connection to it as well.
    public static func run(host: String, port: Int) -> Int32 {
        signal(SIGPIPE, SIG_IGN)
        guard let upstream = connect(host: host, port: port) else { return 1 }
        defer { close(upstream) }
        var fds = [
            pollfd(fd: 0, events: Int16(POLLIN), revents: 0), pollfd(fd: upstream, events: Int16(POLLIN), revents: 0),
        ]
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var inputOpen = true
        while true {
            fds[0].fd = inputOpen ? 0 : -1
            let ready = poll(&fds, nfds_t(fds.count), -1)
            if ready < 0 {
                if errno == EINTR { continue }
                return 1
            }
            if inputOpen && fds[0].revents != 0 {
                let count = read(0, &buffer, buffer.count)
                if count < 0 && errno == EINTR { continue }
                if count <= 0 {
                    inputOpen = false
                    shutdown(upstream, Int32(SHUT_WR))
                } else if !copy(buffer[0..<count], to: upstream) {
                    return 0
                }
            }
            if fds[1].revents != 0 {
                let count = recv(upstream, &buffer, buffer.count, 0)
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { return 0 }
                if !copy(buffer[0..<count], to: 1) { return 0 }
            }
        }
    }

    static func copy(_ bytes: ArraySlice<UInt8>, to fd: Int32) -> Bool {
        var offset = bytes.startIndex
        while offset < bytes.endIndex {
            let count = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return false }
            offset += count
        }
        return true
    }

    /// A TCP connection to the first address of `host` that accepts one.
    static func connect(host: String, port: Int) -> Int32? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else { return nil }
        defer { freeaddrinfo(list) }
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let current = entry {
            let fd = socket(current.pointee.ai_family, current.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), 0)
            if fd >= 0 {
                if Glibc.connect(fd, current.pointee.ai_addr, current.pointee.ai_addrlen) == 0 {
                    var one: Int32 = 1
                    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                    return fd
                }
                close(fd)
            }
            entry = current.pointee.ai_next
        }
        return nil
    }
}
