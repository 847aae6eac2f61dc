import Dispatch
import OxydraCore
import OxydraSandbox

#if canImport(Glibc)
    import Glibc
#endif

/// The micro_vm tier's control socket on the host: a micro VM's guest serves the control protocol
/// on a TCP port QEMU forwards from the host's loopback, and answers only requests that carry the
/// token of this start (other OS users can connect to loopback ports). The supervisor serves the
/// user's usual `ipc/runner-control.sock` (0600, in the user's 0700 workspace) and hands each
/// request on with the token added, so `runner status|stop|logs`, `ask`, the TUI and the web app
/// reach a VM exactly as they reach the other tiers — and never need the token.
///
/// One request and one reply per connection (as the protocol is). A VM that does not answer yet
/// (QEMU accepts and closes while the guest boots) closes the client's connection without a reply,
/// which ``ControlClient`` reports as "not running".
public struct ControlRelay: Sendable, Codable {
    public var socket: String
    public var port: Int
    public var token: String

    public init(socket: String, port: Int, token: String) {
        self.socket = socket
        self.port = port
        self.token = token
    }

    /// Binds the socket and serves it on a background thread for the life of the process.
    public func start() throws(UnixSocket.Failure) {
        let listener = try UnixSocket.listen(at: socket)
        let relay = self
        DispatchQueue.global().async {
            while true {
                let client = accept(listener, nil, nil)
                if client < 0 {
                    if errno == EINTR || errno == ECONNABORTED { continue }
                    return
                }
                _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                DispatchQueue.global().async {
                    relay.serve(client)
                    close(client)
                }
            }
        }
    }

    /// Reads one request frame, adds the token, forwards it and copies the reply frame back.
    func serve(_ client: Int32) {
        Self.setTimeout(client, seconds: 30)
        guard let request = Self.readFrame(client),
            case .object(var members) = try? request.withUnsafeBufferPointer({ buffer throws(JSONSyntaxError) in
                try JSONParser.parse(buffer)
            })
        else { return }
        members["token"] = .string(token)
        let upstream = Self.connectLoopback(port)
        guard upstream >= 0 else { return }
        defer { close(upstream) }
        // A shutdown drains running turns first: allow the guest its time.
        Self.setTimeout(upstream, seconds: 120)
        guard Self.writeAll(upstream, LengthPrefixedFrame.encode(.object(members))),
            let reply = Self.readFrame(upstream)
        else { return }
        var frame = [UInt8](repeating: 0, count: 4)
        let length = UInt32(reply.count).bigEndian
        withUnsafeBytes(of: length) { frame = Array($0) }
        _ = Self.writeAll(client, frame + reply)
    }

    /// One length-prefixed frame's body (at most 64 MiB), or nil when the peer closed first.
    static func readFrame(_ fd: Int32) -> [UInt8]? {
        var decoder = LengthPrefixedDecoder(maxLength: 64 << 20)
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return nil }
            decoder.append(buffer[0..<count])
            do {
                if let body = try decoder.next() { return Array(body) }
            } catch {
                return nil
            }
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return false }
            sent += count
        }
        return true
    }

    static func setTimeout(_ fd: Int32, seconds: Int) {
        var value = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    /// A connected TCP socket to 127.0.0.1:`port`, or -1.
    static func connectLoopback(_ port: Int) -> Int32 {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        address.sin_port = UInt16(clamping: port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        if !connected {
            close(fd)
            return -1
        }
        return fd
    }
}
