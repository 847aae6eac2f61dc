import OxydraCore
import OxydraSandbox

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The runner's side of the guest's control socket: one request, one reply, blocking with a timeout.
public enum ControlClient {
    public static func request(_ request: ControlRequest, socket path: String, timeout: Duration = .seconds(10))
        throws(ControlClientError) -> ControlResponse
    {
        let fd: Int32
        do {
            fd = try UnixSocket.connect(to: path)
        } catch {
            if error.errorNumber == ENOENT || error.errorNumber == ECONNREFUSED {
                throw .notRunning("no guest is listening on \(path)")
            }
            throw .failed(error.description)
        }
        defer { close(fd) }
        return try exchange(request, on: fd, token: nil, timeout: timeout)
    }

    /// The micro_vm tier's control port: `127.0.0.1:<port>` (QEMU's forward to the VM), each
    /// request carrying the guest's control `token`.
    public static func request(
        _ request: ControlRequest, port: Int, token: String, timeout: Duration = .seconds(10)
    ) throws(ControlClientError) -> ControlResponse {
        let fd = connectLoopback(port)
        guard fd >= 0 else {
            if errno == ECONNREFUSED { throw .notRunning("no guest is listening on 127.0.0.1:\(port)") }
            throw .failed("cannot connect to 127.0.0.1:\(port): \(errorText())")
        }
        defer { close(fd) }
        return try exchange(request, on: fd, token: token, timeout: timeout)
    }

    /// Sends one framed request (with `token` when given) and reads the framed reply.
    private static func exchange(_ request: ControlRequest, on fd: Int32, token: String?, timeout: Duration)
        throws(ControlClientError) -> ControlResponse
    {
        setTimeout(fd, timeout)
        var json = request.json
        if let token, case .object(var members) = json {
            members["token"] = .string(token)
            json = .object(members)
        }
        try send(LengthPrefixedFrame.encode(json), on: fd)
        let body = try receiveFrame(on: fd, timeout: timeout)
        do {
            let value = try body.withUnsafeBufferPointer { buffer throws(JSONSyntaxError) in
                try JSONParser.parse(buffer)
            }
            return try ControlResponse(value, replyingTo: request)
        } catch {
            throw .failed("the guest's reply is malformed: \(error)")
        }
    }

    // MARK: the pieces the micro VM's relay shares

    /// A TCP socket connected to `127.0.0.1:port`, or -1 with `errno` set.
    static func connectLoopback(_ port: Int) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        address.sin_port = UInt16(clamping: port).bigEndian
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        guard connected else {
            let saved = errno
            close(fd)
            errno = saved
            return -1
        }
        return fd
    }

    static func setTimeout(_ fd: Int32, _ timeout: Duration) {
        var value = timeval(
            tv_sec: Int(timeout.components.seconds),
            tv_usec: Int(timeout.components.attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    static func send(_ frame: [UInt8], on fd: Int32) throws(ControlClientError) {
        var sent = 0
        while sent < frame.count {
            let written = frame[sent...].withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if written < 0 {
                if errno == EINTR { continue }
                throw .failed("sending to the guest failed: \(errorText())")
            }
            sent += written
        }
    }

    /// The body of one length-prefixed frame (at most 64 MiB).
    static func receiveFrame(on fd: Int32, timeout: Duration) throws(ControlClientError) -> [UInt8] {
        var decoder = LengthPrefixedDecoder(maxLength: 64 << 20)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let got = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if got < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK {
                    throw .failed("the guest did not answer within \(timeout)")
                }
                throw .failed("reading the guest's reply failed: \(errorText())")
            }
            if got == 0 {
                // A port QEMU forwards accepts connections before the guest listens, then closes them.
                throw .notRunning("the guest closed the control connection without a reply")
            }
            decoder.append(buffer[0..<got])
            do {
                if let body = try decoder.next() { return Array(body) }
            } catch {
                throw .failed("the guest's reply is malformed: \(error)")
            }
        }
    }

    private static func errorText() -> String { String(cString: strerror(errno)) }
}

public enum ControlClientError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Nothing listens on the socket (no file, or a stale file).
    case notRunning(String)
    case failed(String)

    public var description: String {
        switch self {
        case .notRunning(let message), .failed(let message): message
        }
    }
}
