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
        var seconds = timeval(
            tv_sec: Int(timeout.components.seconds),
            tv_usec: Int(timeout.components.attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &seconds, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &seconds, socklen_t(MemoryLayout<timeval>.size))
        let frame = LengthPrefixedFrame.encode(request.json)
        var sent = 0
        while sent < frame.count {
            let written = frame[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written < 0 {
                if errno == EINTR { continue }
                throw .failed("sending to the guest failed: \(errorText())")
            }
            sent += written
        }
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
            if got == 0 { throw .failed("the guest closed the control connection without a reply") }
            decoder.append(buffer[0..<got])
            do {
                guard let body = try decoder.next() else { continue }
                let value = try body.withUnsafeBufferPointer { buffer throws(JSONSyntaxError) in
                    try JSONParser.parse(buffer)
                }
                return try ControlResponse(value, replyingTo: request)
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
