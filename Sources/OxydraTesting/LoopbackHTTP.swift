import Foundation
import OxydraCore

#if canImport(Glibc)
    import Glibc
#endif

/// Plain HTTP/1.1 over a real loopback socket, for tests and benchmarks that must see exactly what
/// a server sends (status, headers, raw bytes) or send what no well-behaved client would.
public enum LoopbackHTTP {
    public struct Response: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var body: String

        public func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }
    }

    /// Sends `request` as written to 127.0.0.1:`port`; what the server sent back — everything until it
    /// closes the connection (`untilClose`, reads time out after 5 s) or its first read.
    public static func raw(port: Int, _ request: String, untilClose: Bool = true) throws -> String {
        let fd = try connect(port: port)
        defer { close(fd) }
        let bytes = Array(request.utf8)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        repeat {
            let got = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if got <= 0 { break }
            response += buffer[0..<got]
        } while untilClose
        return String(decoding: response, as: UTF8.self)
    }

    /// A blocking TCP socket connected to 127.0.0.1:`port` (reads time out after 5 s), with a
    /// receive buffer of `receiveBuffer` bytes when given (set before connecting, so the window
    /// the peer sees is that small). The caller closes it.
    public static func connect(port: Int, receiveBuffer: Int32? = nil) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if var size = receiveBuffer {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            close(fd)
            throw TestSupportError("nothing listens on 127.0.0.1:\(port)")
        }
        var limit = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    /// One request with `Connection: close`; the parsed response (chunked bodies joined).
    public static func request(
        port: Int, _ method: String, _ path: String, headers: [String: String] = [:], body: String? = nil
    ) throws -> Response {
        var fields = ["Host": "127.0.0.1:\(port)", "Connection": "close"].merging(headers) { $1 }
        if let body { fields["Content-Length"] = "\(body.utf8.count)" }
        var text = "\(method) \(path) HTTP/1.1\r\n"
        for (name, value) in fields.sorted(by: { $0.key < $1.key }) where !value.isEmpty {
            text += "\(name): \(value)\r\n"
        }
        let reply = try raw(port: port, text + "\r\n" + (body ?? ""))
        guard let split = reply.range(of: "\r\n\r\n") else { throw TestSupportError("no HTTP response: \(reply)") }
        let head = reply[..<split.lowerBound].split(separator: "\r\n")
        let status = Int(head.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        let pairs = head.dropFirst().compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmed)
        }
        var content = String(reply[split.upperBound...])
        if pairs.contains(where: { $0.0.lowercased() == "transfer-encoding" && $0.1 == "chunked" }) {
            content = dechunk(content)
        }
        return Response(status: status, headers: pairs, body: content)
    }

    static func dechunk(_ text: String) -> String {
        var rest = Substring(text)
        var out = ""
        while let lineEnd = rest.range(of: "\r\n"), let size = Int(rest[..<lineEnd.lowerBound], radix: 16), size > 0 {
            let start = lineEnd.upperBound
            out += String(decoding: rest.utf8[start...].prefix(size), as: UTF8.self)
            rest = rest[rest.utf8.index(start, offsetBy: size)...].dropFirst(2)
        }
        return out
    }
}
