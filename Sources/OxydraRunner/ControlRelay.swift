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

    /// Reads one request frame, adds the token, forwards it and copies the reply frame back. Any
    /// failure closes the client's connection without a reply.
    func serve(_ client: Int32) {
        ControlClient.setTimeout(client, .seconds(30))
        guard let request = try? ControlClient.receiveFrame(on: client, timeout: .seconds(30)),
            case .object(var members) = try? request.withUnsafeBufferPointer({ buffer throws(JSONSyntaxError) in
                try JSONParser.parse(buffer)
            })
        else { return }
        members["token"] = .string(token)
        let upstream = ControlClient.connectLoopback(port)
        guard upstream >= 0 else { return }
        defer { close(upstream) }
        // A shutdown drains running turns first: allow the guest its time.
        ControlClient.setTimeout(upstream, .seconds(120))
        guard (try? ControlClient.send(LengthPrefixedFrame.encode(.object(members)), on: upstream)) != nil,
            let reply = try? ControlClient.receiveFrame(on: upstream, timeout: .seconds(120))
        else { return }
        try? ControlClient.send(LengthPrefixedFrame.encode(reply), on: client)
    }
}
